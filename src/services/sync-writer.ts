/**
 * The state sync's writer: the records received from the peers into our kernel, in arrival
 * order, WRITE_BATCH per turn of the event loop, each batch in one go; the receive window the
 * links advertise follows what still waits (flow control); the kernel's refusals counted by
 * operation and errno, and told to the bulk machine (a transfer with refused writes is
 * incomplete); records the kernel would not take for an entry of its own kept for status.
 */
import type { Logger } from 'pino';
import type { SyncRecord } from '../codec/sync/message.js';
import { bodyToRawV2, rawEntryKey } from '../codec/sync/entry-v2.js';
import { formatRawTuple, type CtWriteOp, type RawCtEntry } from '../codec/netlink/ctnetlink.js';
import type { Clock } from '../lib/clock.js';
import { Fifo } from '../lib/fifo.js';
import type { ConntrackStore } from '../ports/sync.js';
import type { SyncConflict, SyncCounter, SyncDropReason } from './sync-types.js';

/** Received records written into the kernel per turn of the event loop (in one go). */
const WRITE_BATCH = 256;
/** Received records waiting for their kernel write before our receive window closes. */
const WRITE_BACKLOG_RECORDS = 16_384;
/** Entry records in a full message (IPv4 TCP with NAT: 63 bytes with its record header). */
const RECORDS_PER_MESSAGE_HIGH = 21;

export interface SyncWriterDeps {
  clock: Clock;
  log: Logger;
  ct: Pick<ConntrackStore, 'writeBatch'>;
  /** The service runs (records that come after its stop are dropped unwritten). */
  running: () => boolean;
  count: (c: SyncCounter, by?: number) => void;
  drop: (reason: SyncDropReason) => void;
  /** The receive window changed (messages; undefined: wide open): tell the links. */
  onRoom: (room: number | undefined) => void;
  /** Sharing: several nodes speak, each for the flows of its own buckets (see writeRecords). */
  sharing?: boolean;
  /** Since when the oldest record waiting for its write waits changed (undefined: none waits). */
  onBacklog?: (sinceMs: number | undefined) => void;
}

export class SyncWriter {
  /** Received records waiting for their kernel write, in arrival order. */
  private readonly inbox = new Fifo<SyncRecord>();
  /** Records received so far; the number of the next one. */
  received = 0;
  /** Records written (or refused) so far: every record numbered below this is done. */
  private written = 0;
  private readonly writtenWaiters = new Fifo<{ upTo: number; resolve: () => void }>();
  private drainQueued = false;
  /** Records written into the kernel, and refused by it. */
  applied = 0;
  applyErrors = 0;

  constructor(private readonly deps: SyncWriterDeps) {}

  /** When each delivery came (the count of records received once it was in): the backlog's age. */
  private readonly arrivals = new Fifo<{ upTo: number; atMs: number }>();

  /** Records delivered by a link, in its stream's order: queued for the kernel. */
  accept(records: readonly SyncRecord[]): void {
    for (const rec of records) this.inbox.push(rec);
    this.received += records.length;
    if (records.length > 0) {
      this.arrivals.push({ upTo: this.received, atMs: this.deps.clock.now() });
      if (this.arrivals.length === 1) this.deps.onBacklog?.(this.arrivals.peek()!.atMs);
    }
    this.scheduleDrain();
    this.updateRoom();
  }

  /** Records waiting for their kernel write, and how long the oldest of them has waited (ms). */
  backlog(): { records: number; oldestMs: number } {
    const first = this.arrivals.peek();
    return { records: this.inbox.length, oldestMs: first ? Math.round(Math.max(0, this.deps.clock.now() - first.atMs)) : 0 };
  }

  /** Kernel writes refused, by operation and errno ("create:EEXIST"), since the start. */
  refusals(): Record<string, number> {
    return Object.fromEntries(this.refusedBy);
  }

  /** The last records the kernel would not take for an entry of its own (at most 8). */
  conflicts(): SyncConflict[] {
    return [...this.lastConflicts];
  }

  /** The receive window last given to the links. */
  private roomTold: number | undefined;

