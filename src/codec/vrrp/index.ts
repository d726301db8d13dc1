/** VRRP codec: constants, addresses, advertisements, raw IPv4 datagrams, drop reasons. */
export * from './constants.js';
export * from './drop.js';
export * from './packet.js';
export * from './ipv4.js';
