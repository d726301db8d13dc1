/**
 * How far behind each peer's table is (issue 25: never fall behind silently), measured on our
 * own clock alone: a live change's lag is the time from its conntrack event being queued to
 * the peer's ack of it (the peer acks what it received; its kernel write follows, and its
 * backlog is its own figure, `writeBacklog`). Per peer: p50/p99/max over the last minute
 * (lib/lag-window.ts), and the age of the oldest change not yet acknowledged. A peer whose
 * oldest unacknowledged change is older than the bound (`state_sync.lag_bound`) is behind:
 * counted once per episode (`peers_behind`), logged when it begins and when the peer has
 * caught up again (under half the bound), with how long and how far.
 *
 * Also here: the log of datagrams of another wire version (VersionRefusals).
 *
 * The other side: what the peers tell us of our own lag behind them (their BEATs carry it,
 * see codec/sync/message.ts) and our own write backlog make this node behind in its status
 * and on its BEATs; a graceful stop waits for its peers to catch up (NodeDaemon.stop).
 */
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { LagWindow, type LagSummary } from '../lib/lag-window.js';
import { peekVersion } from '../codec/sync/message.js';
import { SYNC_VERSION, SYNC_VERSION_HISTORY } from '../codec/sync/constants.js';

export interface PeerLagStatus {
  /** Live changes acknowledged by the peer in the last minute: p50/p99/max lag and their records. */
  lastMinute: LagSummary;
  /** Age of the oldest change not yet acknowledged (0: the peer has everything). */
  oldestUnackedMs: number;
  /** Over the bound now. */
  behind: boolean;
  /** The worst lag of the episode under way or the last one, and when the last one began (null: never). */
  lastBehind: { at: string; worstMs: number; forMs: number | null } | null;
}

interface PeerLag {
  window: LagWindow;
  oldestAtMs: number | undefined;
  /** Its queue was dropped at this time (reset): what was in flight before does not count (the peer gets the whole table). */
  floorMs: number | undefined;
  behindSinceMs: number | undefined;
  worstMs: number;
  last: PeerLagStatus['lastBehind'];
}

/** Where the BEATs learn the lags (the liveness channel): a peer's oldest unacknowledged change, our write backlog's oldest record. */
export interface LagSink {
  lagSince(peer: string, atMs: number | undefined): void;
  writeSince(atMs: number | undefined): void;
}

export interface SyncLagDeps {
  clock: Clock;
  log: Logger;
  /** Over this, a peer is behind (ms). */
  boundMs: number;
  /** A peer fell behind (once per episode). */
  countBehind: () => void;
  /** When the oldest change not acknowledged by the peer was queued changed (undefined: none): for the BEATs. */
  onOldest?: (peer: string, atMs: number | undefined) => void;
}

export class SyncLag {
  private readonly peers = new Map<string, PeerLag>();

  constructor(private readonly deps: SyncLagDeps) {}

  private of(peer: string): PeerLag {
    let p = this.peers.get(peer);
    if (!p) {
      p = { window: new LagWindow(), oldestAtMs: undefined, floorMs: undefined, behindSinceMs: undefined, worstMs: 0, last: null };
      this.peers.set(peer, p);
    }
    return p;
  }

  /** Live changes the peer acknowledged now, with their lags. */
  acked(peer: string, lags: readonly { ms: number; records: number }[]): void {
    const now = this.deps.clock.now();
    const p = this.of(peer);
    for (const l of lags) p.window.add(now, l.ms, l.records);
  }

  /**
   * The peer's queue after a step of its link: when its oldest unacknowledged change was
   * queued (undefined: none). Crossing the bound is seen here: every ack, every change
   * queued and every retransmission timeout comes through.
   */
  observe(peer: string, queuedAtMs: number | undefined): void {
    const p = this.of(peer);
    // Messages in flight before a reset stay in the sender's queue until acked or a new
    // session: they are the resync's to cover, not a lag (nor a new episode).
    let oldestAtMs = queuedAtMs;
    if (oldestAtMs !== undefined && p.floorMs !== undefined && oldestAtMs <= p.floorMs) oldestAtMs = undefined;
    else p.floorMs = undefined;
    if (p.oldestAtMs !== oldestAtMs) {
      p.oldestAtMs = oldestAtMs;
      this.deps.onOldest?.(peer, oldestAtMs);
    }
    this.check(peer, p);
  }

