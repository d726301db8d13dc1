/**
 * Posts a value only when it changed, and looks no more than once per `everyMs` (a worker
 * thread's counters to the daemon: no timer of its own, no message while nothing changes).
 * Values are compared by their JSON.
 */
import type { Clock } from './clock.js';

/** `report(make, force)`: `make()` is posted if `everyMs` passed since the last look (or `force`) and it differs from the last posted. */
export function changeReporter<T>(clock: Clock, everyMs: number, post: (value: T) => void): (make: () => T, force?: boolean) => void {
  let lookedAt = -Infinity;
  let last = '';
  return (make, force = false) => {
    const now = clock.now();
    if (!force && now - lookedAt < everyMs) return;
    lookedAt = now;
    const value = make();
    const json = JSON.stringify(value);
    if (json === last) return;
    last = json;
    post(value);
  };
}
