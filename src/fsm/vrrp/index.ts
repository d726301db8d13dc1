/** VRRP state machines: timer formulas, one instance, sync groups, tracking. */
export * from './timers.js';
export * from './instance.js';
export * from './group.js';
export * from './track.js';
