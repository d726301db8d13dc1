/**
 * Health probes are plug-ins (ENGINEERING.md, convention 8): one interface, one module per
 * kind, a registry in index.ts. A probe is thin and impure: it talks to a backend, reads
 * the real clock for its own timeout, and reports what happened as a value. It never
 * throws and never rejects: a refused connection, a wrong status, a timeout or a failed
 * spawn are all `{ ok: false, detail }` results.
 */
import type { ProbeResult } from '../../ports/health.js';
import { timeoutDetail } from '../../fsm/health/probes.js';

/**
 * The settle-once plumbing every probe needs: a start time, a timeout timer, and a
 * `finish` that resolves only the first time and clears the timer. On timeout the
 * result is settled first, then `abort` runs to tear the work down (so whatever the
 * teardown emits cannot overwrite the timeout result).
 */
export function settleOnce(
  timeoutMs: number,
  abort: () => void,
  resolve: (r: ProbeResult) => void,
): { finish: (ok: boolean, detail: string) => void } {
  const t0 = performance.now();
  let done = false;
  const finish = (ok: boolean, detail: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    resolve({ ok, detail, ms: Math.round(performance.now() - t0) });
  };
  const timer = setTimeout(() => {
    finish(false, timeoutDetail(timeoutMs));
    try {
      abort();
    } catch {
      // Tearing down a timed-out probe is best effort; the result is already in.
    }
  }, Math.max(0, timeoutMs));
  return { finish };
}
