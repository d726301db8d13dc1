/**
 * A first-in first-out queue with O(1) push and shift (an array's shift() moves every element:
 * quadratic for a queue of a hundred thousand). Items live in fixed-size chunks.
 */
const CHUNK = 1024;

export class Fifo<T> {
  private head: (T | undefined)[] = new Array<T | undefined>(CHUNK);
  private tail = this.head;
  /** Chunks after the head, in order (the tail is the last). */
  private readonly chunks: (T | undefined)[][] = [];
  private headAt = 0;
  private tailAt = 0;
  private n = 0;

  get length(): number {
    return this.n;
  }

  push(item: T): void {
    if (this.tailAt === CHUNK) {
      this.tail = new Array<T | undefined>(CHUNK);
      this.chunks.push(this.tail);
      this.tailAt = 0;
    }
    this.tail[this.tailAt++] = item;
    this.n++;
  }

  shift(): T | undefined {
    if (this.n === 0) return undefined;
    if (this.headAt === CHUNK) {
      this.head = this.chunks.shift() as (T | undefined)[];
      this.headAt = 0;
    }
    const item = this.head[this.headAt];
    this.head[this.headAt++] = undefined;
    this.n--;
    if (this.n === 0) {
      // Empty: start again at the front of the head chunk.
      this.tail = this.head;
      this.chunks.length = 0;
      this.headAt = 0;
      this.tailAt = 0;
    }
    return item;
  }

  /** The item pushed last (still queued), or undefined. */
  peekLast(): T | undefined {
    return this.n === 0 ? undefined : this.tail[this.tailAt - 1];
  }

  /** Empties the queue. */
  clear(): void {
    this.head = new Array<T | undefined>(CHUNK);
    this.tail = this.head;
    this.chunks.length = 0;
    this.headAt = 0;
    this.tailAt = 0;
    this.n = 0;
  }

  peek(): T | undefined {
    if (this.n === 0) return undefined;
    return this.headAt === CHUNK ? this.chunks[0]?.[0] : this.head[this.headAt];
  }

  *[Symbol.iterator](): IterableIterator<T> {
    let chunk = this.head;
    let at = this.headAt;
    let ci = 0;
    for (let i = 0; i < this.n; i++) {
      if (at === CHUNK) {
        chunk = this.chunks[ci++] as (T | undefined)[];
        at = 0;
      }
      yield chunk[at++] as T;
    }
  }
}
