/**
 * Serial-number arithmetic for the 32-bit stream sequence numbers of the sync protocol
 * (RFC 1982 style): numbers wrap from 2^32 - 1 to 0, and two numbers compare by their signed
 * 32-bit distance. Correct as long as the numbers compared are less than 2^31 apart, which
 * the windows (a few hundred messages) guarantee by a wide margin.
 */

/** Numbers of the 32-bit sequence space. */
export const SEQ_MODULUS = 2 ** 32;

/** `a + n`, wrapped to 32 bits. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** The signed distance `a - b`: negative when `a` comes before `b`. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** `a` comes strictly before `b`. */
export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}

/** `a` comes before `b` or is `b`. */
export function seqLe(a: number, b: number): boolean {
  return seqDiff(a, b) <= 0;
}

/** `lo <= s < hi` in serial order (the half-open interval starting at `lo`). */
export function seqInRange(s: number, lo: number, hi: number): boolean {
  return seqDiff(s, lo) >= 0 && seqDiff(s, hi) < 0;
}

/** True for an integer in 0..2^32-1. */
export function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < SEQ_MODULUS;
}
