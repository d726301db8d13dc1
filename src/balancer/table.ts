/**
 * Round-robin slot tables: the kernel walks the table with `numgen inc`, one slot per
 * new flow, so consecutive flows alternate between backends in proportion to weight.
 * The table size is fixed per scheduler, so that a backend change is an update of map
 * elements and never of the rule (whose `mod N` stays put).
 */
export interface WeightedBackend {
  name: string;
  address: string;
  port: number;
  weight: number;
}

export interface BackendSlot {
  name: string;
  address: string;
  port: number;
}

/**
 * `size` slots shared in proportion to weight (largest remainder), interleaved in the
 * "smooth" weighted round-robin order (as nginx does) rather than in runs. Backends of
 * weight 0 get none; with no backend of positive weight the table is empty.
 */
export function roundRobinTable(backends: readonly WeightedBackend[], size: number): BackendSlot[] {
  const live = backends.filter((b) => b.weight > 0).sort((a, b) => a.name.localeCompare(b.name));
  if (live.length === 0) return [];
  const total = live.reduce((a, b) => a + b.weight, 0);
  const exact = live.map((b) => (b.weight * size) / total);
  const counts = exact.map(Math.floor);
  let left = size - counts.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left-- <= 0) break;
    counts[i]!++;
  }
  const current = counts.map(() => 0);
  // One slot object per backend, shared by its slots.
  const slot = live.map((b): BackendSlot => ({ name: b.name, address: b.address, port: b.port }));
  const slots: BackendSlot[] = [];
  for (let n = 0; n < size; n++) {
    let best = -1;
    for (let i = 0; i < live.length; i++) {
      if (counts[i] === 0) continue;
      current[i]! += counts[i]!;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= size;
    slots.push(slot[best]!);
  }
  return slots;
}
