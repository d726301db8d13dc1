/**
 * ctnetlink for the load balancer and state sync, without spawning conntrack(8): dump the
 * connection tracking table, get / create / delete entries, hear new / update / destroy
 * events as they happen.
 *
 * Two NETLINK_NETFILTER sockets share the caller's Poller, as in the rtnetlink adapter: one
 * for requests (no groups, so replies never queue behind a burst of events) and, when event
 * kinds are asked for, one joined to the NFNLGRP_CONNTRACK_* groups with a large receive
 * buffer. If the kernel still drops events (ENOBUFS), `{kind: 'lost'}` says so: whoever
 * mirrors the table must dump it again.
 *
 * Events carry `self: true` when the kernel attributes them to a request of this Ctnetlink
 * (its port id in nlmsg_pid): a backup writing learned entries with create() can tell its
 * own writes from the world's and never sync them back.
 *
 * Which entries report events at all: with net.netfilter.nf_conntrack_events = 2 (the
 * default, "auto"), the kernel gives an entry its event extension only if some socket of the
 * namespace listens to the conntrack groups when the entry is made. Entries made before the
 * first listener never report updates or their destruction, ever (seen on Linux 6.18: a
 * flush of 10k entries made without a listener sent no destroy event). So: open the event
 * socket before traffic (and before create() on a backup), or set the sysctl to 1.
 *
 * Dumps. The kernel answers a dump in datagrams of up to 32 KiB (about 100 entries each);
 * the socket keeps each datagram once, the codec decodes each message once, so a dump costs
 * linear time and memory (no concatenation, no re-parsing). A conntrack dump is not a
 * snapshot: entries created or destroyed while it runs may or may not be in it. The kernel
 * does not flag that (ctnetlink sets no NLM_F_DUMP_INTR: it has no generation counter to
 * compare); if a part does come flagged, the dump is redone, up to 3 times, and the last
 * one is returned (`counters().dumpsInterrupted` counts them). Exact mirrors subscribe to
 * events first and then dump, as conntrackd does.
 *
 * Errors are NetlinkError with the errno name ('ENOENT', 'EEXIST', 'EBUSY', 'EINVAL', ...);
 * bad arguments throw RangeError from the codec before anything is sent.
 *
 * Lifetime: close() before the Poller's close().
 */
import { readFile } from 'node:fs/promises';
import { parseIp } from '../../codec/netlink/address.js';
import {
  type ConntrackEntry,
  type ConntrackEvent,
  type CreateOptions,
  type CtEventKind,
  type CtKey,
  type CtTuple,
  CT_DELETE,
  CT_NEW,
  decodeConntrack,
  decodeConntrackEvent,
  type DumpFilter,
  encodeCreate,
  encodeUpdateRaw,
  writeEntryMessage,
  type CtWriteOp,
  type RawCtEntry,
  encodeDelete,
  encodeDumpRequest,
  encodeGet,
  hasStatus,
  IPPROTO_TCP,
  IPPROTO_UDP,
  matchesFilter,
  NETLINK_NETFILTER,
  NFNLGRP_CONNTRACK_DESTROY,
  NFNLGRP_CONNTRACK_NEW,
  NFNLGRP_CONNTRACK_UPDATE,
  sameAddress,
} from '../../codec/netlink/ctnetlink.js';
import { NLM_F_CREATE, type NlMessage } from '../../codec/netlink/nlmsg.js';
import { ServiceFlowTally } from '../../codec/netlink/ct-tally.js';
import { ctPayloadToBodyV2 } from '../../codec/sync/entry-v2-netlink.js';
import type { CtRecordEvent } from '../../ports/sync.js';
import type { Conntrack } from '../../ports/conntrack.js';
import { ECANCELED, NetlinkError } from './errors.js';
import type { Poller } from './poller.js';
import { NetlinkSocket, openRequestAndEvents, requestIdempotent, type Reply } from './socket.js';
import type { FlowSummary, ServiceKey } from '../../ports/conntrack.js';
import type { SocketCounters } from '../../ports/netlink.js';

