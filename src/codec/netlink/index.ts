/** Netlink codecs: framing and attributes (nlmsg), rtnetlink links and addresses, errno names. */
export * from './nlmsg.js';
export * from './rtnetlink.js';
export * from './address.js';
export * from './errno.js';
export * from './ctnetlink.js';
