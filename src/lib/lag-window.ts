/**
 * Percentiles of a latency over the last minute, in fixed memory (issue 25: the state sync's
 * lag per peer, p50 and p99 "over the last minute", for status and metrics): a histogram of
 * logarithmic buckets (each 10% wider than the one before, from 0.05 ms to about 3 minutes; beyond, the minute's largest sample)
 * per 5-second slot, 12 slots, the oldest reused as time moves on. A percentile is read from
 * the slots of the last minute as its bucket's upper edge: at most 10% above the true value,
 * never below it. Samples carry a weight (records acknowledged together count each).
 * Clock-free: the caller passes the time.
 */

const FIRST_MS = 0.05;
const GROWTH = 1.1;
const BUCKETS = 160; // 0.05 ms * 1.1^159: about 190 s; larger samples land in the last one
const SLOT_MS = 5000;
const SLOTS = 12;
const LOG_GROWTH = Math.log(GROWTH);

/** The upper edge of bucket i (ms). */
const edge = (i: number): number => FIRST_MS * GROWTH ** i;

export interface LagSummary {
  /** Samples' weight over the last minute (records). */
  records: number;
  /** null when there was none. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** The largest sample of the last minute, exactly. */
  maxMs: number | null;
}

export class LagWindow {
  private readonly counts = new Float64Array(SLOTS * BUCKETS);
  private readonly max = new Float64Array(SLOTS);
  /** The slot number (time / SLOT_MS) each slot holds, -1 when empty. */
  private readonly holds = new Float64Array(SLOTS).fill(-1);

  /** A sample of `ms` (weight `weight`) at time `nowMs`. */
  add(nowMs: number, ms: number, weight = 1): void {
    if (!(weight > 0) || !Number.isFinite(ms)) return;
    const v = Math.max(0, ms);
    const n = Math.floor(nowMs / SLOT_MS);
    const slot = ((n % SLOTS) + SLOTS) % SLOTS;
    if (this.holds[slot] !== n) {
      this.counts.fill(0, slot * BUCKETS, (slot + 1) * BUCKETS);
      this.max[slot] = 0;
      this.holds[slot] = n;
    }
    const b = v <= FIRST_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(v / FIRST_MS) / LOG_GROWTH - 1e-9));
    this.counts[slot * BUCKETS + b]! += weight;
    if (v > this.max[slot]!) this.max[slot] = v;
  }

  /** The last minute's samples (the current slot and the 11 before it). */
  summary(nowMs: number): LagSummary {
    const n = Math.floor(nowMs / SLOT_MS);
    const merged = new Float64Array(BUCKETS);
    let total = 0;
    let max: number | null = null;
    for (let s = 0; s < SLOTS; s++) {
      const h = this.holds[s]!;
      if (h < 0 || h > n || n - h >= SLOTS) continue;
      for (let b = 0; b < BUCKETS; b++) {
        const c = this.counts[s * BUCKETS + b]!;
        merged[b]! += c;
        total += c;
      }
      if (max === null || this.max[s]! > max) max = this.max[s]!;
    }
    if (total === 0) return { records: 0, p50Ms: null, p99Ms: null, maxMs: null };
    const at = (q: number): number => {
      const want = q * total;
      let seen = 0;
      for (let b = 0; b < BUCKETS; b++) {
        seen += merged[b]!;
        // Never above the largest sample: its bucket's edge may be. The last bucket takes
        // everything beyond its edge: there the largest sample is the honest upper figure.
        if (seen >= want) return b === BUCKETS - 1 ? max! : Math.min(edge(b), max!);
      }
      return max!;
    };
    return { records: total, p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(max!) };
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;