export type { ConntrackEntry, ConntrackEvent, CtTuple, DumpFilter } from '../../codec/netlink/ctnetlink.js';

export type CtEventGroup = CtEventKind;
const GROUP_NUMBER: Record<CtEventGroup, number> = {
  new: NFNLGRP_CONNTRACK_NEW,
  update: NFNLGRP_CONNTRACK_UPDATE,
  destroy: NFNLGRP_CONNTRACK_DESTROY,
};

export type CtAdapterEvent = (ConntrackEvent & { self: boolean }) | { kind: 'lost' };

export interface CtnetlinkOptions {
  poller: Poller;
  /** Event kinds to hear (NFNLGRP_CONNTRACK_*). Default none: no event socket. */
  events?: readonly CtEventGroup[];
  /** Timeout of get/create/delete in ms (default 5000). */
  timeoutMs?: number;
  /** Timeout of a whole dump in ms (default 60000: a million entries take seconds). */
  dumpTimeoutMs?: number;
  /** Receive buffer of the event socket (default 8 MiB; beyond rmem_max needs CAP_NET_ADMIN). */
  eventBuffer?: number;
  /**
   * Events caused by our own writes are counted (`selfEventsSkipped`) and not decoded nor
   * emitted: for a listener that ignores them anyway (the state sync writes a bulk sync of a
   * million entries and would decode a million events of its own).
   */
  skipSelfEvents?: boolean;
}

export interface CtnetlinkCounters {
  requests: SocketCounters;
  events?: SocketCounters;
  /** Events delivered, by kind ('lost' = ENOBUFS reports). */
  eventsByKind: Record<CtEventKind | 'lost', number>;
  dumps: number;
  /** Dump attempts that came back flagged NLM_F_DUMP_INTR. */
  dumpsInterrupted: number;
  /** Creates that the kernel refused with EBUSY for the CONFIRMED bit and that were retried. */
  createRetries: number;
  /** Events of our own writes not decoded (skipSelfEvents). */
  selfEventsSkipped: number;
  /** Events of our own writes are dropped in the kernel (a BPF filter on the event socket). */
  selfEventsFiltered: boolean;
}

/** A create's EEXIST answer, inside createWith (a marker, not an Error: no stack to build). */
const EXISTS = Symbol('exists');

/** How many times a dump is redone when the kernel flags it inconsistent (NLM_F_DUMP_INTR). */
const DUMP_ATTEMPTS = 3;

export class Ctnetlink {
  private readonly requests: NetlinkSocket;
  private readonly events: NetlinkSocket | undefined;
  private readonly listeners = new Set<(e: CtAdapterEvent) => void>();
  private readonly recordListeners = new Set<(e: CtRecordEvent | { kind: 'lost' }) => void>();
  private readonly dumpTimeoutMs: number;
  /** Whether creates on this kernel keep IPS_CONFIRMED in CTA_STATUS (learned from EBUSY). */
  private keepConfirmed = true;
  private readonly stats = { dumps: 0, dumpsInterrupted: 0, createRetries: 0, selfEventsSkipped: 0, selfEventsFiltered: false };
  private skipSelf = false;
  private readonly byKind: Record<CtEventKind | 'lost', number> = { new: 0, update: 0, destroy: 0, lost: 0 };
  /** Messages of replies and events the codec refused, by reason. */
  readonly dropped: Record<string, number> = {};

  private poller: Poller | undefined;

  private constructor(requests: NetlinkSocket, events: NetlinkSocket | undefined, dumpTimeoutMs: number) {
    this.requests = requests;
    this.events = events;
    this.dumpTimeoutMs = dumpTimeoutMs;
  }

