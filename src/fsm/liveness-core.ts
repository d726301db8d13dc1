/**
 * The timing half of the liveness (issue 13): sends our BEAT to every peer each interval and
 * runs the detection of each peer (fsm/liveness.ts). It runs in a worker thread of its own
 * (workers/liveness-role.ts), so that neither the daemon's work (a sync burst, a bulk
 * sync, status, garbage collection) nor a held-up event loop delays a BEAT or fakes a
 * silence: a saturated machine delayed the main loop by up to 93 ms in the soak, more than a
 * 75 ms detection time. Clock-driven and free of I/O (the worker gives it a socket's send and
 * read), so it is tested on a fake clock.
 *
 * Silence we slept through is not silence: when this thread was held (its timers fired late:
 * a paused VM, a starved CPU), the peers' threads most likely were too, and a detection
 * counts only the silence outside our own holds (a real death is then seen that much later).
 *
 * A watchdog ties the BEATs to the daemon: when the main thread has not ticked for
 * `mainStallMs` (it is hung), no BEAT goes out, and the peers take over as from a dead node.
 *
 * The main thread mirrors what each peer says, not each BEAT (issue 25: a BEAT every 15 ms
 * handed across threads woke it 67 times a second per peer for nothing new): a BEAT is
 * handed on when it says something new (its instances, leaving, ready, the detection time),
 * the BEAT after such a change (so that the mirror's "previous" catches up, as the advert
 * check expects), the first after the peer came back, and any BEAT main asked for (`want`:
 * a release it holds is decided by the peer's next BEAT). When and how many BEATs came is
 * in `peerState` for whoever reads it.
 */
import type { Clock, Timer } from '../lib/clock.js';
import { TimerDriver } from '../lib/timers.js';
import type { BeatInstance } from '../codec/sync/message.js';
import { initialLiveness, stepLiveness, type PeerLiveness } from './liveness.js';

export interface BeatBody {
  intervalMs: number;
  multiplier: number;
  leaving: boolean;
  /** We hold the cluster's state (sharing: we may carry our buckets). */
  ready?: boolean;
  instances: BeatInstance[];
}

export type CoreEvent =
  | { type: 'up'; peer: string; detectMs: number }
  | { type: 'down'; peer: string; why: 'left' | 'silent'; silentMs: number }
  /** A peer's BEAT: what it says of its instances (for the advert check on the main thread). */
  | { type: 'beat'; peer: string; leaving: boolean; ready: boolean; instances: BeatInstance[]; detectMs: number }
  /**
   * A BEAT came after a silence of more than half the peer's detection time (a near miss):
   * `ownLateMs` is how late our own BEAT timer fired last (this thread held up, not the peer).
   */
  | { type: 'late'; peer: string; gapMs: number; detectMs: number; ownLateMs: number };

/** How regular the BEATs are: ours leaving, the peers' arriving. */
export interface LivenessTiming {
  /** The latest our BEAT timer ever fired past its due time (ms), and how often by more than an interval. */
  tickLateMaxMs: number;
  ticksLate: number;
  /** The longest our sending of one round of BEATs took (ms): the kernel's work done in the send call counts. */
  sendMaxMs: number;
  /** Per peer: the longest time between two of its BEATs, and how often it exceeded two intervals. */
  peers: Record<string, { gapMaxMs: number; gapsOver2x: number }>;
  /** Detections put off because the silence fell in a hold of this thread. */
  deferred?: number;
}

export interface LivenessCoreDeps {
  clock: Clock;
  intervalMs: number;
  multiplier: number;
  peers: readonly string[];
  send(peer: string, body: BeatBody): void;
  /** Reads the socket now (BEATs that came while this thread was held up count). */
  readSocket(): void;
  emit(e: CoreEvent): void;
  /** The main thread ticked recently (the daemon is not hung). */
  mainAlive(): boolean;
}

export class LivenessCore {
  private readonly state = new Map<string, PeerLiveness>();
  private readonly timers: TimerDriver;
  private beatTimer: Timer | undefined;
  private running = false;
  private own: { instances: BeatInstance[]; leaving: boolean; ready: boolean } = { instances: [], leaving: false, ready: false };
  /** BEATs not sent because the main thread was hung. */
  withheld = 0;
  readonly timing: LivenessTiming = { tickLateMaxMs: 0, ticksLate: 0, sendMaxMs: 0, peers: {}, deferred: 0 };
  /** Recent holds of this thread (a timer that fired more than an interval late): when it woke, and for how long. */
  private holds: { atMs: number; ms: number }[] = [];
  private lastRanAtMs: number | undefined;
  private dueAtMs = 0;
  private lastLateMs = 0;
  /** Per peer: what its last BEAT said (beatKey), and whether that BEAT was handed on as a change. */
  private readonly said = new Map<string, { key: string; changed: boolean }>();
  /** Peers whose next BEAT is handed on whatever it says (want). */
  private readonly wanted = new Set<string>();

