/**
 * The liveness role's shared memory (ports/workers.ts LivenessWorkerData.shared): the slots
 * of a BigInt64Array that the daemon's side (channel.ts) and the worker (workers/liveness-role.ts)
 * agree on. What changes every BEAT is read from here when asked, not posted.
 */
export const LIVENESS_SHARED = {
  /** The main thread's last tick, ms since the epoch (written by main). */
  tick: 0,
  /** BEATs sent, received, withheld (written by the worker). */
  sent: 1,
  received: 2,
  withheld: 3,
  /** Peer i (index as in `peers`): its last BEAT, ms since the epoch, at peer0 + 2i; its BEATs, at peer0 + 2i + 1. */
  peer0: 4,
  /** Slots for `peers` peers. */
  size: (peers: number) => 4 + 2 * peers,
} as const;
