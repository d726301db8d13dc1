/**
 * Our table to a peer (a bulk push): asked for by a peer that joins, or of our own after an
 * overflow or lost events, or (sharing) when a session with the peer begins (then only what
 * we own); and, under sharing, whether the peer's own push to us is over. The table streams from the kernel batch
 * by batch, each paced by the link's send window (the dump waits in the kernel meanwhile);
 * one push per link at a time, a newer one superseding the one under way, and every push
 * ends with exactly one BULK_END that counts what it sent.
 */
import type { Logger } from 'pino';
import type { SyncRecord } from '../codec/sync/message.js';
import type * as linkFsm from '../fsm/sync/link.js';
import * as sender from '../fsm/sync/sender.js';
import type { Clock } from '../lib/clock.js';
import type { TimerDriver } from '../lib/timers.js';
import type { ConntrackStore } from '../ports/sync.js';
import type { SyncCounter } from './sync-types.js';

/** A conservative count of entry records per 1400-byte message (IPv6 ones take about 110 bytes). */
const RECORDS_PER_MESSAGE_LOW = 12;
/** A bulk push waits for at least this many free messages in the peer's queue. */
const MIN_ROOM = 8;
/** Records handed to a link per turn of the event loop during a bulk push. */
const BULK_CHUNK = 512;
/** Sharing: a peer's push of its own entries with no record for this long counts as over. */
const THEIRS_IDLE_MS = 5000;

/** A link as a push sees it: its peer, and its machine's state (read, never stepped here). */
export interface PushLink {
  peer: { id: number; name: string };
  state: linkFsm.LinkState;
}

export interface SyncPusherDeps<L extends PushLink> {
  clock: Clock;
  log: Logger;
  /** The service's timers (`${peer}/push-room`). */
  timers: TimerDriver;
  ct: Pick<ConntrackStore, 'dumpRecords'>;
  owns: (entry: { mark?: number | undefined }) => boolean;
  running: () => boolean;
  count: (c: SyncCounter) => void;
  /** One event through the link's machine (the service carries out its effects). */
  feedLink: (l: L, event: linkFsm.LinkEvent) => void;
  /** A push a peer asked for went out whole: the bulk machine hears it. */
  served: (l: L, requestId: number, count: number) => void;
}

export class SyncPusher<L extends PushLink> {
  constructor(private readonly deps: SyncPusherDeps<L>) {}

  /**
   * Sharing (several nodes speak): the peer's push of its own entries to us since our
   * session began, per peer: when a record of it last came, or done (its BULK_END written).
   */
  private readonly theirs = new Map<number, number | 'done'>();

  /**
   * Sharing: a session with the peer began. The peer asks one of us for a table, and what we
   * sent before this session never reached it: we send it our own entries now (ending with a
   * BULK_END), and wait for its own (theirsPending).
   */
  sessionBegan(l: L): void {
    this.theirs.set(l.peer.id, this.deps.clock.now());
    void this.push(l, 0);
  }

  /** Bulk records from the peer were delivered: its push goes on. */
  theirRecords(l: L): void {
    if (typeof this.theirs.get(l.peer.id) === 'number') this.theirs.set(l.peer.id, this.deps.clock.now());
  }

  /** A BULK_END of the peer is written: its push is over (true when that changes anything). */
  theirEnd(l: L): boolean {
    if (typeof this.theirs.get(l.peer.id) !== 'number') return false;
    this.theirs.set(l.peer.id, 'done');
    return true;
  }

  /** The peer's own entries may not all be in our kernel yet (its push not ended, and not idle for THEIRS_IDLE_MS). */
  theirsPending(l: L): boolean {
    const t = this.theirs.get(l.peer.id);
    return t !== 'done' && this.deps.clock.now() - (t ?? this.deps.clock.now()) < THEIRS_IDLE_MS;
  }

  /** The link stepped: a push waiting for room in its queue goes on if there is some now. */
  linkStepped(l: L): void {
    const waiter = this.roomWaiters.get(l.peer.id);
    if (waiter && sender.room(l.state.sender) >= MIN_ROOM) waiter();
  }

  /** A push waiting for room in a peer's queue: woken by the link step that makes it. */
  private readonly roomWaiters = new Map<number, () => void>();

