/**
 * The daemon's side of the timing thread (workers/timing.ts): one per process, started by
 * the first role that needs it (the advertiser, when VRRP's sockets are set up), ended when
 * the last role lets go. A thread that dies is started again by the next message; each role
 * hears of the death (the liveness does not come back with it: its sockets went with the
 * thread's state, and its service says so).
 */
import { Worker } from 'node:worker_threads';
import type { TimingIn, TimingOut, TimingWorkerData } from '../ports/workers.js';

const WORKER_URL = new URL('../workers/timing.js', import.meta.url);

type Role = TimingOut['role'];
type RoleOut<R extends Role> = Extract<TimingOut, { role: R }>['m'];
interface RoleListener<R extends Role> {
  message(m: RoleOut<R>): void;
  died(why: string): void;
}

export class TimingThread {
  private worker: Worker | undefined;
  private readonly roles = new Map<Role, RoleListener<Role>>();

  constructor(private readonly data: TimingWorkerData = { realtimePriority: 10 }) {}

  /** The role uses the thread from now on (started now if it does not run: it takes tens of ms to load). */
  acquire<R extends Role>(role: R, on: RoleListener<R>): void {
    this.roles.set(role, on as unknown as RoleListener<Role>);
    this.ensure();
  }

  post(m: TimingIn): void {
    this.ensure().postMessage(m);
  }

  /** Whether the thread runs (a message to a dead one starts it again). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** The role is done with the thread; the last one ends it. */
  release(role: Role): void {
    this.roles.delete(role);
    if (this.roles.size > 0 || !this.worker) return;
    const w = this.worker;
    this.worker = undefined;
    w.postMessage({ role: 'exit' } satisfies TimingIn);
    // It closes its sockets and ends; a thread that does not is ended.
    setTimeout(() => void w.terminate(), 500).unref();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_URL, { workerData: this.data });
    w.unref();
    w.on('message', (x: TimingOut) => this.roles.get(x.role)?.message(x.m));
    w.on('error', (e) => {
      if (this.worker === w) this.worker = undefined;
      for (const r of this.roles.values()) r.died(e.message);
    });
    this.worker = w;
    return w;
  }
}

let shared: TimingThread | undefined;

/** The process's timing thread (one for the adverts and the liveness). */
export function timingThread(): TimingThread {
  return (shared ??= new TimingThread());
}
