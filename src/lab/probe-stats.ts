/** Figures from a prober's record (prober.ts): what a client saw during a failure. */

/** [start offset ms, who answered or null, duration ms] */
export type ProbeRecord = [number, string | null, number];

/** The longest time between the starts of two successful probes, and the failed probes. */
export function probeGaps(probes: readonly ProbeRecord[]): { gap: number; failed: number; total: number } {
  let last: number | undefined;
  let gap = 0;
  let failed = 0;
  for (const [t, who] of probes) {
    if (who === null) {
      failed++;
      continue;
    }
    if (last !== undefined) gap = Math.max(gap, t - last);
    last = t;
  }
  return { gap, failed, total: probes.length };
}