  /** Opens the sockets (synchronously); throws NetlinkError when the kernel refuses. */
  static open(opts: CtnetlinkOptions): Ctnetlink {
    const base = {
      poller: opts.poller,
      protocol: NETLINK_NETFILTER,
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    };
    let self: Ctnetlink | undefined;
    // Room for the errors of a batch of writes sent without acks (NetlinkSocket, ackless).
    const { requests, events } = openRequestAndEvents({ ...base, requestRcvbuf: 4 * 1024 * 1024 }, {
      groups: [...new Set(opts.events ?? [])].map((g) => GROUP_NUMBER[g]),
      rcvbuf: opts.eventBuffer ?? 8 * 1024 * 1024,
      onNotification: (m) => self?.onNotification(m),
      onLost: () => self?.lost(),
    });
    self = new Ctnetlink(requests, events, opts.dumpTimeoutMs ?? 60_000);
    self.skipSelf = opts.skipSelfEvents === true;
    self.poller = opts.poller;
    // Dropped in the kernel, if it takes the filter; skipped before decoding otherwise.
    if (self.skipSelf && events) self.stats.selfEventsFiltered = events.dropFromPort(requests.pid);
    return self;
  }

  /** Our request socket's port id: what `self` events carry in nlmsg_pid. */
  get portId(): number {
    return this.requests.pid;
  }

  counters(): CtnetlinkCounters {
    const c: CtnetlinkCounters = { requests: this.requests.counters, eventsByKind: { ...this.byKind }, ...this.stats };
    if (this.events) c.events = this.events.counters;
    return c;
  }

