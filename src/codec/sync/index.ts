/** State-sync codec: wire constants, serial arithmetic, messages <-> bytes, batching. */
export * from './constants.js';
export * from './serial.js';
export * from './message.js';
