/**
 * A config applied to a node's parts whole or not at all (issue 21). Every part prepares
 * first (everything that can fail, nothing of the running config touched); the first that
 * cannot take the config refuses it, and the plans already made are discarded. Then the parts
 * commit in order. A commit that fails part-way (the parts before it already changed, the
 * failing one perhaps half) puts back the running config: the parts it reached, the failing
 * one included, are prepared again with the running config and committed, last first; the
 * plans not reached are discarded. The error names the part that failed, why, and what was
 * put back (or could not be).
 */
import { ConfigError } from '../config/issues.js';
import { FwlbError } from '../lib/errors.js';
import type { NodeConfig, Prepared, Subsystem } from '../ports/subsystem.js';

/** A part whose plan is ready to commit. */
export type Ready = { part: Subsystem; prepared: Prepared<unknown> };

/** Where each step's time goes (`ruleset.prepare`, `vrrp.commit`, ... in ms): the reload's log line says it. */
export interface StepTimes {
  now: () => number;
  ms: Record<string, number>;
}

async function timed<T>(t: StepTimes | undefined, step: string, f: () => Promise<T>): Promise<T> {
  if (!t) return f();
  const t0 = t.now();
  try {
    return await f();
  } finally {
    t.ms[step] = Math.round(t.now() - t0);
  }
}

/**
 * Every part prepared, in order; the first that cannot take the config refuses it whole
 * (the plans already made are discarded): its error names the part, except a config error,
 * which names the key and line already.
 */
export async function prepareAll(cfg: NodeConfig, parts: readonly Subsystem[], times?: StepTimes): Promise<Ready[]> {
  const ready: Ready[] = [];
  for (const part of parts) {
    try {
      ready.push({ part, prepared: await timed(times, `${part.name}.prepare`, () => part.prepare(cfg)) });
    } catch (e) {
      for (const r of ready) r.part.discard?.(r.prepared.plan);
      if (e instanceof ConfigError) throw e;
      throw new FwlbError('ERR_PREPARE', `${part.name}: ${(e as Error).message}`);
    }
  }
  return ready;
}

/**
 * The prepared parts that change something (and `always`, whatever it says) committed in
 * order. `running`: the config to put back when a commit fails (none at start: nothing runs
 * yet to go back to).
 */
export async function commitAll(ready: readonly Ready[], o: { always?: Subsystem; running?: NodeConfig; times?: StepTimes } = {}): Promise<void> {
  const reached: Subsystem[] = [];
  for (let i = 0; i < ready.length; i++) {
    const r = ready[i]!;
    if (!r.prepared.changed && r.part !== o.always) continue;
    reached.push(r.part);
    try {
      await timed(o.times, `${r.part.name}.commit`, () => r.part.commit(r.prepared.plan));
    } catch (e) {
      for (const later of ready.slice(i + 1)) later.part.discard?.(later.prepared.plan);
      const back = o.running ? await putBack([...reached].reverse(), o.running) : '';
      throw new FwlbError('ERR_COMMIT', `${r.part.name}: ${(e as Error).message}${back}`);
    }
  }
}

/** The parts prepared with the running config and committed again; what it did, as the error's tail. */
async function putBack(parts: readonly Subsystem[], running: NodeConfig): Promise<string> {
  const ok: string[] = [];
  const failed: string[] = [];
  for (const part of parts) {
    try {
      const p = await part.prepare(running);
      await part.commit(p.plan);
      ok.push(part.name);
    } catch (e) {
      failed.push(`${part.name} (${(e as Error).message})`);
    }
  }
  return `; the running config was put back${ok.length ? ` (${ok.join(', ')})` : ''}${failed.length ? `, except: ${failed.join('; ')}: the node runs part of the new config there` : ''}`;
}
