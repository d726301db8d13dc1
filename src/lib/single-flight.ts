/**
 * One computation shared by every caller that asks while it runs: the second and later
 * callers get the promise of the first (issue 12: 200 concurrent `fwlb status` requests each
 * spawned `nft` and read every flow). The next call after it settles starts a fresh one.
 */
export function singleFlight<T>(compute: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    running ??= compute().finally(() => {
      running = undefined;
    });
    return running;
  };
}
