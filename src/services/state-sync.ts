/**
 * Connection-state sync: the active node (VRRP master) replicates every conntrack change
 * to its peers over the authenticated sync protocol (codec/sync, fsm/sync); a peer writes
 * what it receives into its own kernel at once, so that on takeover the state is there
 * before the traffic. A node that joins asks a peer for the whole table (bulk sync) and holds
 * VRRP back until it has it.
 *
 * Loops and echoes: entries this node writes come back as events marked `self` and are not
 * sent on; a backup's own events (its entries timing out) are not sent either: only the
 * active node speaks. Writes into the kernel run one at a time, in order.
 *
 * This file runs the links and the bulk machine and carries out their effects; the parts
 * beside it: the writes into our kernel (sync-writer.ts), our table to a peer (sync-push.ts),
 * the loosening at a handover (sync-loosen.ts), the vocabulary (sync-types.ts).
 */
import { decode, encode, peekHeader, type SyncRecord } from '../codec/sync/message.js';
import * as bulkFsm from '../fsm/sync/bulk.js';
import * as linkFsm from '../fsm/sync/link.js';
import { TimerDriver } from '../lib/timers.js';
import type { CtRecordEvent, SyncTransport } from '../ports/sync.js';
import { SYNC_COUNTERS, SYNC_DROP_REASONS, type SyncCounter, type SyncDropReason, type SyncPeer, type StateSyncDeps, type StateSyncStatus } from './sync-types.js';
import { SyncWriter } from './sync-writer.js';
import { SyncPusher } from './sync-push.js';
import { loosenTable } from './sync-loosen.js';
import { SyncLag, VersionRefusals, type LagSink } from './sync-lag.js';
import { oldestQueuedAtMs } from '../fsm/sync/sender.js';
export type { StateSyncStatus } from './sync-types.js';

/** How long a stopping node leaves its socket open for its last HELLO to go out. */
const LAST_HELLO_GRACE_MS = 20;

interface Link {
  peer: SyncPeer;
  state: linkFsm.LinkState;
}

export class StateSyncService {
  private readonly links = new Map<number, Link>();
  /** The same links by the peer's sync address: the first check of a datagram. */
  private readonly byAddress = new Map<string, Link>();
  private bulk: bulkFsm.BulkState;
  /** Every timer of the service: `${peer}/${timer}` for the links, `bulk` for the bulk machine. */
  private readonly timers: TimerDriver;
  private transport: SyncTransport | undefined;
  private unlisten: (() => void) | undefined;
  /** Bulk data counts and BULK_ENDs, fed to the bulk machine in stream order. */
  private bulkOrder: Promise<void> = Promise.resolve();
  private readonly drops = Object.fromEntries(SYNC_DROP_REASONS.map((r) => [r, 0])) as Record<SyncDropReason, number>;
  private readonly counters = Object.fromEntries(SYNC_COUNTERS.map((c) => [c, 0])) as Record<SyncCounter, number>;
  private sent = 0;
  private running = false;
  /** Records of this turn's events, not yet given to the links. */
  private pending: SyncRecord[] = [];
  /** What the peers send, into our kernel (services/sync-writer.ts). */
  private readonly writer: SyncWriter;
  /** Our table to a peer (services/sync-push.ts). */
  private readonly pusher: SyncPusher<Link>;
  /** How far behind each peer is (services/sync-lag.ts). */
  readonly lag: SyncLag;
  private readonly versions: VersionRefusals;
  /** Where our BEATs learn the lags (the liveness), once it runs (setLagSink). */
  private lagSink: LagSink | undefined;
  setLagSink = (sink: LagSink): void => void (this.lagSink = sink);

