/**
 * Port: the liveness service's channel to the thread that sends and times the BEATs
 * (adapters/liveness/channel.ts over workers/liveness-role.ts), and what that thread counts.
 */
import type { BeatInstance } from '../codec/sync/message.js';
import type { CoreEvent, LivenessTiming } from '../fsm/liveness-core.js';

/** What the worker counts (workers/liveness-role.ts). */
export interface LivenessCounters {
  realtime?: boolean;
  sent: number;
  received: number;
  withheld: number;
  dropped: Record<string, number>;
  timing?: LivenessTiming;
}

export interface LivenessPeer {
  name: string;
  /** Every address of the peer (all interfaces): the sources of its adverts. */
  addresses: readonly string[];
}

/** The lag field of a peer's BEAT (codec/sync/message.ts): our lag behind it, and its own state. */
export interface PeerLagTold {
  /** Our oldest change from the peer not yet acknowledged by us, as the peer sees it (ms, at most 16383). */
  lagMs: number;
  /** The peer's own table lags by more than its bound. */
  behind: boolean;
  /** Records the peer received wait for its kernel. */
  writing: boolean;
}

/** Where the BEATs are sent and timed: the timing thread (adapters/liveness/channel.ts). */
export interface LivenessChannel {
  /** Events: the core's; the thread's failure (restarted: a new one runs the liveness again); our BEATs began or stopped saying BEHIND (why). */
  start(onEvent: (e: CoreEvent | { type: 'error'; message: string; restarted?: boolean } | { type: 'own_behind'; behind: boolean; why: string }) => void): void;
  /** What our BEATs say from now on (sent at once). */
  setOwn(instances: BeatInstance[], leaving: boolean, ready?: boolean): void;
  /** The next BEAT of every peer is reported, whatever it says (the worker reports only news). */
  wantBeat(): void;
  /** When the peer's last BEAT came (ms, the clock's epoch) and how many came; undefined before the first. */
  seen(peer: string): { lastBeatAtMs: number; beats: number } | undefined;
  /** The state sync: since when the peer's oldest change not acknowledged waits (undefined: none); its BEATs tell it its lag. */
  lagSince(peer: string, atMs: number | undefined): void;
  /** The state sync: since when received records wait for our kernel (undefined: none); our BEATs say WRITING. */
  writeSince(atMs: number | undefined): void;
  /** What the peer's last BEAT said of the lag (ours behind it; its own state); undefined before one came. */
  told(peer: string): PeerLagTold | undefined;
  /** What our BEATs say of us now. */
  ownLag(): { behind: boolean; writing: boolean };
  stop(): void;
  readonly counters: LivenessCounters;
}
