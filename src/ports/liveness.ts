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

/** Where the BEATs are sent and timed: the timing thread (adapters/liveness/channel.ts). */
export interface LivenessChannel {
  start(onEvent: (e: CoreEvent | { type: 'error'; message: string }) => void): void;
  /** What our BEATs say from now on (sent at once). */
  setOwn(instances: BeatInstance[], leaving: boolean, ready?: boolean): void;
  /** The next BEAT of every peer is reported, whatever it says (the worker reports only news). */
  wantBeat(): void;
  /** When the peer's last BEAT came (ms, the clock's epoch) and how many came; undefined before the first. */
  seen(peer: string): { lastBeatAtMs: number; beats: number } | undefined;
  stop(): void;
  readonly counters: LivenessCounters;
}
