/**
 * The master's adverts on a clock of their own (issue 13, "timing that survives load"): the
 * VRRP machine on the daemon's loop decides what to advertise; this schedule sends it every
 * advert interval from a thread that nothing else runs on (workers/advert-role.ts),
 * so a sync burst, a bulk sync, status or garbage collection on the daemon's loop does not
 * make an advert late (a master whose loop is held past three advert intervals would be
 * taken for dead by its backups, and with adverts sent from that loop a saturated machine
 * did so in the soak).
 *
 * Each `set` is a lease: the daemon renews it with every advert its machine emits, and an
 * advert not renewed for `leaseMs` stops (a hung daemon is a dead master, as for the BEATs'
 * watchdog). A new payload (priority, addresses) goes out at once and restarts the cadence;
 * the same payload only renews. `stop` ends it at once (the instance left master, or is
 * about to send its priority 0).
 *
 * Clock-driven and free of I/O (the sending is a dependency), so tested on a fake clock;
 * the unit tests' fake host runs the same schedule.
 */
import type { Clock, Timer } from '../../lib/clock.js';

export interface AdvertScheduleDeps<C> {
  clock: Clock;
  /** Sends one advert; an exception is counted, the schedule goes on. */
  send(ctx: C, payload: Uint8Array, dst: string): void;
}

export interface AdvertTiming {
  sent: number;
  failed: number;
  /** Adverts that stopped because the daemon did not renew them (its loop hung). */
  expired: number;
  /** The latest a send fired past its due time (ms), and how often by more than 10 ms. */
  lateMaxMs: number;
  late10: number;
}

interface Entry<C> {
  ctx: C;
  payload: Uint8Array;
  dst: string;
  intervalMs: number;
  leaseUntilMs: number;
  dueAtMs: number;
  timer: Timer | undefined;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

export class AdvertSchedule<C> {
  private readonly entries = new Map<string, Entry<C>>();
  readonly timing: AdvertTiming = { sent: 0, failed: 0, expired: 0, lateMaxMs: 0, late10: 0 };

  constructor(private readonly deps: AdvertScheduleDeps<C>) {}

  /**
   * Advertise `payload` to `dst` every `intervalMs` until `leaseMs` after the last `set` of
   * this key. `sentAtMs`: the caller sent this payload itself at that time (a new master's
   * first advert leaves from where the decision was made, without a hop): the cadence
   * starts from there.
   */
  set(key: string, ctx: C, payload: Uint8Array, dst: string, intervalMs: number, leaseMs: number, sentAtMs?: number, force = false): void {
    const now = this.deps.clock.now();
    const e = this.entries.get(key);
    if (e && e.ctx === ctx && e.dst === dst && e.intervalMs === intervalMs && same(e.payload, payload)) {
      e.leaseUntilMs = now + leaseMs;
      // An advert out of turn (the machine answers a release at once): now, or already sent
      // by the caller; the cadence restarts from it.
      if (force || sentAtMs !== undefined) {
        e.timer?.cancel();
        if (force) {
          e.dueAtMs = now;
          this.fire(key, e);
        } else {
          e.dueAtMs = sentAtMs! + intervalMs;
          e.timer = this.deps.clock.after(Math.max(0, e.dueAtMs - now), () => this.fire(key, e));
        }
      }
      return;
    }
    e?.timer?.cancel();
    const next: Entry<C> = { ctx, payload: Uint8Array.from(payload), dst, intervalMs, leaseUntilMs: now + leaseMs, dueAtMs: now, timer: undefined };
    this.entries.set(key, next);
    if (sentAtMs === undefined) this.fire(key, next);
    else {
      next.dueAtMs = sentAtMs + intervalMs;
      next.timer = this.deps.clock.after(Math.max(0, next.dueAtMs - now), () => this.fire(key, next));
    }
  }

  /** Stops every advert whose key starts with `prefix` (all with ''). */
  stop(prefix = ''): void {
    for (const [key, e] of this.entries) {
      if (!key.startsWith(prefix)) continue;
      e.timer?.cancel();
      this.entries.delete(key);
    }
  }

  /** Stops every advert sent through `ctx` (its socket is closing). */
  stopCtx(ctx: C): void {
    for (const [key, e] of this.entries) if (e.ctx === ctx) this.stop(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private fire(key: string, e: Entry<C>): void {
    if (this.entries.get(key) !== e) return;
    const now = this.deps.clock.now();
    if (now > e.leaseUntilMs) {
      this.entries.delete(key);
      this.timing.expired++;
      return;
    }
    const late = Math.max(0, now - e.dueAtMs);
    if (late > this.timing.lateMaxMs) this.timing.lateMaxMs = Math.round(late * 10) / 10;
    if (late > 10) this.timing.late10++;
    try {
      this.deps.send(e.ctx, e.payload, e.dst);
      this.timing.sent++;
    } catch {
      this.timing.failed++;
    }
    // The next one an interval after this one was due (no drift), never in the past.
    e.dueAtMs = Math.max(e.dueAtMs + e.intervalMs, now);
    e.timer = this.deps.clock.after(Math.max(0, e.dueAtMs - now), () => this.fire(key, e));
  }
}
