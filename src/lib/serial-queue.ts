/**
 * Jobs one at a time, in order: each starts when the one before has settled (whatever
 * its outcome). The node keeps one for kernel writes (a map update never races a table
 * replacement) and one for operations (a runtime command never races a reload).
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T> | T): Promise<T> {
    const next = this.tail.then(job, job);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Settles when every job queued so far has. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
