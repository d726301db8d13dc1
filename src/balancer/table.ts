/**
 * Backend slot tables: the values of a service's kernel map. The kernel picks a slot
 * (numgen inc for round robin; a flow hash for the hashing schedulers) and DNATs
 * to that slot's backend. Pure and deterministic: every node computes the same table.
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
 * Weighted round robin, interleaved ("smooth" WRR as in nginx): each backend gets
 * `weight` slots, spread through the table instead of in runs, so that with
 * `numgen inc` consecutive flows alternate between backends in proportion.
 * Weights are reduced by their common divisor first to keep the table small.
 */
export function backendTable(backends: readonly WeightedBackend[]): BackendSlot[] {
  const live = backends.filter((b) => b.weight > 0).sort((a, b) => a.name.localeCompare(b.name));
  if (live.length === 0) return [];
  const g = live.reduce((acc, b) => gcd(acc, b.weight), 0);
  const weights = live.map((b) => b.weight / g);
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  const slots: BackendSlot[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let i = 0; i < live.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    const b = live[best]!;
    slots.push({ name: b.name, address: b.address, port: b.port });
  }
  return slots;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
