/**
 * Active-active sharing at runtime (issue 14): who is live, which buckets are ours, and the
 * kernel's set of owned buckets kept equal to it by element (never a ruleset reload).
 *
 * Members: this node once it is ready (its bulk sync done: it holds the others' flows), and
 * every peer whose liveness is up and that says it is ready. Owners: rendezvous hashing over
 * the sorted members (fsm/sharing.ts), the same on every node that sees the same members. A
 * peer that goes leaves its buckets to the others; one that comes back takes its own back.
 *
 * Partitions: a node counts a peer live while it hears it on any link it shares with it, so a
 * broken sync link alone splits nothing; two halves that hear nothing of each other share no
 * segment, and each forwards only the frames that reach it.
 *
 * Kernel updates run one at a time, in order; a failed one is retried with the whole wanted
 * set on the next change or `resync()`.
 */
import type { Logger } from 'pino';
import { bucketOfMark, bucketOwners, ownedMarks, ownershipDelta } from '../fsm/sharing.js';

export interface SharingDeps {
  log: Logger;
  self: string;
  buckets: number;
  seed: number;
  /**
   * Changes the kernel's owned set (marks = bucket + 1) by element, or replaces it whole in
   * one transaction (after a failure, or a ruleset apply that reset it).
   */
  apply(change: { add: number[]; remove: number[] } | { replace: number[] }): Promise<void>;
  /** Milliseconds on a monotonic clock (the release grace): the node's clock. */
  now: () => number;
  /**
   * BGP's relay (compiler/relay.ts): told every bucket's owner whenever they change, in the
   * same queue as the owned set, so that the node relays to the owners it computes.
   */
  relay?: (owners: readonly (string | undefined)[]) => Promise<void>;
}

/**
 * How long a node still speaks for (replicates the changes of) the flows of a bucket it gave
 * up. The new owner's entry of a flow may be one a record made after the flow's frames had
 * passed (its handshake completed under the old owner): only the old owner's records move it
 * on, and without them it stays SYN_SENT and the flow's packets are INVALID there (issue 20).
 */
export const RELEASE_GRACE_MS = 2000;

export interface SharingStatus {
  ready: boolean;
  members: string[];
  buckets: number;
  owned: number;
  /** Buckets per member, as this node computes them. */
  shares: Record<string, number>;
  moves: number;
  applyFailures: number;
  /** The last change the kernel took: when it was in (wall clock), why, and how long the write took. */
  lastApply: { at: string; why: string; ms: number } | null;
}

export class SharingService {
  private readonly live = new Set<string>();
  private ready = false;
  /** What the kernel holds (undefined: not known, replace it whole) and what we want it to hold. */
  private inKernel: number[] | undefined = [];
  private wanted: number[] = [];
  private ownedSet = new Set<number>();
  private owners: (string | undefined)[] = [];
  /** Marks given up, and when (deps.now): we still speak for them for RELEASE_GRACE_MS. */
  private readonly released = new Map<number, number>();
  private queue: Promise<void> = Promise.resolve();
  private moves = 0;
  private applyFailures = 0;
  private lastApply: SharingStatus['lastApply'] = null;

  constructor(private readonly deps: SharingDeps) {}

