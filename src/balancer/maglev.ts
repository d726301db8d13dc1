/**
 * Consistent hashing tables for the hashing schedulers (maglev, source-hash).
 *
 * Two levels, so that the table is both the same on every node and minimally disturbed:
 *  1. The base table: Maglev's permutation fill (Eisenbud et al., NSDI 2016, section 3.4)
 *     over the service's backend *set* (configured plus added at runtime), weighted. It
 *     depends only on that set, so every node computes it alike, and it is balanced to
 *     within a slot or two per backend.
 *  2. The effective table: a slot whose base backend takes no new flows (down, drained,
 *     disabled, removed) goes to one of the available backends by weighted rendezvous
 *     hashing on (slot, backend). Taking one backend out therefore moves exactly the slots
 *     it held and no other entry; bringing it back returns exactly those slots.
 * Changing the set itself (a backend added) refills the base table, which moves about
 * 1/N of the slots to the new backend plus Maglev's small disruption elsewhere.
 */
import { hash2, mix32 } from './hash.js';

/** A prime, so that every skip in [1, M) yields a full permutation. The checked kernel fact: a 65,537-entry map loads in well under a second. */
export const MAGLEV_TABLE_SIZE = 65537;

export interface HashBackend {
  name: string;
  weight: number;
}

/** Maglev's permutation fill: slot -> index into `backends` (sorted by name first). */
export function maglevBase(backends: readonly HashBackend[], size = MAGLEV_TABLE_SIZE): Int32Array {
  const table = new Int32Array(size).fill(-1);
  // Filled in name order, so the table does not depend on the order backends are listed in.
  const live = backends
    .map((b, i) => ({ ...b, i }))
    .filter((b) => b.weight > 0)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (live.length === 0) return table;
  const perm = live.map((b) => {
    const [h1, h2] = hash2(`maglev/${b.name}`);
    return { offset: h1 % size, skip: (h2 % (size - 1)) + 1, next: 0, credit: 0 };
  });
  const maxW = Math.max(...live.map((b) => b.weight));
  let filled = 0;
  while (filled < size) {
    for (let k = 0; k < live.length && filled < size; k++) {
      const p = perm[k]!;
      // Weighted: a backend of weight w claims w/maxW slots per round on average.
      p.credit += live[k]!.weight / maxW;
      while (p.credit >= 1 && filled < size) {
        let c = (p.offset + p.next * p.skip) % size;
        while (table[c] !== -1) {
          p.next++;
          c = (p.offset + p.next * p.skip) % size;
        }
        table[c] = live[k]!.i;
        p.next++;
        filled++;
        p.credit -= 1;
      }
    }
  }
  return table;
}

/**
 * The effective table: base slots of available backends stay; the others go to the
 * available backend with the best weighted rendezvous score for that slot.
 * Returns slot -> backend index, or -1 everywhere when nothing is available.
 */
export function effectiveTable(base: Int32Array, backends: readonly HashBackend[], available: readonly boolean[]): Int32Array {
  const out = new Int32Array(base.length);
  const avail = backends.map((b, i) => ({ i, w: b.weight, h: hash2(`hrw/${b.name}`)[0] })).filter((b) => available[b.i] && b.w > 0);
  for (let s = 0; s < base.length; s++) {
    const b = base[s]!;
    if (b >= 0 && available[b] && (backends[b]?.weight ?? 0) > 0) {
      out[s] = b;
      continue;
    }
    let best = -1;
    let bestScore = Infinity;
    for (const a of avail) {
      // -ln(u)/w is exponential with rate w: the minimum falls on backend a with probability w_a / sum(w).
      const u = (mix32(a.h ^ mix32(s)) + 1) / 4294967297;
      const score = -Math.log(u) / a.w;
      if (score < bestScore) {
        bestScore = score;
        best = a.i;
      }
    }
    out[s] = best;
  }
  return out;
}