  constructor(private readonly deps: StateSyncDeps) {
    this.timers = new TimerDriver(deps.clock);
    this.writer = new SyncWriter({
      clock: deps.clock,
      log: deps.log,
      ct: deps.ct,
      running: () => this.running,
      count: (c, by) => this.count(c, by),
      drop: (r) => this.drop(r),
      onRoom: (room) => {
        for (const l of this.links.values()) this.feedLink(l, { type: 'rx_room', room });
      },
      onBacklog: (at) => this.lagSink?.writeSince(at),
      ...(deps.sharing ? { sharing: deps.sharing } : {}),
    });
    this.pusher = new SyncPusher<Link>({
      clock: deps.clock,
      log: deps.log,
      timers: this.timers,
      ct: deps.ct,
      owns: deps.owns,
      running: () => this.running,
      count: (c) => this.count(c),
      feedLink: (l, e) => this.feedLink(l, e),
      served: (l, requestId, count) => this.feedBulk({ type: 'bulk_served', peer: l.peer.id, requestId, count }),
    });
    this.versions = new VersionRefusals(deps.clock, deps.log);
    this.lag = new SyncLag({ clock: deps.clock, log: deps.log, boundMs: deps.lagBoundMs ?? 1000, countBehind: () => this.count('peers_behind'), onOldest: (peer, at) => this.lagSink?.lagSince(peer, at) });
    this.bulk = bulkFsm.initialBulkState(deps.bulk);
    for (const p of deps.peers) {
      const cfg = linkFsm.linkConfig({ name: p.name, self: deps.selfId, peer: p.id, epoch: deps.epoch });
      const l: Link = { peer: p, state: linkFsm.initialLinkState(cfg) };
      this.links.set(p.id, l);
      this.byAddress.set(p.address, l);
    }
  }

  /**
   * Opens the socket, greets the peers and asks one of them for the table. `emptyTable`:
   * this node's own conntrack table holds nothing (it waits longer for a peer that has one).
   */
  start(opts: { emptyTable?: boolean } = {}): void {
    if (this.running) return;
    this.running = true;
    this.transport = this.deps.transport((buf, from) => this.onDatagram(buf, from));
    this.unlisten = this.deps.ct.onRecord((e) => this.onConntrack(e));
    for (const l of this.links.values()) this.feedLink(l, { type: 'start' });
    this.feedBulk({ type: 'start', why: 'joined', emptyTable: opts.emptyTable === true });
  }

  /**
   * Pull the whole table again from a peer (sharing: a node that was cut off from a shared
   * link saw one direction of the flows meanwhile; the table rewrites its entries, TCP
   * windows liberal). The table counts as incomplete until it is done.
   */
  resync(why: string): void {
    if (!this.running) return;
    this.deps.log.info({ event: 'resync_asked', why }, `asking a peer for the whole table: ${why}`);
    this.feedBulk({ type: 'start', why: 'resync' });
  }

  /** A bulk sync is under way (asked, or receiving). */
  bulkInProgress(): boolean {
    return bulkFsm.inProgress(this.bulk);
  }

  /** A loosening of the table under way (see loosenTable). */
  private loosening: Promise<void> | undefined;

  /**
   * Marks every TCP entry of our kernel liberal in window tracking, as every entry the sync
   * writes already is (services/sync-loosen.ts says why). A second call while one runs waits
   * for it.
   */
  loosenTable(why: string): Promise<void> {
    this.loosening ??= loosenTable({ ct: this.deps.ct, clock: this.deps.clock, log: this.deps.log, running: () => this.running, count: (n) => this.count('entries_loosened', n) }, why).finally(() => (this.loosening = undefined));
    return this.loosening;
  }

  /** Our table is complete: a bulk sync finished, or no peer holds one. */
  synced(): boolean {
    return bulkFsm.isSynced(this.bulk);
  }

  /** Why the table is not complete yet, for readiness. */
  syncProgress(): string {
    const src = this.bulk.source === undefined ? undefined : [...this.links.values()].find((l) => l.peer.id === this.bulk.source)?.peer.name;
    return bulkFsm.progressText(this.bulk, src);
  }

  /** Peers with a live session whose own table is complete (their HELLO says SYNCED). */
  readyPeers(): string[] {
    return [...this.links.values()].filter((l) => l.state.peerAlive && linkFsm.hasSession(l.state) && l.state.peerSynced).map((l) => l.peer.name);
  }

