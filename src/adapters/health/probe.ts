/**
 * Health probes are plug-ins (ENGINEERING.md, convention 8): one interface, one module per
 * kind, a registry in index.ts. A probe is thin and impure: it talks to a backend, reads
 * the real clock for its own timeout, and reports what happened as a value. It never
 * throws and never rejects: a refused connection, a wrong status, a timeout or a failed
 * spawn are all `{ ok: false, detail }` results.
 */
import type { HealthConfig } from '../../config/schema.js';

export type ProbeKind = 'tcp' | 'http' | 'script';

/** What to check: one backend of one service, with the service's health config. */
export interface ProbeTarget {
  service: string;
  backend: string;
  address: string;
  /** The backend's port; a check may override it (`tcp.port`, `http.port`). */
  port: number;
  family: 4 | 6;
  check: HealthConfig;
}

export interface ProbeResult {
  ok: boolean;
  /** Short and stable for identical failures (logs are rate-limited on it): "connect ECONNREFUSED". */
  detail: string;
  /** Elapsed milliseconds, rounded. */
  ms: number;
}

export interface Probe {
  readonly kind: ProbeKind;
  /** Checks `target` once; resolves within about `timeoutMs`, never rejects. */
  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult>;
}

/** A probe registry: one probe per kind. */
export type ProbeRegistry = Readonly<Record<ProbeKind, Probe>>;

/** The stable detail of a probe that ran out of time. */
export function timeoutDetail(timeoutMs: number): string {
  return `timeout after ${timeoutMs} ms`;
}

/**
 * A short, stable description of a Node system error: "connect ECONNREFUSED",
 * "read ECONNRESET", "spawn /opt/check ENOENT"; the message for anything else.
 */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const { code, syscall } = e as NodeJS.ErrnoException;
    if (code && syscall) return `${syscall} ${code}`;
    if (code && !e.message.includes(code)) return `${e.message} (${code})`;
    return e.message;
  }
  return String(e);
}

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
