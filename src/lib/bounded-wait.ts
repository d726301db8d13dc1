/**
 * A wait with an end: it begins the first time its cause is seen, holds while the cause lasts
 * and its time is not up, and asks to be looked at again when the time is up (so the caller
 * need not poll). Once its time is up it stays over (said once) until `reset`: a wait that
 * begins anew whenever its cause comes back resets when the cause goes.
 */
import type { Clock } from './clock.js';

export class BoundedWait {
  /** undefined: not begun; a time: holding until then; -Infinity: over. */
  private until: number | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly ms: number,
    private readonly lookAgain: () => void,
  ) {}

  /** Whether to hold now, given whether the cause is there; `onBegin` when the wait begins, `onOver` once when its time is up. */
  holds(cause: boolean, hooks: { onBegin?: () => void; onOver?: () => void } = {}): boolean {
    if (!cause) return false;
    if (this.until === undefined) {
      this.until = this.clock.now() + this.ms;
      this.clock.after(this.ms + 1, this.lookAgain);
      hooks.onBegin?.();
    }
    if (this.clock.now() < this.until) return true;
    if (this.until !== -Infinity) {
      hooks.onOver?.();
      this.until = -Infinity;
    }
    return false;
  }

  /** The cause went: the next time it is seen, a new wait begins. */
  reset(): void {
    this.until = undefined;
  }
}
