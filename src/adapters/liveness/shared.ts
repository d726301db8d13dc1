/**
 * The liveness role's shared memory (ports/workers.ts LivenessWorkerData.shared): the slots
 * of a BigInt64Array that the daemon's side (channel.ts) and the worker (workers/liveness-role.ts)
 * agree on. What changes every BEAT is read from here when asked, not posted; what the BEATs
 * carry of the state sync's lag is written here by main and read at each BEAT.
 */
export const LIVENESS_SHARED = {
  /** The main thread's last tick, ms since the epoch (written by main). */
  tick: 0,
  /** BEATs sent, received, withheld (written by the worker). */
  sent: 1,
  received: 2,
  withheld: 3,
  /** Since when records received by the state sync wait for our kernel, ms since the epoch; 0: none (written by main). */
  writeSince: 4,
  /** What our BEATs say of us now: the BEAT's lag-field flags, BEHIND and WRITING (written by the worker). */
  ownFlags: 5,
  /**
   * Peer i (index as in `peers`), at peer0 + PEER_SLOTS * i and on:
   * +0 its last BEAT, ms since the epoch; +1 its BEATs (the worker);
   * +2 since when its oldest change not acknowledged waits, ms since the epoch, 0: none (main);
   * +3 the lag field of its last BEAT, plus TOLD once one came (the worker).
   */
  peer0: 6,
  PEER_SLOTS: 4,
  TOLD: 0x10000,
  /** Slots for `peers` peers. */
  size: (peers: number) => 6 + 4 * peers,
} as const;
