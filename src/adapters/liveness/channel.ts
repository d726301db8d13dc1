/**
 * The daemon's side of the liveness in the timing thread (workers/liveness-role.ts,
 * adapters/timing-thread.ts): starts it, tells it what our BEATs say, ticks the watchdog it
 * reads, and hands its events to the LivenessService. What changes every BEAT (the counters,
 * each peer's last BEAT) is in memory shared with the thread, read when asked; messages
 * carry only news (issue 25: an idle node's main thread woke 300 times a second, two thirds
 * of them for this channel).
 */
import type { BeatInstance } from '../../codec/sync/message.js';
import type { CoreEvent } from '../../fsm/liveness-core.js';
import type { LivenessCounters, PeerLagTold } from '../../ports/liveness.js';
import { readLagField } from '../../codec/sync/message.js';
import type { LivenessReport, LivenessWorkerData } from '../../ports/workers.js';
import { LIVENESS_SHARED as S } from './shared.js';
import { timingThread, type TimingThread } from '../timing-thread.js';
import { libc } from '../libc.js';
import { heartbeat } from '../../lib/heartbeat.js';

export type ChannelEvent = CoreEvent | { type: 'error'; message: string; restarted: boolean } | { type: 'own_behind'; behind: boolean; why: string };

/** A thread that died is started again at once, up to this many times in RESTART_WINDOW_MS; then the liveness stays off. */
const RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

export class LivenessWorker {
  private running = false;
  private untick: (() => void) | undefined;
  private readonly shared: SharedArrayBuffer;
  private readonly slots: BigInt64Array;
  private readonly data: Omit<LivenessWorkerData, 'shared' | 'tickMs'> & { tickMs: number };
  /** The sockets the thread opened: a thread that dies leaves them open, so they are closed here. */
  private fds: number[] = [];
  /** When the thread was started again after a death (the budget: RESTARTS in RESTART_WINDOW_MS). */
  private restarts: number[] = [];
  private report: Omit<Extract<LivenessReport, { type: 'counters' }>, 'type'> = { realtime: false, dropped: {}, timing: { tickLateMaxMs: 0, ticksLate: 0, sendMaxMs: 0, peers: {} } };

  /**
   * The watchdog's tick is a third of `mainStallMs` (never under 10 ms): the worker withholds
   * BEATs once the tick is older than mainStallMs + tickMs, so a main thread held for less
   * than mainStallMs never stops them, as with the 10 ms tick before.
   */
  constructor(
    data: Omit<LivenessWorkerData, 'shared' | 'tickMs'>,
    private readonly thread: TimingThread = timingThread(),
  ) {
    this.data = { ...data, tickMs: Math.max(10, Math.floor(data.mainStallMs / 3)) };
    this.shared = new SharedArrayBuffer(8 * S.size(data.peers.length));
    this.slots = new BigInt64Array(this.shared);
    this.slotOf = new Map(data.peers.map((p, i) => [p.name, S.peer0 + S.PEER_SLOTS * i]));
  }

  start(onEvent: (e: ChannelEvent) => void): void {
    if (this.running) return;
    this.running = true;
    const t = this.slots;
    const stamp = () => Atomics.store(t, S.tick, BigInt(Math.round(performance.timeOrigin + performance.now())));
    stamp();
    // On the main thread's one timer, with the loop-delay samples (lib/heartbeat.ts).
    this.untick = heartbeat().subscribe(this.data.tickMs, stamp);
    this.thread.acquire('liveness', {
      message: (m: CoreEvent | LivenessReport) => {
        if (m.type === 'counters') this.report = { realtime: m.realtime, dropped: m.dropped, timing: m.timing };
        else if (m.type === 'fds') this.fds = m.fds;
        else onEvent(m);
      },
      died: (why) => onEvent({ type: 'error', message: why, restarted: this.restart() }),
    });
    this.thread.post({ role: 'liveness', m: { type: 'start', data: { ...this.data, shared: this.shared } } });
  }

  /**
   * The thread died (a bug): its sockets are closed (the descriptors are the process's, a dead
   * thread leaves them open and bound), and a new thread starts the liveness again, with a new
   * epoch, at once: a peer that saw the gap longer than its detection time took over, and
   * hears us again. Within the budget only; false when it stays off.
   */
  private restart(): boolean {
    for (const fd of this.fds.splice(0)) libc().close(fd);
    if (!this.running) return false;
    const now = performance.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restarts.length >= RESTARTS) return false;
    this.restarts.push(now);
    // The failpoint that killed the first thread lets the next ones live.
    const { dieAfterRounds: _, ...data } = this.data;
    this.thread.post({ role: 'liveness', m: { type: 'start', data: { ...data, shared: this.shared } } });
    return true;
  }

  get counters(): LivenessCounters {
    const n = (i: number) => Number(Atomics.load(this.slots, i));
    return { ...this.report, sent: n(S.sent), received: n(S.received), withheld: n(S.withheld) };
  }

  /** Each peer's first slot, by name. */
  private readonly slotOf: Map<string, number>;

  seen(peer: string): { lastBeatAtMs: number; beats: number } | undefined {
    const at = this.slotOf.get(peer);
    if (at === undefined) return undefined;
    const beats = Number(Atomics.load(this.slots, at + 1));
    return beats > 0 ? { lastBeatAtMs: Number(Atomics.load(this.slots, at)), beats } : undefined;
  }

  lagSince(peer: string, atMs: number | undefined): void {
    const at = this.slotOf.get(peer);
    if (at !== undefined) Atomics.store(this.slots, at + 2, BigInt(Math.round(atMs ?? 0)));
  }

  writeSince(atMs: number | undefined): void {
    Atomics.store(this.slots, S.writeSince, BigInt(Math.round(atMs ?? 0)));
  }

  told(peer: string): PeerLagTold | undefined {
    const at = this.slotOf.get(peer);
    const v = at === undefined ? 0 : Number(Atomics.load(this.slots, at + 3));
    return v & S.TOLD ? readLagField(v) : undefined;
  }

  ownLag(): { behind: boolean; writing: boolean } {
    const f = readLagField(Number(Atomics.load(this.slots, S.ownFlags)));
    return { behind: f.behind, writing: f.writing };
  }

  setOwn(instances: BeatInstance[], leaving: boolean, ready = false): void {
    if (this.running) this.thread.post({ role: 'liveness', m: { type: 'own', instances, leaving, ready } });
  }

  wantBeat(): void {
    if (this.running) this.thread.post({ role: 'liveness', m: { type: 'want' } });
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.untick?.();
    this.untick = undefined;
    // It closes its sockets; the thread ends with the last of its roles.
    if (this.thread.running) this.thread.post({ role: 'liveness', m: { type: 'stop' } });
    this.thread.release('liveness');
  }
}
