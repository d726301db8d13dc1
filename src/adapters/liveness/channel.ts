/**
 * The daemon's side of the liveness worker (worker.ts): starts it, tells it what our BEATs
 * say, ticks the watchdog it reads, and hands its events to the LivenessService.
 */
import { Worker } from 'node:worker_threads';
import type { BeatInstance } from '../../codec/sync/message.js';
import type { CoreEvent } from '../../fsm/liveness-core.js';
import type { LivenessCounters } from '../../ports/liveness.js';
import type { LivenessWorkerData } from '../../ports/workers.js';

const WORKER_URL = new URL('../../workers/liveness.js', import.meta.url);
const TICK_MS = 10;

export type ChannelEvent = CoreEvent | { type: 'error'; message: string };

export class LivenessWorker {
  private worker: Worker | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private readonly tick = new SharedArrayBuffer(8);
  counters: LivenessCounters = { sent: 0, received: 0, withheld: 0, dropped: {} };

  constructor(private readonly data: Omit<LivenessWorkerData, 'tick'>) {}

  start(onEvent: (e: ChannelEvent) => void): void {
    if (this.worker) return;
    const t = new BigInt64Array(this.tick);
    const stamp = () => Atomics.store(t, 0, BigInt(Math.round(performance.timeOrigin + performance.now())));
    stamp();
    this.tickTimer = setInterval(stamp, TICK_MS);
    this.tickTimer.unref();
    const w = new Worker(WORKER_URL, { workerData: { ...this.data, tick: this.tick } satisfies LivenessWorkerData });
    w.unref();
    w.on('message', (m: CoreEvent | { type: 'counters'; counters: LivenessCounters }) => {
      if (m.type === 'counters') this.counters = m.counters;
      else onEvent(m);
    });
    w.on('error', (e) => onEvent({ type: 'error', message: e.message }));
    this.worker = w;
  }

  setOwn(instances: BeatInstance[], leaving: boolean, ready = false): void {
    this.worker?.postMessage({ type: 'own', instances, leaving, ready });
  }

  stop(): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.worker?.postMessage({ type: 'stop' });
    const w = this.worker;
    this.worker = undefined;
    // It closes its socket and ends; a worker that does not is ended.
    if (w) setTimeout(() => void w.terminate(), 500).unref();
  }
}
