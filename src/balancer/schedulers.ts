/**
 * The schedulers, as plug-ins behind one interface: each says how the kernel picks a
 * slot for a new flow (an nft expression) and how many slots its table has, and builds
 * the table from the service's backends. Tables are pure functions of the backends, so
 * every node builds the same one.
 */
import { effectiveTable, maglevBase, MAGLEV_TABLE_SIZE } from './maglev.js';
import { roundRobinTable, type BackendSlot } from './table.js';

export type SchedulerName = 'rr' | 'wrr' | 'source-hash' | 'maglev';

export interface SchedBackend {
  name: string;
  address: string;
  port: number;
  weight: number;
  /** Takes new flows: enabled, healthy, weight > 0. */
  available: boolean;
}

export interface ListenKey {
  family: 4 | 6;
  proto: 'tcp' | 'udp';
}

export interface Scheduler {
  name: SchedulerName;
  /** Number of slots: fixed, so backend changes touch map elements only. */
  size: number;
  /** The nft expression choosing the slot of a new flow. */
  selector(listen: ListenKey, seed: number): string;
  /** slot -> backend, or null where the slot has no backend (nothing available). */
  table(backends: readonly SchedBackend[]): (BackendSlot | null)[];
}

const ipk = (l: ListenKey) => (l.family === 4 ? 'ip' : 'ip6');
const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** Round robin over a 1,024-slot table walked by `numgen inc`. */
const RR_SIZE = 1024;

function roundRobin(name: 'rr' | 'wrr', weighted: boolean): Scheduler {
  return {
    name,
    size: RR_SIZE,
    selector: () => `numgen inc mod ${RR_SIZE}`,
    table: (backends) => {
      const live = backends.filter((b) => b.available && b.weight > 0).map((b) => ({ ...b, weight: weighted ? b.weight : 1 }));
      const slots = roundRobinTable(live, RR_SIZE);
      return slots.length ? slots : new Array<null>(RR_SIZE).fill(null);
    },
  };
}

function hashing(name: 'source-hash' | 'maglev', size: number, key: (l: ListenKey) => string): Scheduler {
  return {
    name,
    size,
    selector: (l, seed) => `jhash ${key(l)} mod ${size} seed ${hex(seed)}`,
    table: (backends) => {
      const sorted = [...backends].sort((a, b) => a.name.localeCompare(b.name));
      const base = maglevBase(sorted, size);
      const eff = effectiveTable(base, sorted, sorted.map((b) => b.available));
      return Array.from(eff, (i) => {
        const b = sorted[i];
        return i >= 0 && b ? { name: b.name, address: b.address, port: b.port } : null;
      });
    },
  };
}

/** A prime table size for source hashing: one client address, one backend. */
const SOURCE_HASH_SIZE = 4099;

export const SCHEDULERS: Readonly<Record<SchedulerName, Scheduler>> = {
  rr: roundRobin('rr', false),
  wrr: roundRobin('wrr', true),
  // Sticky per client (pen's default, pf's source-hash): the client's address alone.
  'source-hash': hashing('source-hash', SOURCE_HASH_SIZE, (l) => `${ipk(l)} saddr`),
  // Per flow, consistent: the client's address and port, as in the Maglev paper's 5-tuple
  // (the destination is the service itself).
  maglev: hashing('maglev', MAGLEV_TABLE_SIZE, (l) => `${ipk(l)} saddr . ${l.proto} sport`),
};
