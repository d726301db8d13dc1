/**
 * Fast, authenticated liveness between fwlb nodes (issue 13): a BEAT to every peer each
 * `intervalMs` on the sync link (the sync protocol's HMAC and replay check, a port of its
 * own), and a peer not heard for its interval x multiplier is gone (fsm/liveness.ts). The
 * sending and the timing run in a worker thread (fsm/liveness-core.ts,
 * workers/liveness-role.ts); this side, on the daemon's loop, acts on what it reports.
 * A peer that is gone releases its mastership here, as carrier loss on a sync cable does:
 * the VRRP instances whose master it was take over at once when no live peer outranks them
 * (services/vrrp.ts, peerGone), without waiting for Master_Down_Interval. Behind a switch,
 * where no carrier is lost, that is the difference between ~3.6 advert intervals and the
 * detection time.
 *
 * Never crying wolf: the worker's loop is not held up by the daemon's work (and runs under
 * SCHED_RR); a detection timer that fires reads the socket first; and a peer whose adverts
 * still come (the sync link broken, BEATs held up) is not taken for gone until one advert
 * interval has passed since its last advert with none since (services/vrrp.ts, peerGone).
 */
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { BeatInstance } from '../codec/sync/message.js';
import { checkAdvert, initialLiveness, type AdvertCheck, type PeerLiveness } from '../fsm/liveness.js';
import type { CoreEvent } from '../fsm/liveness-core.js';
import type { LivenessCounters, LivenessPeer, LivenessChannel, PeerLagTold } from '../ports/liveness.js';
import type { PreemptHoldReason } from './vrrp.js';

export interface LivenessDeps {
  clock: Clock;
  log: Logger;
  intervalMs: number;
  multiplier: number;
  peers: readonly LivenessPeer[];
  channel: LivenessChannel;
  vrrp: {
    beatInstances(): BeatInstance[];
    peerGone(addresses: ReadonlySet<string>, why: string, outranked: (vrid: number, priority: number) => boolean, stillGone?: () => boolean): number;
    /** A BEAT of the peer at these addresses came: releases held in its name are decided. */
    recheckHeld?(addresses: ReadonlySet<string>, maxAgeMs: number): void;
    /** While our BEATs say BEHIND, we take no VIP from a live master (it holds the sessions we lack). */
    setPreemptHold?(on: boolean, why: string, reason: PreemptHoldReason): void;
  };
  /** Sharing: told when a peer becomes a member (live, and ready by its BEATs) or stops being one. */
  sharing?: { peer(name: string, member: boolean): void };
  /** The first BEAT of a peer in this run came: whether it is a member is known from now on. */
  /** A peer's state as the cluster events say it: up, down, or leaving (its BEATs say it is stopping). */
  onPeer?: (peer: string, state: 'up' | 'down' | 'leaving') => void;
  onHeard?: (peer: string) => void;
}

export interface LivenessStatus {
  intervalMs: number;
  multiplier: number;
  /** BEATs sent, received, not sent while the main thread was hung, dropped by reason, and their timing (the worker's). */
  counters: LivenessCounters;
  /** What our BEATs say of our table (state sync): behind its peers' by more than the bound, records waiting for our kernel. */
  own: { behind: boolean; writing: boolean };
  /** The timing thread's deaths, and how many of them were followed by a new thread (the rest left the liveness off). */
  thread: { failures: number; restarts: number; lastError: string | null };
  /** `told`: what the peer's last BEAT said of the lag: ours behind it, and its own state (null before one came). */
  peers: { peer: string; state: string; ready: boolean; detectMs: number; lastBeatAgoMs: number | null; beats: number; downs: number; released: number; told: PeerLagTold | null }[];
}

interface PeerRuntime {
  peer: LivenessPeer;
  /** Its addresses from the config, and the IPv6 advert sources its BEATs name. */
  addresses: Set<string>;
  /** What the worker told us of the peer (its detection runs there). */
  mirror: PeerLiveness;
  /** VRRP instances released because this peer was gone. */
  released: number;
  /** Its BEATs say it holds the cluster's state. */
  ready: boolean;
}

export class LivenessService {
  private readonly thread: LivenessStatus['thread'] = { failures: 0, restarts: 0, lastError: null };
  private readonly peers = new Map<string, PeerRuntime>();
  private readonly byAddress = new Map<string, PeerRuntime>();
  private running = false;
  private leaving = false;
  private ready = false;
  /** What our BEATs last said of us: BEHIND (preemption held meanwhile). */
  private behind = false;

