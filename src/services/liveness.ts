/**
 * Fast, authenticated liveness between fwlb nodes (issue 13): a BEAT to every peer each
 * `intervalMs` over the state sync's link (HMAC, epochs and replay window of the sync
 * protocol), and a peer not heard for its interval x multiplier is gone (fsm/liveness.ts).
 * A peer that is gone releases its mastership here, as carrier loss on a sync cable does:
 * the VRRP instances whose master it was take over at once when no live peer outranks them
 * (services/vrrp.ts, peerGone), without waiting for Master_Down_Interval. Behind a switch,
 * where no carrier is lost, that is the difference between ~3.6 advert intervals and the
 * detection time.
 *
 * Never crying wolf: a detection timer that fires reads the socket first (BEATs that arrived
 * while the event loop was held up count), and a peer that is alive but unheard on the sync
 * link (the link broken, its adverts still heard) is released once per down transition: its
 * next advert outranks us and puts us back to backup within one advert interval.
 */
import type { Logger } from 'pino';
import type { Clock, Timer } from '../lib/clock.js';
import { TimerDriver } from '../lib/timers.js';
import type { BeatInstance, SyncBeatMessage } from '../codec/sync/message.js';
import { checkAdvert, initialLiveness, stepLiveness, type AdvertCheck, type PeerLiveness } from '../fsm/liveness.js';

export interface LivenessPeer {
  name: string;
  /** Every address of the peer (all interfaces): the sources of its adverts. */
  addresses: readonly string[];
}

export interface LivenessDeps {
  clock: Clock;
  log: Logger;
  intervalMs: number;
  multiplier: number;
  peers: readonly LivenessPeer[];
  /** Sends a BEAT to every peer with a session (StateSyncService.beat), and reads the socket now (readSocket). */
  sync: { beat(body: { intervalMs: number; multiplier: number; leaving: boolean; instances: BeatInstance[] }): void; readSocket(): void };
  vrrp: {
    beatInstances(): BeatInstance[];
    peerGone(addresses: ReadonlySet<string>, why: string, outranked: (vrid: number, priority: number) => boolean): number;
    /** A BEAT of the peer at these addresses came: releases held in its name are decided. */
    recheckHeld?(addresses: ReadonlySet<string>, maxAgeMs: number): void;
  };
}

export interface LivenessStatus {
  intervalMs: number;
  multiplier: number;
  peers: { peer: string; state: string; detectMs: number; lastBeatAgoMs: number | null; beats: number; downs: number; released: number }[];
}

interface PeerRuntime {
  peer: LivenessPeer;
  addresses: ReadonlySet<string>;
  state: PeerLiveness;
  /** VRRP instances released because this peer was gone. */
  released: number;
}

export class LivenessService {
  private readonly peers = new Map<string, PeerRuntime>();
  private readonly byAddress = new Map<string, PeerRuntime>();
  private readonly timers: TimerDriver;
  private beatTimer: Timer | undefined;
  private running = false;
  private leaving = false;

  constructor(private readonly deps: LivenessDeps) {
    this.timers = new TimerDriver(deps.clock);
    for (const p of deps.peers) {
      const r: PeerRuntime = { peer: p, addresses: new Set(p.addresses), state: initialLiveness(), released: 0 };
      this.peers.set(p.name, r);
      for (const a of p.addresses) this.byAddress.set(a, r);
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.leaving = false;
    this.tick();
  }

  /** Says we are stopping (our priority-0 adverts are genuine) in a BEAT now, and from then on. */
  announceLeaving(): void {
    this.leaving = true;
    if (this.running) this.send();
  }

  stop(): void {
    this.running = false;
    this.beatTimer?.cancel();
    this.beatTimer = undefined;
    for (const p of this.peers.values()) this.timers.cancel(`${p.peer.name}/detect`);
  }

  /** A BEAT now, out of turn: our VRRP state changed (the adverts it causes come after it). */
  sendNow(): void {
    if (this.running) this.send();
  }

  private send(): void {
    this.deps.sync.beat({ intervalMs: this.deps.intervalMs, multiplier: this.deps.multiplier, leaving: this.leaving, instances: this.deps.vrrp.beatInstances() });
  }

  private tick(): void {
    if (!this.running) return;
    this.send();
    this.beatTimer = this.deps.clock.after(this.deps.intervalMs, () => this.tick());
  }

  /** A peer's BEAT (from the state sync, authenticated and fresh). */
  onBeat(peerName: string, b: SyncBeatMessage): void {
    const p = this.peers.get(peerName);
    if (!p || !this.running) return;
    this.step(p, { type: 'beat', intervalMs: b.intervalMs, multiplier: b.multiplier, leaving: b.leaving, instances: b.instances });
    this.deps.vrrp.recheckHeld?.(p.addresses, p.state.detectMs);
  }

  private step(p: PeerRuntime, e: Parameters<typeof stepLiveness>[1]): void {
    const r = stepLiveness(p.state, e, this.deps.clock.now());
    p.state = r.state;
    for (const fx of r.effects) {
      switch (fx.type) {
        case 'arm':
          this.timers.at(`${p.peer.name}/detect`, fx.atMs, () => this.detect(p));
          break;
        case 'up':
          this.deps.log.info({ event: 'peer_live', peer: p.peer.name, detectMs: p.state.detectMs }, `liveness: ${p.peer.name} is up (detection ${p.state.detectMs} ms)`);
          break;
        case 'down': {
          const why = fx.why === 'left' ? `${p.peer.name} stopped` : `no liveness BEAT from ${p.peer.name} for ${Math.round(fx.silentMs)} ms`;
          const n = this.deps.vrrp.peerGone(p.addresses, why, (vrid, priority) => this.outranked(p, vrid, priority));
          p.released += n;
          this.deps.log.warn({ event: 'peer_gone', peer: p.peer.name, why: fx.why, silentMs: Math.round(fx.silentMs), released: n }, `liveness: ${why}${n ? `: taking over ${n} virtual router(s) it was master of` : ''}`);
          break;
        }
      }
    }
  }

  private detect(p: PeerRuntime): void {
    if (!this.running) return;
    // BEATs that came while the loop was held up are in the socket: read them first.
    this.deps.sync.readSocket();
    this.step(p, { type: 'detect' });
  }

  /** Is there a live peer other than `gone` that reports a higher priority for this VRID? */
  private outranked(gone: PeerRuntime, vrid: number, priority: number): boolean {
    for (const p of this.peers.values()) {
      if (p === gone || p.state.state !== 'up') continue;
      const i = p.state.instances.find((x) => x.vrid === vrid);
      if (i && i.state !== 'fault' && i.priority > priority) return true;
    }
    return false;
  }

  /** What the peer at `address` says about this VRID, against an advert in its name ('ok' when it is no fwlb peer). */
  checkAdvert(address: string, vrid: number, priority: number): AdvertCheck {
    const p = this.byAddress.get(address);
    return p ? checkAdvert(p.state, vrid, priority) : 'ok';
  }

  status(): LivenessStatus {
    const now = this.deps.clock.now();
    return {
      intervalMs: this.deps.intervalMs,
      multiplier: this.deps.multiplier,
      peers: [...this.peers.values()].map((p) => ({
        peer: p.peer.name,
        state: p.state.state,
        detectMs: p.state.detectMs,
        lastBeatAgoMs: Number.isFinite(p.state.lastBeatAtMs) ? Math.round(now - p.state.lastBeatAtMs) : null,
        beats: p.state.beats,
        downs: p.state.downs,
        released: p.released,
      })),
    };
  }
}
