/**
 * Runs the health checks of `fwlb run`: one schedule per backend, a probe plug-in to
 * check it, the pure rise/fall machine (fsm/health) to judge the results, and an
 * `onChange` callback when a backend goes up or down.
 *
 * Scheduling (formulas below, one named function each):
 *   - the first check of a target runs at a random offset in [0, interval), so that
 *     thousands of backends configured at once do not all fire together;
 *   - each next check is due `interval ± 10%` after the previous one started; a probe
 *     that is still running when it is due delays it (at most one probe in flight per
 *     target), and it then runs as soon as that probe is done;
 *   - a probe enforces its own timeout; the checker also guards it and counts a probe
 *     still running `GUARD_GRACE_MS` after its timeout as a timeout failure, stops
 *     waiting for it and ignores its late result (a real probe is done by then; only a
 *     broken plug-in could still be running when the next check starts).
 * A backend that starts failing right after a successful check is therefore judged
 * down within `fall × interval × 1.1` plus one probe's duration (at most the timeout).
 *
 * Reload: `setTargets` keeps the state and schedule of every target whose service,
 * backend, address, port, family and check are unchanged (keepalived's checker
 * `compare`/`migrate`), restarts the changed ones, starts new ones, stops removed ones.
 */
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { TimerDriver } from '../lib/timers.js';
import { initialHealth, step, type HealthState, type HealthStatus } from '../fsm/health/health.js';
import { checkKind, probeFor, timeoutDetail } from '../fsm/health/probes.js';
import { describeError } from '../lib/errors.js';
import type { Probe, ProbeKind, ProbeRegistry, ProbeResult, ProbeTarget } from '../ports/health.js';

/** Checks after the first are spaced `interval × (1 ± INTERVAL_JITTER)`. */
export const INTERVAL_JITTER = 0.1;
/** How long after its timeout a probe that has not answered is counted as timed out. */
export const GUARD_GRACE_MS = 50;
/** Identical failures of one target are logged at most once per this long by default. */
export const FAILURE_LOG_INTERVAL_MS = 60_000;

/** Delay of a target's first check: uniform in [0, interval), whole milliseconds. */
export function firstCheckDelay(intervalMs: number, random: () => number): number {
  const interval = Math.max(1, intervalMs);
  return Math.min(interval - 1, Math.floor(unit(random) * interval));
}

/** Time from one check's start to the next one's: interval ± INTERVAL_JITTER, whole milliseconds. */
export function nextCheckDelay(intervalMs: number, random: () => number): number {
  const interval = Math.max(1, intervalMs);
  return Math.max(1, Math.round(interval * (1 - INTERVAL_JITTER + 2 * INTERVAL_JITTER * unit(random))));
}

/** A health verdict changed. */
export interface HealthChange {
  service: string;
  backend: string;
  up: boolean;
  /** The result that decided it ("connect ECONNREFUSED"), or what happened ("health check changed"). */
  detail: string;
  /** Plain English: "3 consecutive failures (fall 3): connect ECONNREFUSED". */
  why: string;
}

export interface HealthCheckerDeps {
  clock: Clock;
  log: Logger;
  /** The probe plug-ins, by kind (adapters/health `probes`, or test doubles). */
  probes: ProbeRegistry;
  /** Uniform in [0, 1), for jitter; default Math.random. */
  random?: () => number;
  /** Called on every up/down transition. Exceptions it throws are logged and ignored. */
  onChange: (ev: HealthChange) => void;
  /** New targets begin down and need `rise` successes (keepalived's `alpha`); default: begin up. */
  startDown?: boolean;
  /** Rate limit of identical failure log lines per target; default FAILURE_LOG_INTERVAL_MS. */
  failureLogIntervalMs?: number;
}

/** One target's health, for `fwlb status`. Times are the injected clock's milliseconds. */
export interface BackendHealth {
  service: string;
  backend: string;
  address: string;
  port: number;
  kind: ProbeKind | undefined;
  status: HealthStatus;
  okStreak: number;
  failStreak: number;
  lastDetail?: string;
  /** When the last check finished. */
  lastCheckAt?: number;
  /** When the status last changed; absent if it never did since the target started. */
  lastChangeAt?: number;
  /** Checks finished since the target (re)started, and how many of them failed. */
  checks: number;
  failures: number;
  inFlight: boolean;
}

/** Rate limiting of one target's failure log lines: identical details are logged once per window. */
interface FailureLog {
  detail?: string;
  at: number;
  suppressed: number;
}

