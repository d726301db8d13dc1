/**
 * The daemon's side of the advert thread (advert-worker.ts): started on first use, handed a
 * duplicate of each raw VRRP socket, told what to advertise. Its counters say whether it
 * runs under SCHED_RR and how late its sends fired.
 */
import { Worker } from 'node:worker_threads';
import { FwlbError } from '../../lib/errors.js';
import { errnoName, libc } from '../libc.js';
import type { AdvertTiming } from '../../fsm/vrrp/advert-schedule.js';
import type { AdvertWorkerData, AdvertWorkerMessage } from '../../ports/workers.js';

const WORKER_URL = new URL('../../workers/advert.js', import.meta.url);

export interface AdvertiserCounters extends AdvertTiming {
  realtime: boolean;
  lastError: string;
}

export class Advertiser {
  private worker: Worker | undefined;
  counters: AdvertiserCounters | undefined;

  constructor(private readonly data: AdvertWorkerData = { realtimePriority: 10 }) {}

  /** Starts the thread now (it takes tens of milliseconds to load: not at a takeover). */
  start(): void {
    if (!this.worker) this.spawn();
  }

  private post(m: AdvertWorkerMessage): void {
    if (!this.worker) this.spawn();
    this.worker!.postMessage(m);
  }

  private spawn(): void {
    const w = new Worker(WORKER_URL, { workerData: this.data });
    w.unref();
    w.on('message', (x: { type: 'counters'; counters: AdvertiserCounters }) => {
      if (x.type === 'counters') this.counters = x.counters;
    });
    w.on('error', () => {
      // A dead advert thread: the daemon's machine renews into the void and its backups take
      // over after Master_Down_Interval, as from a hung master. Started again on next use.
      if (this.worker === w) this.worker = undefined;
    });
    this.worker = w;
  }

  /** A descriptor of `fd`'s socket for the advert thread (it closes it: `release`). */
  adopt(fd: number): number {
    const dup = libc().dup(fd);
    if (dup < 0) throw new FwlbError('ERR_SOCKET', `dup of the VRRP socket: ${errnoName()}`);
    return dup;
  }

  set(key: string, fd: number, payload: Buffer, dst: string, intervalMs: number, leaseMs: number, sentAtMs?: number): void {
    this.post({ type: 'set', key, fd, payload: Uint8Array.from(payload), dst, intervalMs, leaseMs, ...(sentAtMs === undefined ? {} : { sentAtMs }) });
  }

  stop(prefix: string): void {
    if (this.worker) this.worker.postMessage({ type: 'stop', prefix } satisfies AdvertWorkerMessage);
  }

  /** Stops what goes through `fd` and closes it (in the thread, after its last send). */
  release(fd: number): void {
    if (this.worker) this.worker.postMessage({ type: 'close_fd', fd } satisfies AdvertWorkerMessage);
    else libc().close(fd);
  }

  close(): void {
    const w = this.worker;
    this.worker = undefined;
    if (!w) return;
    w.postMessage({ type: 'close' } satisfies AdvertWorkerMessage);
    setTimeout(() => void w.terminate(), 500).unref();
  }
}
