/**
 * The rise/fall machine of one backend's health. Pure (ENGINEERING.md, convention 2):
 * a check result and the time in, the next state and an optional transition out.
 *
 * A backend is `up` or `down`. Each result lengthens the streak of its own kind and
 * resets the other one:
 *   - up:   `fall` consecutive failures take it down; a success resets the fail streak.
 *   - down: `rise` consecutive successes bring it up; a failure resets the ok streak.
 * Streaks keep counting past the threshold (`fwlb status` can say "failing for 40
 * checks"); a result agreeing with the current status never flips it.
 *
 * Initial status: `up`, as keepalived starts a checked real server up unless `alpha` is
 * set. A daemon (re)start then does not take working backends out of the maps while the
 * first `rise` checks run; the price is that a dead backend gets flows until `fall`
 * checks have failed. `startDown` (keepalived's `alpha`) begins `down` instead, and the
 * backend takes flows only after `rise` successes.
 */

export type HealthStatus = 'up' | 'down';

/** One check's outcome, as a probe reports it. */
export interface CheckResult {
  ok: boolean;
  /** What happened, for logs and status: "connected", "status 503 (want 200)", "exit 2". */
  detail: string;
  /** How long the check took. */
  ms: number;
}

/** Consecutive results needed to flip: `rise` successes to come up, `fall` failures to go down. */
export interface Thresholds {
  rise: number;
  fall: number;
}

export interface HealthState {
  readonly status: HealthStatus;
  /** Consecutive successes up to now (0 after a failure). */
  readonly okStreak: number;
  /** Consecutive failures up to now (0 after a success). */
  readonly failStreak: number;
  readonly lastResult?: 'ok' | 'fail';
  /** When the status last changed (the `nowMs` of that step); absent before the first change. */
  readonly lastChangeAt?: number;
  readonly lastDetail?: string;
}

export interface HealthTransition {
  from: HealthStatus;
  to: HealthStatus;
  /** Plain English, e.g. "3 consecutive failures (fall 3): connect ECONNREFUSED". */
  why: string;
}

export interface HealthStep {
  state: HealthState;
  /** Set only when the status flipped in this step. */
  changed?: HealthTransition;
}

export interface InitialHealthOptions {
  /** Begin `down` and need `rise` successes (keepalived's `alpha`); default: begin `up`. */
  startDown?: boolean;
}

/** The state of a backend nothing has been checked on yet. */
export function initialHealth(opts: InitialHealthOptions = {}): HealthState {
  return { status: opts.startDown ? 'down' : 'up', okStreak: 0, failStreak: 0 };
}

/**
 * Feeds one check result into the machine. Thresholds below 1 count as 1 (the config
 * schema already rejects them; the machine must not stall on a bad value).
 */
export function step(state: HealthState, result: CheckResult, nowMs: number, thresholds: Thresholds): HealthStep {
  const rise = atLeastOne(thresholds.rise);
  const fall = atLeastOne(thresholds.fall);
  const okStreak = result.ok ? state.okStreak + 1 : 0;
  const failStreak = result.ok ? 0 : state.failStreak + 1;
  const next: HealthState = {
    ...state,
    okStreak,
    failStreak,
    lastResult: result.ok ? 'ok' : 'fail',
    lastDetail: result.detail,
  };
  switch (state.status) {
    case 'up':
      // Up: only a long enough run of failures takes it down.
      if (failStreak >= fall) {
        const why = `${failStreak} consecutive ${plural(failStreak, 'failure')} (fall ${fall}): ${result.detail}`;
        return { state: { ...next, status: 'down', lastChangeAt: nowMs }, changed: { from: 'up', to: 'down', why } };
      }
      return { state: next };
    case 'down':
      // Down: only a long enough run of successes brings it up.
      if (okStreak >= rise) {
        const why = `${okStreak} consecutive ${plural(okStreak, 'success', 'successes')} (rise ${rise}): ${result.detail}`;
        return { state: { ...next, status: 'up', lastChangeAt: nowMs }, changed: { from: 'down', to: 'up', why } };
      }
      return { state: next };
    default:
      return assertNever(state.status);
  }
}

function atLeastOne(n: number): number {
  return Number.isFinite(n) ? Math.max(1, Math.floor(n)) : 1;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}

function assertNever(x: never): never {
  throw new Error(`unexpected health status ${String(x)}`);
}
