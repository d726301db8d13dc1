/**
 * Active-active sharing (issue 14): which node carries which flows. Every node sees every
 * frame for the shared addresses; the ruleset puts each new flow in a bucket (a keyed hash
 * of its original tuple, stored in the conntrack mark, so both directions and the related
 * flows follow it) and a node forwards only the buckets it owns. This module decides the
 * owners: a pure function of the bucket count, the seed and the sorted live members, so
 * every node that sees the same members computes the same owners without a word exchanged.
 *
 * Rendezvous (highest random weight) hashing: each bucket goes to the member with the
 * highest hash of (seed, member, bucket). A member that leaves moves only its own buckets
 * (each to the member ranked next for it); a member that joins takes about 1/N of the
 * buckets, each from the member that held it, and nothing else moves.
 */
import { mix32 } from '../balancer/hash.js';

/** 32-bit FNV-1a of a name (UTF-16 code units), finalised. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), 0x01000193) >>> 0;
    h = Math.imul(h ^ (c >>> 8), 0x01000193) >>> 0;
  }
  return mix32(h);
}

/** The rendezvous score of (seed, member, bucket): two rounds of mixing, so that similar names and neighbouring buckets are unrelated. */
function score(seed: number, member: number, bucket: number): number {
  return mix32((mix32((member ^ seed) >>> 0) + Math.imul(bucket + 1, 0x9e3779b9)) >>> 0);
}

/**
 * The owner of every bucket (index 0 .. buckets-1) among `members`; undefined for all when
 * there is none. The order of `members` does not matter.
 */
export function bucketOwners(buckets: number, members: readonly string[], seed: number): (string | undefined)[] {
  const sorted = [...new Set(members)].sort();
  const keys = sorted.map(nameHash);
  const owners: (string | undefined)[] = new Array(buckets);
  for (let b = 0; b < buckets; b++) {
    let best: string | undefined;
    let bestScore = -1;
    sorted.forEach((m, i) => {
      const s = score(seed, keys[i]!, b);
      if (s > bestScore) {
        bestScore = s;
        best = m;
      }
    });
    owners[b] = best;
  }
  return owners;
}

/** The buckets `self` owns, as the ruleset's conntrack marks (bucket + 1: mark 0 is "not shared"). */
export function ownedMarks(owners: readonly (string | undefined)[], self: string): number[] {
  const out: number[] = [];
  owners.forEach((o, b) => {
    if (o === self) out.push(b + 1);
  });
  return out;
}

/** The sharing mark of a conntrack entry's bucket (undefined: not a shared flow). */
export function bucketOfMark(mark: number | undefined, buckets: number): number | undefined {
  return mark !== undefined && mark >= 1 && mark <= buckets ? mark - 1 : undefined;
}

/** The default seed of the flow hash: derived from the cluster's name, the same on every node. */
export function defaultSeed(clusterName: string): number {
  return mix32(nameHash(clusterName) ^ 0x5eed);
}

/**
 * The source ports a node uses when it translates to a shared address (SNAT, masquerade):
 * disjoint per node (by its index among the configured nodes, sorted by name), so that two
 * nodes never pick the same (address, port) for different flows.
 */
export function natPortRange(nodeIndex: number, nodeCount: number, low = 1024, high = 65535): { from: number; to: number } {
  const span = Math.floor((high - low + 1) / nodeCount);
  const from = low + nodeIndex * span;
  return { from, to: nodeIndex === nodeCount - 1 ? high : from + span - 1 };
}

/**
 * What changes when the owners change: the marks to add to and remove from our owned set.
 */
export function ownershipDelta(before: readonly number[], after: readonly number[]): { add: number[]; remove: number[] } {
  const b = new Set(before);
  const a = new Set(after);
  return { add: after.filter((x) => !b.has(x)), remove: before.filter((x) => !a.has(x)) };
}