  /**
   * Flow control: the receive window the links advertise follows what waits for our kernel
   * writes, so a peer's sender never has more records on their way than our writes absorb
   * (a bulk sync of a million entries would otherwise sit in our memory).
   */
  private updateRoom(): void {
    const free = WRITE_BACKLOG_RECORDS - this.inbox.length;
    const room = free >= WRITE_BACKLOG_RECORDS / 2 ? undefined : Math.max(0, Math.floor(free / RECORDS_PER_MESSAGE_HIGH));
    const told = this.roomTold;
    if (room === told) return;
    // Tell the links of a real change only: each is a machine step per link.
    const big = (x: number | undefined) => x === undefined || x >= 64;
    if (told !== undefined && room !== undefined && big(room) === big(told) && Math.abs(room - told) < 16) return;
    this.roomTold = room;
    this.deps.onRoom(room);
  }

  /** Resolves once the records received up to `upTo` (a count) are written. */
  writtenUpTo(upTo: number): Promise<void> {
    if (upTo <= this.written) return Promise.resolve();
    return new Promise((resolve) => this.writtenWaiters.push({ upTo, resolve }));
  }

  private scheduleDrain(): void {
    if (this.drainQueued || this.inbox.length === 0) return;
    this.drainQueued = true;
    setImmediate(() => this.drain());
  }

  /**
   * Writes what waits, WRITE_BATCH records per turn of the event loop (VRRP and everything
   * else run between turns), each turn's writes in one go into the kernel.
   */
  private drain(): void {
    this.drainQueued = false;
    const batch: SyncRecord[] = [];
    while (batch.length < WRITE_BATCH && this.inbox.length > 0) batch.push(this.inbox.shift()!);
    if (batch.length > 0 && this.deps.running()) this.writeRecords(batch);
    this.written += batch.length;
    const oldest = this.arrivals.peek();
    while (this.arrivals.length > 0 && this.arrivals.peek()!.upTo <= this.written) this.arrivals.shift();
    if (this.arrivals.peek() !== oldest) this.deps.onBacklog?.(this.arrivals.peek()?.atMs);
    while (this.writtenWaiters.length > 0 && this.writtenWaiters.peek()!.upTo <= this.written) this.writtenWaiters.shift()!.resolve();
    this.updateRoom();
    this.scheduleDrain();
  }

  /**
   * Received records into our kernel. An entry's records stay in order: the batch is cut where
   * an entry comes again, since a segment's writes are done in passes (creates and deletes;
   * then updates in place of the entries that were there; then replacements of those the
   * kernel would not change in place).
   *
   * Sharing: records of one flow come from more than one node (two own a bucket for a moment
   * whenever the members change, each learning of it at its own time; at a cold start every
   * node owns every bucket until it hears the others; and a node that gives a bucket up still
   * speaks for it a little while), and every node's conntrack sees the flow's frames itself. So
   * a record can arrive after a newer one, or after our own entry moved on: the record made
   * when the flow opened (SYN_SENT, no reply seen), delivered once the flow is established.
   * Written, it set the entry back to SYN_SENT (the kernel refuses to clear SEEN_REPLY in
   * place, so it was replaced whole) and every later packet of the flow was INVALID there:
   * when that node carried the flow, it was lost (issue 20: 24 of 100 sessions at a cold
   * start of three nodes, seed 21548). Under sharing, a record the kernel will not apply in
   * place because it would clear status bits (EBUSY) is older than our entry: ours is kept
   * (`records_stale_kept`), never replaced.
   */
  private writeRecords(records: readonly SyncRecord[]): void {
    let segment: { op: CtWriteOp; entry: RawCtEntry }[] = [];
    const keys = new Set<string>();
    for (const rec of records) {
      const e = bodyToRawV2(rec.body);
      if (!e.ok) {
        this.deps.drop(`entry_${e.reason}`);
        continue;
      }
      const key = rawEntryKey(e.value);
      if (keys.has(key)) {
        this.writeSegment(segment);
        segment = [];
        keys.clear();
      }
      keys.add(key);
      segment.push({ op: rec.type === 'ct_destroy' ? 'delete' : 'create', entry: e.value });
    }
    this.writeSegment(segment);
  }

