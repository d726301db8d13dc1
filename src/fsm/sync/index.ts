/**
 * State-sync machines. Each module has its own `step`, so import them as namespaces:
 * `import { sender, receiver } from './fsm/sync/index.js'`.
 */
export * from './common.js';
export * as replay from './replay.js';
export * as sender from './sender.js';
export * as receiver from './receiver.js';
export * as bulk from './bulk.js';
export * as link from './link.js';