  /** The peer gets the whole table (a resync pending, or a push of ours queued or under way): what it lacks is not in the queue's lag. */
  resyncing(peer: string): boolean {
    return [...this.links.values()].some((l) => l.peer.name === peer && (l.state.sender.resync !== 'none' || this.pusher.pushing(l)));
  }

  /** A session with some peer existed in this run (a peer that goes quiet may be restarting). */
  everHadPeer(): boolean {
    return [...this.links.values()].some((l) => linkFsm.hasSession(l.state));
  }

  /**
   * Sharing: live peers whose own entries may not all be in our kernel yet: no session with
   * them, or their push since the session began not over (SyncPusher.theirsPending). A
   * joining node takes no bucket before it has them (node/share-readiness.ts).
   */
  peersPending(): string[] {
    if (!this.deps.sharing) return [];
    const pending = (l: Link) => !linkFsm.hasSession(l.state) || this.pusher.theirsPending(l);
    return [...this.links.values()].filter((l) => l.state.peerAlive && !l.state.peerLeaving && pending(l)).map((l) => l.peer.name);
  }

  /** Sharing: a joining node waited for peers' entries (status). */
  countPeerWait(): void {
    this.count('peer_pushes_waited');
  }

  /** Peers alive and not on their way out (a peer starting, or running). */
  livePeers(): string[] {
    return [...this.links.values()].filter((l) => l.state.peerAlive && !l.state.peerLeaving).map((l) => l.peer.name);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    // A last HELLO that says our table is no longer to be counted on: a peer being stopped
    // meanwhile must not take us (a node on its way out) for a ready peer to hand over to.
    for (const l of this.links.values()) if (linkFsm.hasSession(l.state)) this.feedLink(l, { type: 'set_synced', synced: false });
    this.running = false;
    this.unlisten?.();
    this.timers.cancelAll();
    // UDP sends complete asynchronously: closing at once would drop that last HELLO.
    await new Promise<void>((r) => setTimeout(r, LAST_HELLO_GRACE_MS));
    this.transport?.close();
  }

  private drop(reason: SyncDropReason): void {
    this.drops[reason]++;
  }

  private count(c: SyncCounter, by = 1): void {
    this.counters[c] += by;
  }

  /**
   * A datagram from the socket (`view` is valid during the call only). The cheap checks come
   * first, so that a flood costs little: the source must be a peer's sync address, and the
   * header (read without authenticating) must name that peer as sender and us as receiver
   * and pass the replay check (stale epochs, duplicates: refused whatever the HMAC); then
   * magic, version and length (decode), and only then the HMAC. What a flood can make us
   * verify is HELLOs and messages of the live epoch. (The ruleset already drops the sync port
   * from anyone but the peers, on their interface: what gets here is spoofed from the sync
   * segment itself.)
   */
  private onDatagram(view: Buffer, from: string): void {
    const l = this.byAddress.get(from);
    if (!l) {
      this.drop('unknown_peer');
      return;
    }
    const claimed = peekHeader(view);
    if (claimed) {
      if (claimed.sender !== l.peer.id) {
        this.drop('unknown_peer');
        return;
      }
      // What the link would refuse whatever the HMAC says (a stale epoch, a duplicate ...).
      const refused = linkFsm.precheck(l.state, claimed);
      if (refused) {
        this.drop(refused);
        return;
      }
    }
    // The transport may reuse `view` once we return: what passed is copied, once (the
    // records are views of the copy).
    const buf = Buffer.from(view);
    const r = decode(buf, this.deps.key);
    if (!r.ok) {
      this.drop(r.reason);
      if (r.reason === 'bad_version') this.versions.refuse(buf, from, this.byAddress.get(from)?.peer.name);
      return;
    }
    if (r.value.sender !== l.peer.id) {
      this.drop('unknown_peer');
      return;
    }
    this.feedLink(l, { type: 'received', msg: r.value });
  }