  /** This node holds the state (its bulk sync is done): it takes its share. */
  setReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    this.recompute(ready ? 'ready' : 'not ready');
  }

  /** A peer is live and ready (its BEATs say so), or no longer. */
  peer(name: string, live: boolean): void {
    if (name === this.deps.self || this.live.has(name) === live) return;
    if (live) this.live.add(name);
    else this.live.delete(name);
    this.recompute(live ? `${name} joined` : `${name} left`);
  }

  /** The members as this node sees them (sorted). */
  members(): string[] {
    return [...(this.ready ? [this.deps.self] : []), ...this.live].sort();
  }

  /** Does this node carry the flow with this conntrack mark? */
  ownsMark(mark: number | undefined): boolean {
    const b = bucketOfMark(mark, this.deps.buckets);
    return b !== undefined && this.ownedSet.has(b + 1);
  }

  /** Does this node replicate the changes of the flow with this mark? Ours, or given up within RELEASE_GRACE_MS (state sync's `owns`). */
  speaksFor(mark: number | undefined): boolean {
    if (this.ownsMark(mark)) return true;
    const at = mark === undefined ? undefined : this.released.get(mark);
    if (at === undefined) return false;
    if (this.now() - at < RELEASE_GRACE_MS) return true;
    this.released.delete(mark!);
    return false;
  }

  private now(): number {
    return this.deps.now();
  }

  /** Every kernel update done (tests, stop). */
  settled(): Promise<void> {
    return this.queue;
  }

  /** The buckets this node wants owned now, as marks (for a full ruleset apply to carry them). */
  wantedMarks(): readonly number[] {
    return this.wanted;
  }

  /** Writes the whole wanted set again (after a ruleset apply that reset it, or a failure). */
  resync(): void {
    this.inKernel = undefined;
    this.push('resync');
    if (this.deps.relay) this.pushRelay('resync');
  }

  status(): SharingStatus {
    const shares: Record<string, number> = {};
    for (const o of this.owners) if (o) shares[o] = (shares[o] ?? 0) + 1;
    return { ready: this.ready, members: this.members(), buckets: this.deps.buckets, owned: this.wanted.length, shares, moves: this.moves, applyFailures: this.applyFailures, lastApply: this.lastApply };
  }

  private recompute(why: string): void {
    const members = this.members();
    const before = this.owners;
    this.owners = bucketOwners(this.deps.buckets, members, this.deps.seed);
    if (this.deps.relay && (before.length !== this.owners.length || this.owners.some((o, b) => o !== before[b]))) this.pushRelay(why);
    const next = this.ready ? ownedMarks(this.owners, this.deps.self) : [];
    const d = ownershipDelta(this.wanted, next);
    this.wanted = next;
    this.ownedSet = new Set(next);
    const now = this.now();
    for (const m of d.remove) this.released.set(m, now);
    for (const m of d.add) this.released.delete(m);
    if (d.add.length || d.remove.length) {
      this.moves++;
      this.deps.log.info({ event: 'sharing_owners', why, members, owned: next.length, gained: d.add.length, lost: d.remove.length }, `sharing: ${why}: ${members.length} member(s), this node owns ${next.length} of ${this.deps.buckets} buckets (+${d.add.length} -${d.remove.length})`);
    }
    this.push(why);
  }

  /** Queues the relay's update to the owners as they are now (the latest wins when several wait). */
  private pushRelay(why: string): void {
    this.queue = this.queue.then(async () => {
      try {
        await this.deps.relay!(this.owners);
      } catch (err) {
        this.applyFailures++;
        this.deps.log.error({ event: 'relay_apply_failed', why, err: (err as Error).message }, `sharing: the relay to the buckets' owners could not be written: ${(err as Error).message}`);
      }
    });
  }

  /** Queues one kernel update from what it holds to what we want now. */
  private push(why: string): void {
    this.queue = this.queue.then(async () => {
      const want = this.wanted;
      const change = this.inKernel === undefined ? { replace: want } : ownershipDelta(this.inKernel, want);
      if ('add' in change && !change.add.length && !change.remove.length) return;
      try {
        const t0 = performance.now();
        await this.deps.apply(change);
        this.inKernel = want;
        this.lastApply = { at: new Date().toISOString(), why, ms: Math.round((performance.now() - t0) * 10) / 10 };
      } catch (err) {
        this.applyFailures++;
        this.inKernel = undefined;
        this.deps.log.error({ event: 'sharing_apply_failed', why, err: (err as Error).message }, `sharing: the owned buckets could not be written: ${(err as Error).message}`);
      }
    });
  }
}