  constructor(private readonly deps: LivenessDeps) {
    for (const p of deps.peers) {
      const r: PeerRuntime = { peer: p, addresses: new Set(p.addresses), mirror: initialLiveness(), released: 0, ready: false };
      this.peers.set(p.name, r);
      for (const a of p.addresses) this.byAddress.set(a, r);
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.leaving = false;
    this.deps.channel.start((e) => this.onEvent(e));
    this.sendNow();
  }

  /** Our VRRP state changed: a BEAT now, before the adverts it causes. */
  sendNow(): void {
    if (this.running) this.deps.channel.setOwn(this.deps.vrrp.beatInstances(), this.leaving, this.ready);
  }

  /** Says we hold the cluster's state (sharing: we may carry our buckets), or no longer, in a BEAT now. */
  setReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    this.sendNow();
  }

  /** A release in a peer's name is held: the next BEAT of each peer is reported (the worker reports only news). */
  wantBeat(): void {
    if (this.running) this.deps.channel.wantBeat();
  }

  /** Says we are stopping (our priority-0 adverts are genuine) in a BEAT now, and from then on. */
  announceLeaving(): void {
    this.leaving = true;
    this.ready = false;
    this.sendNow();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.deps.channel.stop();
    this.ownBehind(false, 'liveness stopped');
  }

  private onEvent(e: CoreEvent | { type: 'error'; message: string; restarted?: boolean } | { type: 'own_behind'; behind: boolean; why: string }): void {
    if (e.type === 'error') {
      this.thread.failures++;
      if (e.restarted) this.thread.restarts++;
      this.thread.lastError = e.message;
      this.deps.log.error({ event: 'liveness_failed', err: e.message, restarted: e.restarted === true }, `liveness thread failed: ${e.message}${e.restarted ? '; started again (peers may have seen a gap)' : '; liveness off: peers see this node as gone (restart the daemon)'}`);
      // Nothing says BEHIND any more: no hold on a word no one keeps up to date.
      this.ownBehind(false, 'the liveness thread failed');
      // The new thread's BEATs say what ours said.
      if (e.restarted) this.sendNow();
      return;
    }
    if (e.type === 'own_behind') {
      if (this.running) this.ownBehind(e.behind, e.why);
      return;
    }
    const p = this.peers.get(e.peer);
    if (!p || !this.running) return;
    const now = this.deps.clock.now();
    switch (e.type) {
      case 'beat': {
        const first = p.mirror.beats === 0;
        if (e.leaving !== p.mirror.leaving && p.mirror.state === 'up') this.deps.onPeer?.(p.peer.name, e.leaving ? 'leaving' : 'up');
        p.mirror = { ...p.mirror, state: 'up', lastBeatAtMs: now, detectMs: e.detectMs, previous: p.mirror.instances, instances: e.instances, leaving: e.leaving, beats: p.mirror.beats + 1 };
        this.learnSources(p, e.instances);
        this.deps.vrrp.recheckHeld?.(p.addresses, e.detectMs);
        // A peer that says it is stopping carries nothing from now on: its buckets are
        // taken at once (it keeps them a moment longer, so that none falls between).
        if (e.ready && !e.leaving) {
          if (!p.ready) {
            p.ready = true;
            this.deps.sharing?.peer(p.peer.name, true);
          }
        } else if (p.ready) {
          p.ready = false;
          this.deps.sharing?.peer(p.peer.name, false);
        }
        if (first) this.deps.onHeard?.(p.peer.name);
        break;
      }
      case 'late':
        this.deps.log.info({ event: 'beat_late', peer: p.peer.name, gapMs: e.gapMs, detectMs: e.detectMs, ownLateMs: e.ownLateMs }, `liveness: a BEAT from ${p.peer.name} came ${e.gapMs} ms after the one before (detection ${e.detectMs} ms; our own BEAT timer was ${e.ownLateMs} ms late)`);
        break;
      case 'up':
        p.mirror = { ...p.mirror, state: 'up', sinceMs: now, detectMs: e.detectMs };
        this.deps.log.info({ event: 'peer_live', peer: p.peer.name, detectMs: e.detectMs }, `liveness: ${p.peer.name} is up (detection ${e.detectMs} ms)`);
        this.deps.onPeer?.(p.peer.name, 'up');
        break;
      case 'down': {
        p.mirror = { ...p.mirror, state: 'down', sinceMs: now, downs: p.mirror.downs + 1 };
        if (p.ready) {
          p.ready = false;
          this.deps.sharing?.peer(p.peer.name, false);
        }
        const why = e.why === 'left' ? `${p.peer.name} stopped` : `no liveness BEAT from ${p.peer.name} for ${Math.round(e.silentMs)} ms`;
        const n = this.deps.vrrp.peerGone(p.addresses, why, (vrid, priority) => this.outranked(p, vrid, priority), () => p.mirror.state === 'down');
        p.released += n;
        this.deps.log.warn({ event: 'peer_gone', peer: p.peer.name, why: e.why, silentMs: Math.round(e.silentMs), released: n }, `liveness: ${why}${n ? `: taking over ${n} virtual router(s) it was master of` : ''}`);
        this.deps.onPeer?.(p.peer.name, 'down');
        break;
      }
    }
  }