  /** Whether the peer is over the bound now: an episode begins, or ends once it is under half of it. */
  private check(peer: string, p: PeerLag): void {
    const now = this.deps.clock.now();
    const lag = p.oldestAtMs === undefined ? 0 : Math.max(0, now - p.oldestAtMs);
    const bound = this.deps.boundMs;
    if (p.behindSinceMs === undefined) {
      if (lag <= bound) return;
      p.behindSinceMs = now;
      p.worstMs = lag;
      p.last = { at: new Date(now).toISOString(), worstMs: Math.round(lag), forMs: null };
      this.deps.countBehind();
      this.deps.log.warn({ event: 'sync_peer_behind', peer, lagMs: Math.round(lag), boundMs: bound }, `state sync: ${peer} is behind: a change queued ${Math.round(lag)} ms ago is not acknowledged (bound ${bound} ms)`);
      return;
    }
    p.worstMs = Math.max(p.worstMs, lag);
    if (p.last) p.last.worstMs = Math.round(p.worstMs);
    if (lag > bound / 2) return;
    const forMs = Math.round(now - p.behindSinceMs);
    p.behindSinceMs = undefined;
    if (p.last) p.last.forMs = forMs;
    this.deps.log.info({ event: 'sync_peer_caught_up', peer, behindMs: forMs, worstLagMs: Math.round(p.worstMs) }, `state sync: ${peer} caught up after ${forMs} ms behind (worst lag ${Math.round(p.worstMs)} ms)`);
  }

  /** The peer's queue was dropped (it restarted, went silent, overflowed): it gets the whole table; an episode under way ends so. */
  reset(peer: string, why: string): void {
    const p = this.of(peer);
    if (p.behindSinceMs !== undefined) {
      const forMs = Math.round(this.deps.clock.now() - p.behindSinceMs);
      if (p.last) p.last.forMs = forMs;
      this.deps.log.info({ event: 'sync_peer_behind_reset', peer, behindMs: forMs, why }, `state sync: ${peer} no longer counted behind after ${forMs} ms: its queue was dropped (${why}); it gets the whole table`);
    }
    p.behindSinceMs = undefined;
    p.floorMs = this.deps.clock.now();
    if (p.oldestAtMs !== undefined) {
      p.oldestAtMs = undefined;
      this.deps.onOldest?.(peer, undefined);
    }
  }

  /** How long the peer's oldest change not acknowledged has waited (ms); undefined: it has everything. */
  oldestAgeMs(peer: string): number | undefined {
    const at = this.peers.get(peer)?.oldestAtMs;
    return at === undefined ? undefined : Math.max(0, this.deps.clock.now() - at);
  }

  status(peer: string): PeerLagStatus {
    const p = this.of(peer);
    // The bound is crossed by time alone too (a peer whose window is shut has nothing in flight to time out).
    this.check(peer, p);
    const now = this.deps.clock.now();
    return {
      lastMinute: p.window.summary(now),
      oldestUnackedMs: p.oldestAtMs === undefined ? 0 : Math.round(Math.max(0, now - p.oldestAtMs)),
      behind: p.behindSinceMs !== undefined,
      lastBehind: p.last ? { ...p.last } : null,
    };
  }
}

/** A peer of another wire version is named in the log at most once per this long. */
const VERSION_LOG_EVERY_MS = 60_000;

/** Datagrams of another wire version (a peer not upgraded yet): said, naming both, once a minute per source. */
export class VersionRefusals {
  /** When each source address was last logged. */
  private readonly logged = new Map<string, number>();

  constructor(private readonly clock: Clock, private readonly log: Logger) {}

  refuse(buf: Uint8Array, from: string, peer: string | undefined): void {
    const now = this.clock.now();
    const last = this.logged.get(from);
    if (last !== undefined && now - last < VERSION_LOG_EVERY_MS) return;
    if (this.logged.size > 64) this.logged.clear(); // bounded: anyone can send
    this.logged.set(from, now);
    const theirs = peekVersion(buf);
    const desc = (v: number | undefined) => (v === undefined ? '' : ` (${SYNC_VERSION_HISTORY[v] ?? 'unknown to this node'})`);
    this.log.error(
      { event: 'sync_version_refused', from, peer: peer ?? null, theirVersion: theirs ?? null, ourVersion: SYNC_VERSION },
      `state sync refused: ${peer ?? from} speaks wire version ${theirs}${desc(theirs)}, this node speaks version ${SYNC_VERSION}${desc(SYNC_VERSION)}; run the same fwlb release on every node`,
    );
  }
}
