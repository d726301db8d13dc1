/**
 * The daemon's side of the master's adverts in the timing thread (workers/advert-role.ts,
 * adapters/timing-thread.ts): started with the thread, handed a duplicate of each raw VRRP
 * socket, told what to advertise. Its counters say whether the thread runs under SCHED_RR
 * and how late its sends fired.
 */
import { FwlbError } from '../../lib/errors.js';
import { errnoName, libc } from '../libc.js';
import type { AdvertTiming } from '../../fsm/vrrp/advert-schedule.js';
import type { AdvertWorkerMessage } from '../../ports/workers.js';
import { timingThread, type TimingThread } from '../timing-thread.js';

export interface AdvertiserCounters extends AdvertTiming {
  realtime: boolean;
  lastError: string;
}

export class Advertiser {
  counters: AdvertiserCounters | undefined;
  private started = false;

  constructor(private readonly thread: TimingThread = timingThread()) {}

  /** Starts the thread now (it takes tens of milliseconds to load: not at a takeover). */
  start(): void {
    if (this.started) return;
    this.started = true;
    // A dead thread: the daemon's machine renews into the void and its backups take over after
    // Master_Down_Interval, as from a hung master. The next message starts it again.
    this.thread.acquire('advert', { message: (m) => (this.counters = m.counters), died: () => undefined });
  }

  private post(m: AdvertWorkerMessage): void {
    this.start();
    this.thread.post({ role: 'advert', m });
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
    if (this.started && this.thread.running) this.thread.post({ role: 'advert', m: { type: 'stop', prefix } });
  }

  /** Stops what goes through `fd` and closes it (in the thread, after its last send). */
  release(fd: number): void {
    if (this.started && this.thread.running) this.thread.post({ role: 'advert', m: { type: 'close_fd', fd } });
    else libc().close(fd);
  }

  close(): void {
    if (!this.started) return;
    this.started = false;
    if (this.thread.running) this.thread.post({ role: 'advert', m: { type: 'close' } });
    this.thread.release('advert');
  }
}
