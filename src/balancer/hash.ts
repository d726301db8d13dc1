/**
 * Small deterministic hashes for the schedulers. Every node computes the same values
 * from the same names, so every node builds the same tables and picks the same seeds.
 */
import { createHash } from 'node:crypto';

/** Two independent 32-bit values from a string (sha256; only for setup, not per packet). */
export function hash2(s: string): [number, number] {
  const d = createHash('sha256').update(s).digest();
  return [d.readUInt32BE(0), d.readUInt32BE(4)];
}

/** The jhash seed of a service: the same on every node of the cluster. */
export function serviceSeed(cluster: string, service: string): number {
  return hash2(`fwlb-seed/${cluster}/${service}`)[0];
}

/** murmur3's 32-bit finaliser: a fast, well-mixed integer hash. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