  /**
   * Resolves when the sender to this peer has room again (an ack freed it), or after a
   * second without (the peer may be gone: the push then looks again at why).
   */
  private roomFor(l: L): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        if (this.roomWaiters.get(l.peer.id) !== done) return;
        this.roomWaiters.delete(l.peer.id);
        this.deps.timers.cancel(`${l.peer.id}/push-room`);
        resolve();
      };
      this.roomWaiters.set(l.peer.id, done);
      this.deps.timers.at(`${l.peer.id}/push-room`, this.deps.clock.now() + 1000, done);
    });
  }

  /** The push under way per peer: a newer one supersedes it (one push per link at a time). */
  private readonly pushes = new Map<number, number>();

  /** The last push queued per peer: a newer one starts only once it has sent its BULK_END. */
  private readonly pushTail = new Map<number, Promise<void>>();

  /**
   * The whole table to one peer: bulk records, then BULK_END(requestId, count). A newer push
   * supersedes the one under way, which ends early with its own BULK_END; the newer one waits
   * for that end before it queues a record, so the peer never sees one push's records counted
   * for another's BULK_END (a count mismatch, and a failed attempt, every time).
   */
  push(l: L, requestId: number): Promise<void> {
    this.deps.count('bulk_pushes');
    const token = (this.pushes.get(l.peer.id) ?? 0) + 1;
    this.pushes.set(l.peer.id, token);
    this.underway.set(l.peer.id, (this.underway.get(l.peer.id) ?? 0) + 1);
    const run = (this.pushTail.get(l.peer.id) ?? Promise.resolve()).then(() => this.pushNow(l, requestId, token)).finally(() => this.underway.set(l.peer.id, this.underway.get(l.peer.id)! - 1));
    this.pushTail.set(l.peer.id, run.catch(() => undefined));
    return run;
  }

  /** Pushes to the peer queued or under way (their records may not all be queued yet). */
  private readonly underway = new Map<number, number>();

  /** A push of our table to the peer is queued or under way. */
  pushing(l: L): boolean {
    return (this.underway.get(l.peer.id) ?? 0) > 0;
  }

  private async pushNow(l: L, requestId: number, token: number): Promise<void> {
    if (!this.deps.running()) return;
    this.deps.feedLink(l, { type: 'bulk_begin' });
    const epoch = l.state.replay.peer?.epoch;
    let sent = 0;
    let read = 0;
    /** Why the push ended early: stopped or the peer restarted (no BULK_END), or superseded. */
    let cut: 'gone' | 'superseded' | undefined;
    // The table streams from the kernel batch by batch, each paced by the sender's room
    // (the dump waits in the kernel meanwhile): memory holds one batch, and VRRP and
    // everything else run between chunks, however big the table.
    const onBatch = async (entries: { body: Uint8Array; mark: number | undefined }[]): Promise<void | 'stop'> => {
      read += entries.length;
      // A peer that asked gets the whole table; a push of our own (a resync after an
      // overflow, lost events) carries only what we own: another owner's entries are its to tell.
      const mine = requestId === 0 ? entries.filter((e) => this.deps.owns(e)) : entries;
      let i = 0;
      while (i < mine.length) {
        if (!this.deps.running() || l.state.replay.peer?.epoch !== epoch) cut = 'gone';
        else if (this.pushes.get(l.peer.id) !== token) cut = 'superseded';
        if (cut) return 'stop';
        const room = sender.room(l.state.sender);
        if (room < MIN_ROOM) {
          await this.roomFor(l);
          continue;
        }
        const n = Math.min(room * RECORDS_PER_MESSAGE_LOW, BULK_CHUNK, mine.length - i);
        const chunk: SyncRecord[] = new Array(n);
        for (let k = 0; k < n; k++) chunk[k] = { type: 'ct_update', body: mine[i + k]!.body };
        i += n;
        sent += n;
        this.deps.feedLink(l, { type: 'enqueue', records: chunk, bulk: true });
        // Let VRRP and everything else run between chunks: a bulk sync must never starve them.
        await new Promise<void>((res) => setImmediate(res));
      }
    };
    try {
      await this.deps.ct.dumpRecords(onBatch);
    } catch (err) {
      // No BULK_END: a table that ends short must never count as complete; the peer's
      // attempt times out and it asks again.
      this.deps.log.error({ err: (err as Error).message, sent, peer: l.peer.name }, 'conntrack dump for a bulk sync failed: no BULK_END, the peer will ask again');
      return;
    }
    if (cut === 'gone' || !this.deps.running() || l.state.replay.peer?.epoch !== epoch) return; // it will ask again
    // Every push ends with exactly one BULK_END carrying what it sent, superseded or not.
    this.deps.feedLink(l, { type: 'enqueue_bulk_end', requestId, count: sent });
    if (requestId !== 0) this.deps.served(l, requestId, sent);
    this.deps.log.info({ event: 'bulk_served', peer: l.peer.name, entries: sent, read, superseded: cut === 'superseded' }, `sent the table to ${l.peer.name}`);
  }
}