  /** Calls `cb` for every event and for `{kind:'lost'}`; returns the unsubscribe function. */
  onEvent(cb: (e: CtAdapterEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /**
   * Calls `cb` for every event as a sync record (ports/sync.ts: the body read straight from the
   * kernel's bytes, no entry decoded) and for `{kind:'lost'}`; returns the unsubscribe function.
   */
  onRecord(cb: (e: CtRecordEvent | { kind: 'lost' }) => void): () => void {
    this.recordListeners.add(cb);
    return () => this.recordListeners.delete(cb);
  }

  /**
   * How many entries the table of this network namespace holds, without reading them
   * (nf_conntrack_count, per namespace); a full dump if that file cannot be read.
   */
  async count(): Promise<number> {
    try {
      const n = Number((await readFile('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8')).trim());
      if (Number.isInteger(n) && n >= 0) return n;
    } catch {
      // no procfs here: count the hard way
    }
    return (await this.dump()).length;
  }

  /**
   * Every entry, or those passing `filter`. The kernel narrows by family, mark and (Linux
   * 5.8+) original tuple; the result is checked again here, so an older kernel that ignores
   * CTA_FILTER still gives the exact answer.
   */
  async dump(filter: DumpFilter = {}): Promise<ConntrackEntry[]> {
    let reply: Reply | undefined;
    for (let i = 0; i < DUMP_ATTEMPTS; i++) {
      this.stats.dumps++;
      reply = await this.requests.request((seq) => encodeDumpRequest(seq, filter), {
        dump: true,
        op: 'IPCTNL_MSG_CT_GET',
        timeoutMs: this.dumpTimeoutMs,
      });
      if (!reply.interrupted) break;
      this.stats.dumpsInterrupted++;
    }
    const out: ConntrackEntry[] = [];
    const check = filter.orig !== undefined || filter.mark !== undefined || filter.family !== undefined;
    for (const m of reply?.messages ?? []) {
      const r = decodeConntrack(m);
      if (!r.ok) {
        this.drop(r.reason);
        continue;
      }
      if (!check || matchesFilter(r.value, filter)) out.push(r.value);
    }
    return out;
  }

  /**
   * The table in batches of about `batchSize` entries, each handed to `onBatch` as it is
   * read; while a promise `onBatch` returned is pending, the dump waits in the kernel (a
   * socket of its own, paused). `onBatch` returning 'stop' ends it there. Memory holds one
   * batch, and no turn of the event loop decodes more than a few datagrams: a million
   * entries served to a peer block nothing. Resolves with the number of entries handed over.
   * An interrupted dump (NLM_F_DUMP_INTR) is not redone: the reader gets what was read.
   */
  dumpStream(onBatch: (entries: ConntrackEntry[]) => void | 'stop' | Promise<void | 'stop'>, filter: DumpFilter = {}, batchSize = 512): Promise<number> {
    const check = filter.orig !== undefined || filter.mark !== undefined || filter.family !== undefined;
    return this.streamBatches(
      (m) => {
        const r = decodeConntrack(m);
        if (!r.ok) return void this.drop(r.reason);
        return check && !matchesFilter(r.value, filter) ? undefined : r.value;
      },
      onBatch,
      filter,
      batchSize,
    );
  }

  /**
   * The whole table as sync records (the body read straight from the kernel's bytes,
   * codec/sync/entry-v2-netlink.ts, and the mark), in batches as dumpStream gives entries.
   */
  dumpRecords(onBatch: (records: { body: Uint8Array; mark: number | undefined }[]) => void | 'stop' | Promise<void | 'stop'>, batchSize = 512): Promise<number> {
    return this.streamBatches(
      (m) => {
        const r = ctPayloadToBodyV2(m.payload);
        if (!r.ok) return void this.drop(r.reason);
        return { body: r.body, mark: r.mark };
      },
      onBatch,
      {},
      batchSize,
    );
  }

  /** dumpStream's engine: each message read by `read` (undefined: skipped), in batches. */
  private async streamBatches<T>(read: (m: NlMessage) => T | undefined, onBatch: (items: T[]) => void | 'stop' | Promise<void | 'stop'>, filter: DumpFilter, batchSize: number): Promise<number> {
    const sock = this.openDumpSocket();
    let batch: T[] = [];
    let total = 0;
    let stopped = false;
    let chain: Promise<void> = Promise.resolve();
    const hand = (items: T[]) => {
      total += items.length;
      const r = onBatch(items);
      if (r === 'stop') stopped = true;
      else if (r instanceof Promise) {
        sock.pause();
        chain = r.then((x) => {
          if (x === 'stop') stopped = true;
          if (stopped) sock.close();
          else sock.resume();
        });
      }
      if (stopped) sock.close();
    };
    try {
      await this.streamDump(sock, filter, (m) => {
        if (stopped) return;
        const x = read(m);
        if (x === undefined) return;
        batch.push(x);
        if (batch.length >= batchSize) {
          const b = batch;
          batch = [];
          hand(b);
        }
      });
      await chain;
      if (batch.length > 0 && !stopped) {
        const b = batch;
        batch = [];
        hand(b);
        await chain;
      }
    } catch (err) {
      if (!(stopped && err instanceof NetlinkError && err.errno === 'ECANCELED')) throw err;
    } finally {
      sock.close();
    }
    return total;
  }

  /**
   * The dump's messages undecoded, handed to `onMessage` as they are read: a socket of its
   * own, a few datagrams per turn of the event loop, so counting a large table blocks
   * nothing (ServiceFlowTally reads what it needs in place). Resolves with the number of
   * messages; an interrupted dump is not redone.
   */
  async dumpRaw(onMessage: (m: NlMessage) => void, filter: DumpFilter = {}): Promise<number> {
    const sock = this.openDumpSocket();
    let n = 0;
    try {
      await this.streamDump(sock, filter, (m) => {
        n++;
        onMessage(m);
      });
    } finally {
      sock.close();
    }
    return n;
  }

  /** A socket of its own for a streamed dump, read a few datagrams per turn of the event loop. */
  private openDumpSocket(): NetlinkSocket {
    if (!this.poller) throw new NetlinkError('IPCTNL_MSG_CT_GET', ECANCELED, { detail: 'no poller' });
    return NetlinkSocket.open({ poller: this.poller, protocol: NETLINK_NETFILTER, timeoutMs: this.dumpTimeoutMs, readsPerWakeup: 4 });
  }

  /** A dump on `sock`, its messages handed to `onPart` as they are read. */
  private streamDump(sock: NetlinkSocket, filter: DumpFilter, onPart: (m: NlMessage) => void): Promise<Reply> {
    this.stats.dumps++;
    return sock.request((seq) => encodeDumpRequest(seq, filter), { dump: true, op: 'IPCTNL_MSG_CT_GET', timeoutMs: this.dumpTimeoutMs, onPart });
  }

  /** One entry by its original tuple (the family is the addresses'); undefined when there is none (ENOENT). */
  async get(tuple: CtTuple, opts: { zone?: number } = {}): Promise<ConntrackEntry | undefined> {
    const key = toKey(tuple, opts);
    let reply: Reply;
    try {
      reply = await this.requests.request((seq) => encodeGet(seq, key), { dump: false, op: 'IPCTNL_MSG_CT_GET' });
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === 'ENOENT') return undefined;
      throw err;
    }
    for (const m of reply.messages) {
      const r = decodeConntrack(m);
      if (r.ok) return r.value;
      this.drop(r.reason);
    }
    return undefined;
  }

  /**
   * Writes an entry into the table (see encodeCreate for what is sent: tuples, NAT, status,
   * timeout, mark, TCP state with the be-liberal flags by default). Resolves 'created', or
   * 'exists' when the kernel answers EEXIST (an entry with either tuple is there: a retry
   * after a failover is harmless). Other errors reject with NetlinkError.
   */
  async create(entry: ConntrackEntry, opts: CreateOptions = {}): Promise<'created' | 'exists'> {
    return this.createWith((seq, o) => encodeCreate(seq, entry, o), entry.status !== undefined, opts);
  }

  /**
   * Changes the entry with this original tuple in place (see encodeUpdateRaw): 'updated', or
   * 'absent' (ENOENT). A change the kernel refuses (EBUSY: a status bit cleared; EOPNOTSUPP)
   * rejects with NetlinkError: replace the entry instead.
   */
  async updateRaw(entry: RawCtEntry, opts: CreateOptions = {}): Promise<'updated' | 'absent'> {
    const r = await this.requests.request((seq) => encodeUpdateRaw(seq, entry, { ...opts, keepConfirmed: true, ack: false }), { dump: false, op: 'IPCTNL_MSG_CT_NEW', ackless: true, answers: ['ENOENT'] });
    return r.errno === 'ENOENT' ? 'absent' : 'updated';
  }

  /**
   * Writes in one go (see NetlinkSocket.sendAckless): creates, updates in place and deletes,
   * in order, and the outcome of each at once: undefined (done) or the errno name (EEXIST: a
   * create found its entry; ENOENT: an update or delete found none; EBUSY: an update the
   * kernel refuses; ENOBUFS: unknown). Creates refused with EBUSY for the CONFIRMED bit are
   * tried again the other way, as `create` does.
   */
  writeBatch(writes: readonly { op: CtWriteOp; entry: RawCtEntry }[], opts: CreateOptions = {}): (string | undefined)[] {
    const keep = opts.keepConfirmed ?? this.keepConfirmed;
    const run = (list: readonly { op: CtWriteOp; entry: RawCtEntry }[], keepConfirmed: boolean) => {
      // Two option sets per batch, not one per write (a backup writes tens of thousands a second).
      const forUpdate: CreateOptions = { ...opts, keepConfirmed: true, ack: false };
      const forOthers: CreateOptions = { ...opts, keepConfirmed, ack: false };
      return this.requests.sendAckless(list.length, (w, i, seq) => {
        const x = list[i]!;
        writeEntryMessage(w, seq, x.op, x.entry, x.op === 'update' ? forUpdate : forOthers);
      });
    };
    const out = run(writes, keep);
    if (opts.keepConfirmed !== undefined) return out;
    const busy: number[] = [];
    for (let i = 0; i < writes.length; i++) if (out[i] === 'EBUSY' && writes[i]!.op === 'create' && writes[i]!.entry.status !== undefined) busy.push(i);
    if (busy.length === 0) return out;
    this.stats.createRetries += busy.length;
    const again = run(busy.map((i) => writes[i]!), !keep);
    if (again.some((r) => r === undefined)) this.keepConfirmed = !keep;
    busy.forEach((i, k) => (out[i] = again[k]));
    return out;
  }

  private async createWith(encode: (seq: number, opts: CreateOptions) => Buffer, hasStatus: boolean, opts: CreateOptions): Promise<'created' | 'exists'> {
    const attempt = async (keepConfirmed: boolean): Promise<void> => {
      const r = await this.requests.request((seq) => encode(seq, { ...opts, keepConfirmed, ack: false }), { dump: false, op: 'IPCTNL_MSG_CT_NEW', ackless: true, answers: ['EEXIST'] });
      if (r.errno === 'EEXIST') throw EXISTS;
    };
    const keep = opts.keepConfirmed ?? this.keepConfirmed;
    try {
      await attempt(keep);
      return 'created';
    } catch (err) {
      if (err === EXISTS) return 'exists';
      if (!(err instanceof NetlinkError)) throw err;
      if (err.errno === 'EEXIST') return 'exists';
      // EBUSY: this kernel wants the other CONFIRMED choice (see CreateOptions.keepConfirmed).
      if (err.errno !== 'EBUSY' || opts.keepConfirmed !== undefined || !hasStatus) throw err;
    }
    this.stats.createRetries++;
    try {
      await attempt(!keep);
    } catch (err) {
      if (err === EXISTS) return 'exists';
      throw err;
    }
    this.keepConfirmed = !keep;
    return 'created';
  }

  /**
   * Deletes the entry with this original tuple (and, with `id`, only if it is still that
   * entry). Resolves 'deleted', or 'absent' when the kernel answers ENOENT: deleting twice
   * is harmless. Other errors reject with NetlinkError.
   */
  async delete(tuple: CtTuple, opts: { zone?: number; id?: number } = {}): Promise<'deleted' | 'absent'> {
    const key = toKey(tuple, opts);
    return requestIdempotent(this.requests, (seq) => encodeDelete(seq, key), 'IPCTNL_MSG_CT_DELETE', 'deleted', { errno: 'ENOENT', result: 'absent' });
  }

  /** Closes both sockets (waiting requests reject with ECANCELED); the poller stays open. Idempotent. */
  close(): void {
    this.requests.close();
    this.events?.close();
    this.listeners.clear();
    this.recordListeners.clear();
  }

  // -------------------------------------------------------------------------------------

  private drop(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }

  private onNotification(msg: NlMessage): void {
    if (this.skipSelf && msg.header.pid !== 0 && msg.header.pid === this.requests.pid) {
      this.stats.selfEventsSkipped++;
      return;
    }
    const self = msg.header.pid !== 0 && msg.header.pid === this.requests.pid;
    const t = msg.header.type;
    if (t !== CT_NEW && t !== CT_DELETE) return this.drop('unexpected_type');
    const kind: CtEventKind = t === CT_DELETE ? 'destroy' : msg.header.flags & NLM_F_CREATE ? 'new' : 'update';
    if (this.recordListeners.size > 0) {
      const r = ctPayloadToBodyV2(msg.payload);
      if (!r.ok) return this.drop(r.reason);
      const e: CtRecordEvent = { kind, body: r.body, mark: r.mark, self };
      for (const cb of this.recordListeners) guarded(cb, e);
    }
    if (this.listeners.size > 0) {
      const r = decodeConntrackEvent(msg);
      if (!r.ok) return this.drop(r.reason);
      this.emit({ ...r.value, self });
    }
    this.byKind[kind]++;
  }

  private lost(): void {
    this.byKind.lost++;
    for (const cb of this.recordListeners) guarded(cb, { kind: 'lost' });
    this.emit({ kind: 'lost' });
  }

  private emit(e: CtAdapterEvent): void {
    for (const cb of [...this.listeners]) guarded(cb, e);
  }
}

/** One listener's bug neither starves the others nor stops the socket's reads. */
function guarded<E>(cb: (e: E) => void, e: E): void {
  try {
    cb(e);
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}

function toKey(tuple: CtTuple, opts: { zone?: number; id?: number }): CtKey {
  const a = parseIp(tuple.src);
  if (!a) throw new RangeError(`source ${JSON.stringify(tuple.src)} is not an address`);
  const key: CtKey = { family: a.family, orig: tuple };
  if (opts.zone !== undefined) key.zone = opts.zone;
  if (opts.id !== undefined) key.id = opts.id;
  return key;
}

// ---------------------------------------------------------------------------------------
// What the load balancer needs (the Conntrack interface of src/adapters/conntrack.ts)

/** The dump filter of a virtual service: its original destination address, port and protocol. */
export function serviceFilter(s: ServiceKey): DumpFilter {
  return { family: s.family, orig: { proto: s.proto === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP, dst: s.address, dstPort: s.port } };
}

/** Is this flow "established" for the balancer: TCP in ESTABLISHED, UDP (or other) ASSURED. */
export function isEstablished(e: ConntrackEntry): boolean {
  if (e.orig.proto === IPPROTO_TCP) return e.tcp?.state === 'ESTABLISHED';
  return hasStatus(e, 'ASSURED');
}

/** The backend of a flow: where its replies come from ("address:port" of the reply source). */
export function backendOf(e: ConntrackEntry): string {
  return `${e.reply.src}:${e.reply.srcPort ?? 0}`;
}

/**
 * Entries -> the FlowSummary of a service: flows whose original destination is the service,
 * grouped by backend, with how many are established. (Pure; the kernel filter already did the
 * selecting, this checks again.)
 */
export function summarizeServiceFlows(entries: Iterable<ConntrackEntry>, s: ServiceKey): FlowSummary {
  const f = serviceFilter(s);
  const byBackend: FlowSummary['byBackend'] = new Map();
  for (const e of entries) {
    if (!matchesFilter(e, f)) continue;
    const key = backendOf(e);
    const b = byBackend.get(key) ?? { flows: 0, established: 0 };
    b.flows++;
    if (isEstablished(e)) b.established++;
    byBackend.set(key, b);
  }
  return { byBackend };
}

/** How many deletes are in flight at once when a backend's flows are removed. */
const DELETE_CONCURRENCY = 64;

/**
 * The Conntrack of src/adapters/conntrack.ts over ctnetlink, so the CLI adapter can be
 * swapped out: serviceFlows() counts one filtered dump in place (ServiceFlowTally); deleteBackendFlows() dumps the service,
 * picks the flows whose replies come from the backend and deletes each by tuple and id
 * (so a new flow that reused a tuple meanwhile is left alone), 64 requests in flight.
 * It returns how many the kernel deleted; flows that ended on their own meanwhile (ENOENT)
 * are not counted.
 */
export function createCtnetlinkConntrack(ct: Ctnetlink): Conntrack {
  return {
    async serviceFlows(s: ServiceKey): Promise<FlowSummary> {
      const tally = new ServiceFlowTally(s);
      await ct.dumpRaw((m) => tally.add(m), serviceFilter(s));
      return tally.summary();
    },
    async deleteBackendFlows(s: ServiceKey, backend: { address: string; port: number }): Promise<number> {
      const flows = (await ct.dump(serviceFilter(s))).filter(
        (e) => sameAddress(e.reply.src, backend.address) && e.reply.srcPort === backend.port,
      );
      let deleted = 0;
      let next = 0;
      const worker = async () => {
        while (next < flows.length) {
          const e = flows[next++] as ConntrackEntry;
          const opts: { zone?: number; id?: number } = {};
          if (e.zone !== undefined) opts.zone = e.zone;
          if (e.id !== undefined) opts.id = e.id;
          if ((await ct.delete(e.orig, opts)) === 'deleted') deleted++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, flows.length) }, worker));
      return deleted;
    },
  };
}
