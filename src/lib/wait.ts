/** Polling until something holds, for tests, the demo and benchmarks (never the daemon). */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Calls `f` every `everyMs` until it returns something other than undefined (errors count
 * as undefined), and returns that; throws naming `what` after `timeoutMs`.
 */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