  private writeSegment(writes: readonly { op: CtWriteOp; entry: RawCtEntry }[]): void {
    if (writes.length === 0) return;
    const ct = this.deps.ct;
    const opts = { beLiberal: true };
    let ok = 0;
    const failed = (why: string | undefined, op: string) => {
      this.applyErrors++;
      this.deps.count('apply_errors');
      const k = `${op}:${why ?? 'unknown'}`;
      this.refusedBy.set(k, (this.refusedBy.get(k) ?? 0) + 1);
      this.deps.log.debug({ err: why ?? null, op }, 'sync record not applied');
    };
    // 1. Creates and deletes (a delete that finds nothing: already gone, fine).
    const r1 = ct.writeBatch(writes, opts);
    const present: RawCtEntry[] = [];
    writes.forEach((w, i) => {
      const r = r1[i];
      if (r === undefined || (w.op === 'delete' && r === 'ENOENT')) ok++;
      else if (w.op === 'create' && r === 'EEXIST') present.push(w.entry);
      else failed(r, w.op);
    });
    if (present.length > 0) {
      // 2. A later record of an entry we hold changes it in place.
      const r2 = ct.writeBatch(present.map((entry) => ({ op: 'update' as const, entry })), opts);
      const again: { op: CtWriteOp; entry: RawCtEntry }[] = [];
      present.forEach((entry, i) => {
        const r = r2[i];
        if (r === undefined) ok++;
        else if (r === 'ENOENT') again.push({ op: 'create', entry }); // gone meanwhile
        else if (r === 'EBUSY' && this.deps.sharing) {
          ok++;
          this.deps.count('records_stale_kept');
        } else {
          // 3. The kernel would not change it in place (a status bit cleared): replace it.
          this.deps.count('updates_replaced');
          again.push({ op: 'delete', entry }, { op: 'create', entry });
        }
      });
      if (again.length > 0) {
        const r3 = ct.writeBatch(again, opts);
        again.forEach((w, i) => {
          if (w.op === 'delete') return;
          if (r3[i] === undefined) ok++;
          else if (r3[i] === 'EEXIST') {
            // Deleted and created again, and the kernel says the entry exists: it made one of
            // its own for the flow meanwhile (or holds one our delete did not find). The flow
            // has an entry in the table, just not the record's: counted and logged, not a hole.
            // (Issue 20: under sharing a restarted node failed every bulk sync attempt on one to
            // four of these among 6,600 records, and stayed out of the cluster.)
            this.deps.count('replace_conflicts');
            this.lastConflicts.push({ at: new Date(this.deps.clock.now()).toISOString(), orig: formatRawTuple(w.entry.orig), reply: formatRawTuple(w.entry.reply) });
            if (this.lastConflicts.length > 8) this.lastConflicts.shift();
            this.deps.log.debug({ err: 'EEXIST', op: 'replace' }, 'sync record not applied: the kernel holds its own entry for the flow');
          } else failed(r3[i], 'replace');
        });
      }
    }
    this.applied += ok;
    this.deps.count('records_applied', ok);
  }

  /** Apply errors already told to the bulk machine. */
  private refusedReported = 0;

  /** The last records the kernel would not take for an entry of its own (status `lastConflicts`). */
  private readonly lastConflicts: SyncConflict[] = [];

  /** Kernel writes refused, by operation and errno ("create:EEXIST"), since the start. */
  private readonly refusedBy = new Map<string, number>();
  private refusedByReported = new Map<string, number>();

  /** Kernel writes refused since the bulk machine was last told (they make a transfer incomplete); logged with their errnos. */
  refusedSinceReport(): number {
    const n = this.applyErrors - this.refusedReported;
    this.refusedReported = this.applyErrors;
    if (n > 0) {
      const since = Object.fromEntries([...this.refusedBy].map(([k, v]) => [k, v - (this.refusedByReported.get(k) ?? 0)]).filter(([, v]) => (v as number) > 0));
      this.refusedByReported = new Map(this.refusedBy);
      this.deps.log.warn({ event: 'sync_writes_refused', refused: n, by: since }, `the kernel refused ${n} state sync write(s): ${Object.entries(since).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
    return n;
  }
}
