/**
 * The messages between the daemon's thread and its worker threads (workers/): what each
 * adapter that spawns a worker (adapters/vrrp/advertiser.ts, adapters/liveness/channel.ts,
 * adapters/flows/counter.ts) and the worker's entry point agree on.
 */
import type { ServiceKey } from './conntrack.js';
import type { CoreEvent, LivenessTiming } from '../fsm/liveness-core.js';
import type { AdvertTiming } from '../fsm/vrrp/advert-schedule.js';
import type { BeatInstance } from '../codec/sync/message.js';

/** The timing thread (workers/timing.ts): the adverts, and the liveness when it runs. */
export interface TimingWorkerData {
  /** SCHED_RR priority of the thread (1..99). */
  realtimePriority: number;
}

export type LivenessInMessage =
  | { type: 'start'; data: LivenessWorkerData }
  | { type: 'own'; instances: BeatInstance[]; leaving: boolean; ready?: boolean }
  | { type: 'want' }
  | { type: 'stop' };

/** Into the timing thread: a role's message, or the end of the thread. */
export type TimingIn = { role: 'advert'; m: AdvertWorkerMessage } | { role: 'liveness'; m: LivenessInMessage } | { role: 'exit' };
/** Out of it: a role's message. */
export type TimingOut = { role: 'advert'; m: { type: 'counters'; counters: AdvertTiming & { realtime: boolean; lastError: string } } } | { role: 'liveness'; m: CoreEvent | LivenessReport };

export type AdvertWorkerMessage =
  | { type: 'set'; key: string; fd: number; payload: Uint8Array; dst: string; intervalMs: number; leaseMs: number; sentAtMs?: number }
  | { type: 'stop'; prefix: string }
  | { type: 'close_fd'; fd: number }
  | { type: 'close' };

export interface FlowRequest {
  id: number;
  services: ServiceKey[];
}

export type FlowAnswer =
  | { id: number; ok: true; summaries: Array<Array<[string, { flows: number; established: number }]>> }
  | { id: number; ok: false; error: string };

export interface LivenessWorkerData {
  selfId: number;
  /** Our address on each link the BEATs cross (the sync link first). */
  links: string[];
  /** The interface of each link (index as in `links`): where a link-local address belongs. */
  linkIfnames?: string[];
  port: number;
  key: Uint8Array;
  intervalMs: number;
  multiplier: number;
  /** The main thread not ticking for this long stops our BEATs. */
  mainStallMs: number;
  /** state_sync.lag_bound (ms): over it, our BEATs say BEHIND. Default 1000. */
  lagBoundMs?: number;
  /** Failpoint `liveness.thread` (lib/failpoints.ts): the thread throws after this many BEAT rounds (its first start only). */
  dieAfterRounds?: number;
  /** How often the main thread ticks (ms): BEATs stop once it has not for mainStallMs + tickMs. */
  tickMs: number;
  /** Each peer's address on each link (index as in `links`; null: none there). */
  peers: { name: string; id: number; addresses: (string | null)[] }[];
  /** A BigInt64Array laid out as adapters/liveness/shared.ts says: the main thread's tick, the counters, each peer's BEATs. */
  shared: SharedArrayBuffer;
}

/** What the liveness role of the timing thread posts besides the core's events: what the shared slots do not hold, when it changed. */
export type LivenessReport =
  | { type: 'counters'; realtime: boolean; dropped: Record<string, number>; timing: LivenessTiming }
  /** Our BEATs began or stopped saying BEHIND (why: which peer said so, or our kernel writes waiting). */
  | { type: 'own_behind'; behind: boolean; why: string }
  /** The sockets it opened (once, at its start): a thread that dies leaves them to the process to close. */
  | { type: 'fds'; fds: number[] };
