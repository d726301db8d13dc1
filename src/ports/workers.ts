/**
 * The messages between the daemon's thread and its worker threads (workers/): what each
 * adapter that spawns a worker (adapters/vrrp/advertiser.ts, adapters/liveness/channel.ts,
 * adapters/flows/counter.ts) and the worker's entry point agree on.
 */
import type { ServiceKey } from './conntrack.js';

export interface AdvertWorkerData {
  /** SCHED_RR priority of this thread (1..99). */
  realtimePriority: number;
}

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
  /** Each peer's address on each link (index as in `links`; null: none there). */
  peers: { name: string; id: number; addresses: (string | null)[] }[];
  /** BigInt64Array[0]: the main thread's last tick, ms since the epoch. */
  tick: SharedArrayBuffer;
  /** SCHED_RR priority of this thread (1..99); default 10. */
  realtimePriority?: number;
}
