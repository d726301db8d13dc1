/**
 * The daemon's side of the flow-counting worker (worker.ts): `serviceFlows` for the load
 * balancer's status, answered off the event loop. One worker thread, started on first use,
 * one request at a time; callers that ask while a count runs share the next one. A worker
 * that dies is started again on the next request; one not asked for IDLE_MS is ended (a
 * thread with a V8 heap of its own: ~10 MiB resident for a status read now and then).
 */
import { Worker } from 'node:worker_threads';

import type { FlowSummary, ServiceKey } from '../../ports/conntrack.js';
import type { FlowAnswer, FlowRequest } from '../../ports/workers.js';

const WORKER_URL = new URL('../../workers/flows.js', import.meta.url);
/** A count taking longer than this fails (the worker is replaced). */
const TIMEOUT_MS = 30_000;
/** A worker not asked for this long is ended (the next request starts one: ~30 ms). */
const IDLE_MS = 30_000;

export class FlowCounter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (a: FlowAnswer) => void; timer: NodeJS.Timeout }>();
  private idleTimer: NodeJS.Timeout | undefined;

  /** Ends the worker once IDLE_MS pass with no request (from its last answer). */
  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.pending.size > 0 || !this.worker) return;
      const w = this.worker;
      this.worker = undefined;
      void w.terminate();
    }, IDLE_MS);
    this.idleTimer.unref();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_URL);
    w.unref();
    w.on('message', (a: FlowAnswer) => {
      const p = this.pending.get(a.id);
      if (!p) return;
      this.pending.delete(a.id);
      clearTimeout(p.timer);
      p.resolve(a);
      if (this.pending.size === 0) this.armIdle();
    });
    const fail = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.resolve({ id, ok: false, error: why });
      }
      this.pending.clear();
    };
    w.on('error', (e) => fail(`flow counter: ${e.message}`));
    w.on('exit', (code) => fail(`flow counter exited (${code})`));
    this.worker = w;
    return w;
  }

  /** Flows per backend of each service, in the order given. Rejects when the kernel or the worker fails. */
  async count(services: readonly ServiceKey[]): Promise<FlowSummary[]> {
    const w = this.start();
    const id = this.nextId++;
    const answer = await new Promise<FlowAnswer>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ id, ok: false, error: `flow count took more than ${TIMEOUT_MS} ms` });
        void w.terminate();
      }, TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve, timer });
      const req: FlowRequest = { id, services: services.map((s) => ({ ...s })) };
      w.postMessage(req);
    });
    if (!answer.ok) throw new Error(answer.error);
    return answer.summaries.map((entries) => ({ byBackend: new Map(entries) }));
  }

  private batch: Array<{ s: ServiceKey; resolve: (f: FlowSummary) => void; reject: (e: Error) => void }> = [];

  /**
   * One service's flows. The services asked for in one turn of the event loop are counted in
   * one request (the balancer asks for all of them at once).
   */
  serviceFlows(s: ServiceKey): Promise<FlowSummary> {
    return new Promise((resolve, reject) => {
      this.batch.push({ s, resolve, reject });
      if (this.batch.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const b = this.batch;
    this.batch = [];
    try {
      const out = await this.count(b.map((x) => x.s));
      b.forEach((x, i) => x.resolve(out[i] as FlowSummary));
    } catch (e) {
      for (const x of b) x.reject(e as Error);
    }
  }

  close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    void this.worker?.terminate();
    this.worker = undefined;
  }
}