  private onConntrack(e: CtRecordEvent | { kind: 'lost' }): void {
    if (!this.running) return;
    if (e.kind === 'lost') {
      this.count('events_lost');
      this.deps.log.warn({ event: 'sync_events_lost' }, 'conntrack events lost: pushing the whole table to the peers');
      for (const l of this.links.values()) void this.pusher.push(l, 0);
      return;
    }
    // Our own writes (a peer's records) are never echoed; entries we do not own (a backup's
    // copies timing out) are not ours to tell about.
    if (e.self || !this.deps.owns(e)) return;
    this.pending.push({ type: e.kind === 'destroy' ? 'ct_destroy' : 'ct_update', body: e.body });
    this.count('records_replicated');
    // Events come in bursts: hand them to the links once per turn of the event loop, as one
    // batch, rather than one machine step per event.
    if (this.pending.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const records = this.pending;
    this.pending = [];
    if (!this.running || records.length === 0) return;
    for (const l of this.links.values()) this.feedLink(l, { type: 'enqueue', records });
  }

  private feedLink(l: Link, event: linkFsm.LinkEvent, at?: number): void {
    const r = linkFsm.step(l.state, event, at ?? this.deps.clock.now());
    l.state = r.state;
    this.pusher.linkStepped(l);
    for (const fx of r.effects) {
      switch (fx.type) {
        case 'send':
          try {
            this.transport?.send(encode(fx.msg, this.deps.key), l.peer.address);
            this.sent++;
            this.count('datagrams_sent');
          } catch (err) {
            this.count('send_errors');
            this.deps.log.warn({ peer: l.peer.name, err: (err as Error).message }, 'sync message not sent');
          }
          break;
        case 'arm_timer': {
          const timer = fx.timer;
          this.timers.at(`${l.peer.id}/${timer}`, fx.atMs, (now) => {
            if (this.running) this.feedLink(l, { type: 'timer', timer }, now);
          });
          break;
        }
        case 'cancel_timer':
          this.timers.cancel(`${l.peer.id}/${fx.timer}`);
          break;
        case 'deliver': {
          this.writer.accept(fx.records);
          if (!fx.bulk) break;
          this.pusher.theirRecords(l);
          const data: bulkFsm.BulkEvent = { type: 'data', peer: l.peer.id, records: fx.records.length };
          // Counted once written (the idle timeout measures the transfer's progress into our
          // kernel, not into our memory), in stream order with the BULK_ENDs: records that
          // follow a BULK_END must not be counted for the transfer it ends.
          const upTo = this.writer.received;
          this.bulkOrder = this.bulkOrder.then(() => this.writer.writtenUpTo(upTo)).then(() => this.feedBulk({ ...data, refused: this.writer.refusedSinceReport() }));
          break;
        }
        case 'bulk_end': {
          // After the transfer's writes: the table is complete once they are in the kernel.
          const end: bulkFsm.BulkEvent = { type: 'bulk_end', peer: l.peer.id, requestId: fx.requestId, count: fx.count };
          const upTo = this.writer.received;
          this.bulkOrder = this.bulkOrder.then(() => this.writer.writtenUpTo(upTo)).then(() => {
            this.feedBulk({ ...end, refused: this.writer.refusedSinceReport() });
            if (this.pusher.theirEnd(l)) this.deps.bulkSettled?.();
          });
          break;
        }
        case 'bulk_request':
          this.feedBulk({ type: 'bulk_request', peer: l.peer.id, requestId: fx.requestId });
          break;
        case 'session':
          this.feedBulk({ type: 'peer_up', peer: l.peer.id });
          if (fx.restarted) {
            this.lag.reset(l.peer.name, 'it restarted');
            this.feedBulk({ type: 'start', why: 'peer_restarted', peer: l.peer.id });
          }
          if (this.deps.sharing) this.pusher.sessionBegan(l);
          break;
        case 'peer_dead':
          this.feedBulk({ type: 'peer_gone', peer: l.peer.id });
          break;
        case 'peer_alive':
          // Back after a silence in the same session (a stall, a lost burst): a peer the bulk
          // sync counted as gone is live again and can be asked (a new session says so itself).
          if (linkFsm.hasSession(l.state)) this.feedBulk({ type: 'peer_up', peer: l.peer.id });
          break;
        case 'resync_needed':
          this.lag.reset(l.peer.name, fx.why === 'overflow' ? 'our queue to it overflowed' : 'it went silent');
          if (fx.why === 'overflow') {
            this.count('queue_overflows');
            this.deps.log.warn({ peer: l.peer.name, dropped: fx.droppedRecords }, 'sync queue overflowed: the peer will get the whole table');
          } else {
            this.count('peers_lost');
            this.deps.log.warn({ peer: l.peer.name, dropped: fx.droppedRecords }, 'peer silent: nothing queued for it until it is back (then it gets the whole table)');
          }
          break;
        case 'resync_ready':
          void this.pusher.push(l, 0);
          break;
        case 'acked':
          this.lag.acked(l.peer.name, fx.lags);
          break;
        case 'drop':
          this.drop(fx.reason);
          break;
        case 'log':
          this.deps.log[fx.level]({ ...fx.fields, peer: l.peer.name }, fx.msg);
          break;
        case 'count':
          this.count(fx.counter === 'stale_timer' ? 'link_stale_timer' : fx.counter, fx.by);
          break;
      }
    }
    this.lag.observe(l.peer.name, oldestQueuedAtMs(l.state.sender));
  }

  private feedBulk(event: bulkFsm.BulkEvent, at?: number): void {
    const r = bulkFsm.step(this.bulk, event, at ?? this.deps.clock.now());
    const wasSynced = bulkFsm.isSynced(this.bulk);
    const wasInProgress = bulkFsm.inProgress(this.bulk);
    this.bulk = r.state;
    for (const fx of r.effects) {
      switch (fx.type) {
        case 'send_bulk_request': {
          const l = this.links.get(fx.peer);
          if (l) this.feedLink(l, { type: 'send_bulk_request', requestId: fx.requestId });
          break;
        }
        case 'arm_timer':
          this.timers.at('bulk', fx.atMs, (now) => {
            if (this.running) this.feedBulk({ type: 'timeout', othersAlive: this.deps.peerAliveElsewhere?.() ?? false }, now);
          });
          break;
        case 'cancel_timer':
          this.timers.cancel('bulk');
          break;
        case 'demote':
          this.deps.demote(fx.on, fx.why);
          break;
        case 'serve_bulk': {
          const l = this.links.get(fx.peer);
          if (l) void this.pusher.push(l, fx.requestId);
          break;
        }
        case 'cancel_serve':
          break;
        case 'log':
          this.deps.log[fx.level]({ ...fx.fields }, fx.msg);
          break;
        case 'count':
          this.count(fx.counter.startsWith('bulk_') ? (fx.counter as SyncCounter) : (`bulk_${fx.counter}` as SyncCounter));
          break;
      }
    }
    const synced = bulkFsm.isSynced(this.bulk);
    if (synced !== wasSynced) {
      for (const l of this.links.values()) this.feedLink(l, { type: 'set_synced', synced });
      this.deps.tableComplete?.(synced, bulkFsm.BULK_STATE_TEXT[this.bulk.state]);
    }
    if (wasInProgress && !bulkFsm.inProgress(this.bulk)) this.deps.bulkSettled?.();
  }

  status(): StateSyncStatus {
    const now = this.deps.clock.now();
    return {
      bulk: {
        state: this.bulk.state,
        text: bulkFsm.BULK_STATE_TEXT[this.bulk.state],
        complete: bulkFsm.isSynced(this.bulk),
        source: this.bulk.source === undefined ? null : [...this.links.values()].find((l) => l.peer.id === this.bulk.source)?.peer.name ?? null,
        received: this.bulk.received,
        refused: this.bulk.refused,
        attempt: this.bulk.attempt,
      },
      peers: [...this.links.values()].map((l) => ({ ...linkFsm.linkStatus(l.state, now), lag: this.lag.status(l.peer.name) })),
      writeBacklog: this.writer.backlog(),
      sent: this.sent,
      applied: this.writer.applied,
      applyErrors: this.writer.applyErrors,
      applyErrorsBy: this.writer.refusals(),
      lastConflicts: this.writer.conflicts(),
      counters: { ...this.counters },
      drops: { ...this.drops },
      socketDrops: this.transport?.receiveDrops?.() ?? null,
    };
  }
}
