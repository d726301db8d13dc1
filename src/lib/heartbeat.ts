/**
 * The main thread's one periodic timer (issue 25): on the 2-core VM a wakeup of an idle Node
 * process costs about 70 us of CPU doing nothing (a C program's, 27 us), so the liveness
 * watchdog's tick and the loop-delay samples ride one timer instead of one each. It runs at
 * the shortest period any subscriber asked for, and stops with the last one.
 *
 * The loop delay (`loopDelay`) is how late each beat fired past its period: a hold of the
 * event loop as long as a period is always seen (max); shorter ones only where a beat fell.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

type Subscriber = { periodMs: number; fn: (nowMs: number) => void };

export class Heartbeat {
  private readonly subs = new Set<Subscriber>();
  private timer: NodeJS.Timeout | undefined;
  private periodMs = 0;
  private lastAt = 0;
  private readonly late: RecordableHistogram = createHistogram();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Calls `fn` at least every `periodMs` (more often when another subscriber asked for less); the returned function unsubscribes. */
  subscribe(periodMs: number, fn: (nowMs: number) => void): () => void {
    const s = { periodMs, fn };
    this.subs.add(s);
    this.arm();
    return () => {
      if (this.subs.delete(s)) this.arm();
    };
  }

  /** How late the beats fired (ms), since the first subscriber: p50, p99, max; zeros before a beat. */
  loopDelay(): { p50: number; p99: number; max: number } {
    const h = this.late;
    const ms = (us: number) => Math.round(us / 10) / 100;
    return h.count > 0 ? { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) } : { p50: 0, p99: 0, max: 0 };
  }

  private arm(): void {
    const period = this.subs.size ? Math.min(...[...this.subs].map((s) => s.periodMs)) : 0;
    if (period === this.periodMs) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.periodMs = period;
    if (!period) return;
    this.lastAt = this.now();
    this.timer = setInterval(() => this.beat(), period);
    this.timer.unref();
  }

  private beat(): void {
    const now = this.now();
    // Microseconds, at least 1 (the histogram takes positive integers).
    this.late.record(Math.max(1, Math.round((now - this.lastAt - this.periodMs) * 1000)));
    this.lastAt = now;
    for (const s of this.subs) s.fn(now);
  }
}

let shared: Heartbeat | undefined;

/** The process's heartbeat (the main thread's). */
export function heartbeat(): Heartbeat {
  return (shared ??= new Heartbeat());
}
