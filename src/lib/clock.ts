/**
 * Time, injected (ENGINEERING.md, convention 3): only main and adapters use the real
 * clock; machines and services take a Clock, and tests drive a FakeClock.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls `fn` once after `ms`. */
  after(ms: number, fn: () => void): Timer;
}

export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock that moves only when told to; timers fire in time order during `advance`. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private offset: (n: number) => number = () => 0;

  constructor(start = 0) {
    this.t = start;
  }

  /**
   * Makes timers fire off their time, as real ones do: the n-th timer set fires `offset(n)`
   * ms after its due time (negative: early, as a real timer may fire a fraction of a
   * millisecond before a deadline computed from a finer clock).
   */
  setFireOffset(offset: (n: number) => number): void {
    this.offset = offset;
  }

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): Timer {
    const n = this.seq++;
    const entry = { at: Math.max(this.t, this.t + Math.max(0, ms) + this.offset(n)), seq: n, fn };
    this.timers.push(entry);
    return { cancel: () => { this.timers = this.timers.filter((e) => e !== entry); } };
  }

  /**
   * The process was held (a paused VM, a starved thread): time jumps by `ms` and no timer
   * fires; the next `advance` fires the overdue ones late, at the time it is then.
   */
  hold(ms: number): void {
    this.t += ms;
  }

  /** Moves time forward by `ms`, firing every timer due on the way (timers set while firing included). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  /** Timers still pending. */
  pending(): number {
    return this.timers.length;
  }
}
