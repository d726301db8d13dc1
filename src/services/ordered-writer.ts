/**
 * Writes into the kernel, many at once, in order per key: the state sync's writer of the
 * records it receives. At most `concurrency` writes run at a time; two writes of one key
 * (one conntrack entry) never run together and run in the order they were queued; every
 * write gets a number, and `written(n)` resolves once every write up to n has finished
 * (what a bulk sync waits for before it counts records or ends).
 *
 * No promise per queued write: a queue, a set of busy keys, and a low-water mark. A bulk
 * sync queues tens of thousands of writes; chains of promises were most of its cost.
 */
import { Fifo } from '../lib/fifo.js';

interface Job<T> {
  n: number;
  key: string;
  item: T;
}

export class OrderedWriter<T> {
  private readonly queue = new Fifo<Job<T>>();
  /** Keys with a write running, and the writes of that key waiting behind it (rare: an array). */
  private readonly busy = new Map<string, Job<T>[] | null>();
  private running = 0;
  /** Number of the next write queued. */
  private next = 0;
  /** Writes queued or running, by number. */
  private readonly open = new Set<number>();
  /** Every write below this number has finished. */
  private low = 0;
  private readonly waiters = new Fifo<{ upTo: number; resolve: () => void }>();

  constructor(
    private readonly write: (item: T) => Promise<void>,
    private readonly concurrency: number,
    /** Called after each write finishes (for flow control). */
    private readonly onDone: () => void = () => undefined,
  ) {}

  /** Writes queued and not finished. */
  get backlog(): number {
    return this.open.size;
  }

  /** The number of the last write queued (-1: none yet). */
  get last(): number {
    return this.next - 1;
  }

  /** Queues a write; returns its number. */
  push(key: string, item: T): number {
    const job = { n: this.next++, key, item };
    this.open.add(job.n);
    this.queue.push(job);
    this.pump();
    return job.n;
  }

  /** Resolves once every write numbered up to `upTo` has finished. */
  written(upTo: number = this.last): Promise<void> {
    if (upTo < this.low) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ upTo, resolve }));
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const job = this.queue.shift();
      if (!job) return;
      if (this.busy.has(job.key)) {
        // Its key is being written: after that write, in order.
        const behind = this.busy.get(job.key);
        if (behind) behind.push(job);
        else this.busy.set(job.key, [job]);
      } else {
        this.busy.set(job.key, null);
        this.start(job);
      }
    }
  }

  private start(job: Job<T>): void {
    this.running++;
    let p: Promise<void>;
    try {
      p = this.write(job.item);
    } catch {
      p = Promise.resolve();
    }
    p.catch(() => undefined).then(() => this.finish(job));
  }

  private finish(job: Job<T>): void {
    this.running--;
    this.open.delete(job.n);
    while (this.low < this.next && !this.open.has(this.low)) this.low++;
    const following = this.busy.get(job.key)?.shift();
    if (following) this.start(following);
    else this.busy.delete(job.key);
    while (this.waiters.length > 0 && this.waiters.peek()!.upTo < this.low) this.waiters.shift()!.resolve();
    this.onDone();
    this.pump();
  }
}