  constructor(private readonly deps: LivenessCoreDeps) {
    this.timers = new TimerDriver(deps.clock);
    for (const p of deps.peers) {
      this.state.set(p, initialLiveness());
      this.timing.peers[p] = { gapMaxMs: 0, gapsOver2x: 0 };
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  stop(): void {
    this.running = false;
    this.beatTimer?.cancel();
    this.beatTimer = undefined;
    for (const p of this.deps.peers) this.timers.cancel(p);
  }

  /** What our BEATs say from now on; sent at once (a change goes out before the adverts it causes). */
  setOwn(instances: BeatInstance[], leaving: boolean, ready = false): void {
    this.own = { instances, leaving, ready };
    if (this.running) this.sendAll();
  }

  /** The next BEAT of every peer is handed on, whatever it says (a held release waits for it). */
  want(): void {
    for (const p of this.deps.peers) this.wanted.add(p);
  }

  private sendAll(): void {
    if (!this.deps.mainAlive()) {
      this.withheld++;
      return;
    }
    const body: BeatBody = { intervalMs: this.deps.intervalMs, multiplier: this.deps.multiplier, ...this.own };
    for (const p of this.deps.peers) this.deps.send(p, body);
  }

  private tick(): void {
    if (!this.running) return;
    const now = this.deps.clock.now();
    if (this.dueAtMs > 0) {
      const late = Math.max(0, now - this.dueAtMs);
      this.lastLateMs = late;
      if (late > this.timing.tickLateMaxMs) this.timing.tickLateMaxMs = Math.round(late * 10) / 10;
      if (late > this.deps.intervalMs) this.timing.ticksLate++;
    }
    this.woke(now);
    this.sendAll();
    const took = this.deps.clock.now() - now;
    if (took > this.timing.sendMaxMs) this.timing.sendMaxMs = Math.round(took * 10) / 10;
    this.dueAtMs = now + this.deps.intervalMs;
    this.beatTimer = this.deps.clock.after(this.deps.intervalMs, () => this.tick());
  }

  /** An authenticated, fresh BEAT of a peer. */
  onBeat(peer: string, b: { intervalMs: number; multiplier: number; leaving: boolean; ready?: boolean; instances: BeatInstance[] }): void {
    const s = this.state.get(peer);
    if (!s || !this.running) return;
    const at = this.deps.clock.now();
    this.woke(at);
    if (s.state === 'up') {
      const gap = at - s.lastBeatAtMs;
      const t = this.timing.peers[peer]!;
      if (gap > t.gapMaxMs) t.gapMaxMs = Math.round(gap * 10) / 10;
      if (gap > 2 * b.intervalMs) t.gapsOver2x++;
      if (gap > s.detectMs / 2) this.deps.emit({ type: 'late', peer, gapMs: Math.round(gap), detectMs: s.detectMs, ownLateMs: Math.round(this.lastLateMs) });
    }
    this.step(peer, s, { type: 'beat', ...b });
    const now = this.state.get(peer)!;
    const key = beatKey(b, now.detectMs);
    const last = this.said.get(peer);
    const wanted = this.wanted.delete(peer);
    const changed = last?.key !== key;
    this.said.set(peer, { key, changed });
    if (changed || last?.changed === true || wanted) this.deps.emit({ type: 'beat', peer, leaving: b.leaving, ready: b.ready === true, instances: b.instances, detectMs: now.detectMs });
  }

  private step(peer: string, s: PeerLiveness, e: Parameters<typeof stepLiveness>[1]): void {
    const r = stepLiveness(s, e, this.deps.clock.now());
    this.state.set(peer, r.state);
    for (const fx of r.effects) {
      if (fx.type === 'arm') this.timers.at(peer, fx.atMs, () => this.detect(peer));
      else if (fx.type === 'up') this.deps.emit({ type: 'up', peer, detectMs: r.state.detectMs });
      else {
        // Its first BEAT when it comes back is news, whatever it says.
        this.said.delete(peer);
        this.deps.emit({ type: 'down', peer, why: fx.why, silentMs: fx.silentMs });
      }
    }
  }

  /**
   * This thread runs now: if it ran last more than two intervals ago (it has a timer every
   * interval), it was held for the time beyond one interval.
   */
  private woke(now: number): void {
    if (this.lastRanAtMs !== undefined && now - this.lastRanAtMs > 2 * this.deps.intervalMs) {
      this.holds.push({ atMs: now, ms: now - this.lastRanAtMs - this.deps.intervalMs });
      if (this.holds.length > 16) this.holds.shift();
    }
    this.lastRanAtMs = now;
  }

  private detect(peer: string): void {
    if (!this.running) return;
    this.deps.readSocket();
    const now = this.deps.clock.now();
    this.woke(now);
    const s = this.state.get(peer)!;
    if (s.state === 'up') {
      // Our holds since the peer's last BEAT do not count as its silence.
      const held = this.holds.filter((h) => h.atMs > s.lastBeatAtMs).reduce((n, h) => n + h.ms, 0);
      const silent = now - s.lastBeatAtMs - held;
      if (held > 0 && silent < s.detectMs) {
        this.timing.deferred = (this.timing.deferred ?? 0) + 1;
        const at = now + (s.detectMs - silent);
        this.timers.at(peer, at, () => this.detect(peer));
        return;
      }
    }
    this.step(peer, s, { type: 'detect' });
  }

  peerState(peer: string): PeerLiveness | undefined {
    return this.state.get(peer);
  }
}

/** What a BEAT says, as a string to compare with the one before. */
function beatKey(b: { leaving: boolean; ready?: boolean; instances: readonly BeatInstance[] }, detectMs: number): string {
  let k = `${b.leaving ? 1 : 0}${b.ready ? 1 : 0}/${detectMs}`;
  for (const i of b.instances) k += `/${i.vrid},${i.state},${i.priority},${i.source ?? ''}`;
  return k;
}