  /**
   * The link-local addresses the peer's IPv6 adverts leave from, as its BEATs say (the config
   * names none): an IPv6 advert from one of them is judged, and released on its loss, as the
   * peer's. An address another peer claimed before is that peer's no longer.
   */
  private learnSources(p: PeerRuntime, instances: readonly BeatInstance[]): void {
    for (const i of instances) {
      if (i.source === undefined || i.source === '::' || this.byAddress.get(i.source) === p) continue;
      this.byAddress.get(i.source)?.addresses.delete(i.source);
      p.addresses.add(i.source);
      this.byAddress.set(i.source, p);
    }
  }

  /** Is there a live peer other than `gone` that reports a higher priority for this VRID? */
  private outranked(gone: PeerRuntime, vrid: number, priority: number): boolean {
    for (const p of this.peers.values()) {
      if (p === gone || p.mirror.state !== 'up') continue;
      const i = p.mirror.instances.find((x) => x.vrid === vrid);
      if (i && i.state !== 'fault' && i.priority > priority) return true;
    }
    return false;
  }

  /** What the peer at `address` says about this VRID, against an advert in its name ('ok' when it is no fwlb peer). */
  checkAdvert(address: string, vrid: number, priority: number): AdvertCheck {
    const p = this.byAddress.get(address);
    return p ? checkAdvert(p.mirror, vrid, priority, address.includes(':') ? 6 : 4) : 'ok';
  }

  /** Where the state sync tells the BEATs its lag (services/sync-lag.ts), and reads what the peers' BEATs said. */
  get lag(): Pick<LivenessChannel, 'lagSince' | 'writeSince' | 'told'> {
    return this.deps.channel;
  }

  /** Our BEATs say BEHIND, or no longer: logged once per change, and preemption held meanwhile. */
  private ownBehind(behind: boolean, why: string): void {
    if (behind === this.behind) return;
    this.behind = behind;
    if (behind) this.deps.log.warn({ event: 'own_behind', why }, `this node is behind: ${why}; it takes no VIP from a live master until it has caught up`);
    else this.deps.log.info({ event: 'own_caught_up', why }, `this node is no longer behind: ${why}`);
    this.deps.vrrp.setPreemptHold?.(behind, behind ? `this node is behind: ${why}` : `no longer behind: ${why}`, 'behind');
  }

  /** A BEAT of this peer came in this run: whether it is live and ready is known. */
  heard(name: string): boolean {
    for (const p of this.peers.values()) if (p.peer.name === name) return p.mirror.beats > 0;
    return false;
  }

  status(): LivenessStatus {
    const now = this.deps.clock.now();
    return {
      intervalMs: this.deps.intervalMs,
      multiplier: this.deps.multiplier,
      counters: this.deps.channel.counters,
      own: this.deps.channel.ownLag(),
      thread: { ...this.thread },
      peers: [...this.peers.values()].map((p) => {
        // The worker reports only BEATs that say something new; when and how many came is in the channel.
        const seen = this.deps.channel.seen(p.peer.name);
        const lastAt = seen?.lastBeatAtMs ?? p.mirror.lastBeatAtMs;
        return {
          peer: p.peer.name,
          state: p.mirror.state,
          ready: p.ready,
          detectMs: p.mirror.detectMs,
          lastBeatAgoMs: Number.isFinite(lastAt) ? Math.max(0, Math.round(now - lastAt)) : null,
          beats: seen?.beats ?? p.mirror.beats,
          downs: p.mirror.downs,
          released: p.released,
          told: this.deps.channel.told(p.peer.name) ?? null,
        };
      }),
    };
  }
}
