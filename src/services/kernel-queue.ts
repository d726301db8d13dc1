/**
 * One writer to the kernel at a time: ruleset applies and map updates go through this
 * queue in order, so a map update never races a table replacement.
 */
export class KernelQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const next = this.tail.then(job, job);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