/** A target being checked: its config, its machine state, its schedule. */
interface Checked {
  readonly key: string;
  readonly identity: string;
  readonly target: ProbeTarget;
  readonly probe: Probe | undefined;
  health: HealthState;
  checks: number;
  failures: number;
  lastCheckAt?: number;
  /** Prefix of this record's timers (`next`: the next check; `guard`: the running probe's guard). */
  readonly timerKey: string;
  /** Sequence number of the running probe (0: none); results of any other run are stale. */
  running: number;
  runs: number;
  /** When the next check is due (set when a check starts). */
  dueAt: number;
  failureLog: FailureLog;
  stopped: boolean;
}

export class HealthChecker {
  private readonly targets = new Map<string, Checked>();
  private readonly random: () => number;
  private readonly failureLogIntervalMs: number;
  private readonly timers: TimerDriver;
  private records = 0;

  constructor(private readonly deps: HealthCheckerDeps) {
    this.timers = new TimerDriver(deps.clock);
    this.random = deps.random ?? Math.random;
    this.failureLogIntervalMs = deps.failureLogIntervalMs ?? FAILURE_LOG_INTERVAL_MS;
  }

  /**
   * Replaces the set of checked targets (identified by service and backend). Unchanged
   * targets keep their state and schedule; changed ones restart from the initial state
   * (and `onChange` is called if that flips their status); new ones start with a
   * jittered first check; removed ones stop. New targets do not trigger `onChange`:
   * their initial status (up, or down with `startDown`) is in `snapshot()`.
   */
  setTargets(targets: readonly ProbeTarget[]): void {
    const wanted = new Map<string, ProbeTarget>();
    for (const t of targets) {
      const key = targetKey(t);
      if (wanted.has(key)) this.deps.log.warn({ event: 'health_target_duplicate', service: t.service, backend: t.backend }, 'duplicate health target; the last one wins');
      wanted.set(key, t);
    }
    const counts = { kept: 0, added: 0, restarted: 0, removed: 0 };
    for (const [key, old] of this.targets) {
      if (wanted.has(key)) continue;
      this.halt(old);
      this.targets.delete(key);
      counts.removed++;
      this.deps.log.debug({ event: 'health_target_removed', service: old.target.service, backend: old.target.backend }, 'health check stopped');
    }
    for (const [key, t] of wanted) {
      const old = this.targets.get(key);
      if (old && old.identity === targetIdentity(t)) {
        counts.kept++;
        continue;
      }
      const rec = this.begin(key, t);
      if (old) {
        this.halt(old);
        counts.restarted++;
        this.deps.log.info({ event: 'health_target_restarted', service: t.service, backend: t.backend }, 'health check changed; restarted');
        if (old.health.status !== rec.health.status) {
          this.transition(rec, old.health.status, rec.health.status, 'health check changed: restarted', 'health check changed');
        }
      } else {
        counts.added++;
        this.deps.log.debug({ event: 'health_target_added', service: t.service, backend: t.backend, kind: checkKind(t.check) }, 'health check started');
      }
    }
    this.deps.log.info({ event: 'health_targets', ...counts, total: this.targets.size }, 'health targets set');
  }

  /** Every target's health, sorted by service and backend. */
  snapshot(): BackendHealth[] {
    return [...this.targets.values()]
      .sort((a, b) => a.target.service.localeCompare(b.target.service) || a.target.backend.localeCompare(b.target.backend))
      .map((c) => ({
        service: c.target.service,
        backend: c.target.backend,
        address: c.target.address,
        port: c.target.port,
        kind: c.probe?.kind,
        status: c.health.status,
        okStreak: c.health.okStreak,
        failStreak: c.health.failStreak,
        lastDetail: c.health.lastDetail,
        lastCheckAt: c.lastCheckAt,
        lastChangeAt: c.health.lastChangeAt,
        checks: c.checks,
        failures: c.failures,
        inFlight: c.running !== 0,
      }));
  }

  /** Cancels every timer and forgets every target; results of probes still running are ignored. */
  stop(): void {
    for (const c of this.targets.values()) this.halt(c);
    this.targets.clear();
  }

  /** Creates a target's record, registers it and schedules its first check. */
  private begin(key: string, target: ProbeTarget): Checked {
    const rec: Checked = {
      key,
      timerKey: `${++this.records}/`,
      identity: targetIdentity(target),
      target,
      probe: probeFor(target.check, this.deps.probes),
      health: initialHealth({ startDown: this.deps.startDown ?? false }),
      checks: 0,
      failures: 0,
      running: 0,
      runs: 0,
      dueAt: 0,
      failureLog: { at: 0, suppressed: 0 },
      stopped: false,
    };
    this.targets.set(key, rec);
    this.timers.after(`${rec.timerKey}next`, firstCheckDelay(target.check.interval, this.random), () => this.check(rec));
    return rec;
  }

