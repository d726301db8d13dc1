/**
 * The one timer driver of every service (VRRP, health checks, state sync): keyed arm and
 * cancel over an injected Clock, and one guarantee the pure machines rely on: a timer event
 * is stamped no earlier than its deadline.
 *
 * Why: machines keep absolute deadlines (`atMs`) and ignore a timer event that arrives
 * before its deadline as stale. Real timers fire on a coarser clock than the one deadlines
 * are computed from (setTimeout rounds to whole milliseconds; `performance.now()` does
 * not), so a timer may fire a fraction of a millisecond early. Fed the raw time, a machine
 * drops that event and, since its deadline did not change, never asks for the timer again:
 * it stalls for good. Here an early firing within EARLY_TOLERANCE_MS is stamped with its
 * deadline; one earlier than that (a clock that jumped) is re-armed for the rest.
 */
import type { Clock, Timer } from './clock.js';

/** Firing this much before the deadline or less counts as on time (stamped with the deadline). */
export const EARLY_TOLERANCE_MS = 1;

export type TimerFire = (nowMs: number) => void;

interface Armed {
  atMs: number;
  timer: Timer;
}

export class TimerDriver<K extends string = string> {
  private readonly armed = new Map<K, Armed>();
  private early = 0;

  constructor(private readonly clock: Clock) {}

  /** Arms `key` for the absolute time `atMs` (replacing an earlier arming of the same key). */
  at(key: K, atMs: number, fire: TimerFire): void {
    this.cancel(key);
    const entry: Armed = { atMs, timer: undefined as unknown as Timer };
    entry.timer = this.clock.after(Math.max(0, Math.ceil(atMs - this.clock.now())), () => this.fired(key, entry, fire));
    this.armed.set(key, entry);
  }

  /** Arms `key` for `ms` from now. */
  after(key: K, ms: number, fire: TimerFire): void {
    this.at(key, this.clock.now() + Math.max(0, ms), fire);
  }

  cancel(key: K): void {
    const a = this.armed.get(key);
    if (!a) return;
    a.timer.cancel();
    this.armed.delete(key);
  }

  /** Cancels every key (or every key starting with `prefix`). */
  cancelAll(prefix?: string): void {
    for (const key of [...this.armed.keys()]) if (prefix === undefined || key.startsWith(prefix)) this.cancel(key);
  }

  has(key: K): boolean {
    return this.armed.has(key);
  }

  deadline(key: K): number | undefined {
    return this.armed.get(key)?.atMs;
  }

  get size(): number {
    return this.armed.size;
  }

  /** Timers that fired early and were stamped with (or re-armed for) their deadline. */
  get earlyFirings(): number {
    return this.early;
  }

  private fired(key: K, entry: Armed, fire: TimerFire): void {
    // Cancelled or replaced meanwhile: a leftover of an earlier arming.
    if (this.armed.get(key) !== entry) return;
    const now = this.clock.now();
    if (now < entry.atMs) {
      this.early++;
      if (entry.atMs - now > EARLY_TOLERANCE_MS) {
        this.at(key, entry.atMs, fire);
        return;
      }
    }
    this.armed.delete(key);
    fire(Math.max(now, entry.atMs));
  }
}
