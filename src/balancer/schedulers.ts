/**
 * The schedulers, as plug-ins behind one interface: each says how the kernel picks a
 * slot for a new flow (an nft expression) and how many slots its table has, and builds
 * the table from the service's backends. Tables are pure functions of the backends, so
 * every node builds the same one.
 */
import { effectiveTable, maglevBase } from './maglev.js';
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

/** Round-robin tables: a power of two between these, 32 slots per configured backend by default. */
export const RR_MIN_SIZE = 64;
export const RR_MAX_SIZE = 1024;
const RR_SLOTS_PER_BACKEND = 32;

/**
 * Consistent-hash tables: a prime (every skip in [1, M) then yields a full permutation),
 * at least 100 slots per configured backend (Maglev's rule for balance within about 1%):
 * the smallest of these that fits. 65,537 stays allowed by hand.
 */
export const HASH_TABLE_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521] as const;
const HASH_SLOTS_PER_BACKEND = 100;
/** The largest table a service may ask for. */
export const MAX_TABLE_SIZE = 65537;

function roundRobin(name: 'rr' | 'wrr', weighted: boolean, size: number): Scheduler {
  return {
    name,
    size,
    selector: () => `numgen inc mod ${size}`,
    table: (backends) => {
      const live = backends.filter((b) => b.available && b.weight > 0).map((b) => ({ ...b, weight: weighted ? b.weight : 1 }));
      const slots = roundRobinTable(live, size);
      return slots.length ? slots : new Array<null>(size).fill(null);
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
      // One slot object per backend, shared by its slots.
      const slot = sorted.map((b) => ({ name: b.name, address: b.address, port: b.port }));
      return Array.from(eff, (i) => (i >= 0 ? slot[i] ?? null : null));
    },
  };
}

/** The default table size of a scheduler for this many configured backends. */
export function defaultTableSize(name: SchedulerName, backends: number): number {
  const n = Math.max(1, backends);
  if (name === 'rr' || name === 'wrr') {
    let size = RR_MIN_SIZE;
    while (size < n * RR_SLOTS_PER_BACKEND && size < RR_MAX_SIZE) size *= 2;
    return size;
  }
  return HASH_TABLE_PRIMES.find((p) => p >= n * HASH_SLOTS_PER_BACKEND) ?? HASH_TABLE_PRIMES[HASH_TABLE_PRIMES.length - 1]!;
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Why a table size does not suit a scheduler, or undefined when it does. */
export function tableSizeProblem(name: SchedulerName, size: number): string | undefined {
  if (!Number.isInteger(size) || size < 1 || size > MAX_TABLE_SIZE) return `must be a whole number from 1 to ${MAX_TABLE_SIZE}`;
  if ((name === 'maglev' || name === 'source-hash') && !isPrime(size)) {
    const next = [...HASH_TABLE_PRIMES, MAX_TABLE_SIZE].find((p) => p >= size) ?? MAX_TABLE_SIZE;
    return `must be a prime for ${name} (a permutation of every slot needs it), e.g. ${next}`;
  }
  return undefined;
}

/**
 * The scheduler of a service, its table sized to the work: `table_size` if the config sets
 * it, else by the number of configured backends (defaultTableSize). The size is fixed for
 * the config's life, so every backend change at runtime is an update of map elements.
 */
export function makeScheduler(name: SchedulerName, size: number): Scheduler {
  switch (name) {
    case 'rr':
      return roundRobin('rr', false, size);
    case 'wrr':
      return roundRobin('wrr', true, size);
    // Sticky per client (pen's default, pf's source-hash): the client's address alone.
    case 'source-hash':
      return hashing('source-hash', size, (l) => `${ipk(l)} saddr`);
    // Per flow, consistent: the client's address and port, as in the Maglev paper's 5-tuple
    // (the destination is the service itself).
    case 'maglev':
      return hashing('maglev', size, (l) => `${ipk(l)} saddr . ${l.proto} sport`);
  }
}

/** Tables remembered per scheduler (a reload recomputes none of the unchanged services'). */
const TABLE_MEMO_LIMIT = 2048;

/**
 * The same scheduler, its tables remembered: a table is a pure function of the backends, so
 * a reload of 100 unchanged services builds none of them again. Callers must not change a
 * table they get (they only read it).
 */
function memoized(s: Scheduler): Scheduler {
  const memo = new Map<string, (BackendSlot | null)[]>();
  return {
    ...s,
    table: (backends) => {
      const key = backends.map((b) => `${b.name}|${b.address}|${b.port}|${b.weight}|${b.available ? 1 : 0}`).join(',');
      let t = memo.get(key);
      if (!t) {
        t = s.table(backends);
        if (memo.size >= TABLE_MEMO_LIMIT) memo.delete(memo.keys().next().value as string);
        memo.set(key, t);
      }
      return t;
    },
  };
}

/** Memoized per (scheduler, size): tables are pure, schedulers are stateless. */
const made = new Map<string, Scheduler>();

export function schedulerFor(svc: { scheduler: SchedulerName; table_size?: number | undefined; backends: Readonly<Record<string, unknown>> }): Scheduler {
  const size = svc.table_size ?? defaultTableSize(svc.scheduler, Object.keys(svc.backends).length);
  const key = `${svc.scheduler}/${size}`;
  let s = made.get(key);
  if (!s) made.set(key, (s = memoized(makeScheduler(svc.scheduler, size))));
  return s;
}