  private halt(c: Checked): void {
    c.stopped = true;
    this.timers.cancelAll(c.timerKey);
    c.running = 0;
  }

  /** Starts one check: the probe, its guard, and when the next one is due. */
  private check(c: Checked): void {
    if (c.stopped) return;
    const { clock } = this.deps;
    const startedAt = clock.now();
    const timeout = c.target.check.timeout;
    const run = ++c.runs;
    c.running = run;
    c.dueAt = startedAt + nextCheckDelay(c.target.check.interval, this.random);
    this.timers.after(`${c.timerKey}guard`, timeout + GUARD_GRACE_MS, () => {
      this.finish(c, run, { ok: false, detail: timeoutDetail(timeout), ms: clock.now() - startedAt });
    });
    const failed = (e: unknown): ProbeResult => ({ ok: false, detail: `probe error: ${describeError(e)}`, ms: clock.now() - startedAt });
    let pending: Promise<ProbeResult>;
    if (!c.probe) {
      pending = Promise.resolve({ ok: false, detail: 'no tcp, http or script check configured', ms: 0 });
    } else {
      try {
        pending = Promise.resolve(c.probe.run(c.target, timeout));
      } catch (e) {
        pending = Promise.resolve(failed(e));
      }
    }
    pending.then(
      (r) => this.finish(c, run, r),
      (e: unknown) => this.finish(c, run, failed(e)),
    );
  }

  /** Takes in a check's result (unless it is stale), then schedules the next check. */
  private finish(c: Checked, run: number, r: ProbeResult): void {
    if (c.stopped || c.running !== run) return;
    const { clock } = this.deps;
    c.running = 0;
    this.timers.cancel(`${c.timerKey}guard`);
    const now = clock.now();
    const result = { ok: r?.ok === true, detail: String(r?.detail ?? ''), ms: Number(r?.ms) || 0 };
    const from = c.health.status;
    const stepped = step(c.health, result, now, { rise: c.target.check.rise, fall: c.target.check.fall });
    c.health = stepped.state;
    c.checks++;
    c.lastCheckAt = now;
    if (!result.ok) c.failures++;
    if (stepped.changed) {
      c.failureLog = { detail: result.ok ? undefined : result.detail, at: now, suppressed: 0 };
      this.transition(c, from, stepped.changed.to, stepped.changed.why, result.detail);
    } else if (!result.ok) {
      this.logFailure(c, result, now);
    } else {
      c.failureLog = { at: now, suppressed: 0 };
    }
    this.timers.at(`${c.timerKey}next`, Math.max(now, c.dueAt), () => this.check(c));
  }

  /** Logs a transition ({from, to, why}) and tells `onChange`. */
  private transition(c: Checked, from: HealthStatus, to: HealthStatus, why: string, detail: string): void {
    const { service, backend } = c.target;
    const fields = { event: 'health_transition', service, backend, from, to, why };
    if (to === 'down') this.deps.log.warn(fields, `backend ${service}/${backend} is down`);
    else this.deps.log.info(fields, `backend ${service}/${backend} is up`);
    try {
      this.deps.onChange({ service, backend, up: to === 'up', detail, why });
    } catch (e) {
      this.deps.log.error({ event: 'health_on_change_failed', service, backend, err: e }, 'health change handler failed');
    }
  }

  /** A failed check that changed nothing: logged when its detail is new, else once per window. */
  private logFailure(c: Checked, r: ProbeResult, now: number): void {
    const fl = c.failureLog;
    if (fl.detail === r.detail && now - fl.at < this.failureLogIntervalMs) {
      fl.suppressed++;
      return;
    }
    const { service, backend } = c.target;
    this.deps.log.warn(
      { event: 'health_check_failed', service, backend, status: c.health.status, failStreak: c.health.failStreak, detail: r.detail, ms: r.ms, suppressed: fl.suppressed },
      `health check of ${service}/${backend} failed: ${r.detail}`,
    );
    c.failureLog = { detail: r.detail, at: now, suppressed: 0 };
  }
}

function targetKey(t: ProbeTarget): string {
  return `${t.service}/${t.backend}`;
}

/** Everything that, when changed, restarts a target's check. */
function targetIdentity(t: ProbeTarget): string {
  return canonicalJson({ service: t.service, backend: t.backend, address: t.address, port: t.port, family: t.family, check: t.check });
}

/** JSON with object keys sorted, so equal values give equal strings whatever the key order. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

/** A random number clamped into [0, 1). */
function unit(random: () => number): number {
  const x = random();
  return Number.isFinite(x) ? Math.min(Math.max(x, 0), 1 - Number.EPSILON) : 0;
}
