import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commitAll, prepareAll, type StepTimes } from './whole-apply.js';
import type { NodeConfig, Prepared, Subsystem } from '../ports/subsystem.js';

/** A config as the fakes see it: only its name matters. */
const cfg = (name: string) => ({ loaded: { file: name } }) as unknown as NodeConfig;
const nameOf = (c: NodeConfig) => (c.loaded as unknown as { file: string }).file;

/** A part that records what it does: what it runs, and every prepare, commit and discard. */
class FakePart implements Subsystem<string> {
  runs = 'old';
  readonly log: string[] = [];
  constructor(
    readonly name: string,
    private readonly fail: { prepare?: string; commit?: string } = {},
  ) {}
  async prepare(next: NodeConfig): Promise<Prepared<string>> {
    const n = nameOf(next);
    this.log.push(`prepare ${n}`);
    if (this.fail.prepare === n) throw new Error(`${this.name} cannot take ${n}`);
    return { plan: n, changed: n !== this.runs };
  }
  async commit(plan: string): Promise<void> {
    this.log.push(`commit ${plan}`);
    if (this.fail.commit === plan) {
      this.runs = 'half';
      throw new Error(`${this.name} failed half-way to ${plan}`);
    }
    this.runs = plan;
  }
  discard(plan: string): void {
    this.log.push(`discard ${plan}`);
  }
}

test('a config every part takes is committed in order, unchanged parts skipped (but the one always committed)', async () => {
  const a = new FakePart('ruleset');
  const b = new FakePart('sync');
  const c = new FakePart('vrrp');
  b.runs = 'new'; // b runs the new config already: unchanged
  await commitAll(await prepareAll(cfg('new'), [a, b, c]), { always: a, running: cfg('old') });
  assert.deepEqual([a.runs, b.runs, c.runs], ['new', 'new', 'new']);
  assert.deepEqual(b.log, ['prepare new']);
  assert.deepEqual(c.log, ['prepare new', 'commit new']);
});

test("each step's time is noted (prepare of every part, commit of those committed), a failing step's too", async () => {
  let t = 0;
  const times: StepTimes = { now: () => (t += 5), ms: {} };
  const a = new FakePart('ruleset');
  const b = new FakePart('sync');
  b.runs = 'new';
  await commitAll(await prepareAll(cfg('new'), [a, b], times), { always: a, times });
  assert.deepEqual(times.ms, { 'ruleset.prepare': 5, 'sync.prepare': 5, 'ruleset.commit': 5 });
  const c = new FakePart('vrrp', { prepare: 'new' });
  await assert.rejects(prepareAll(cfg('new'), [c], times));
  assert.equal(Object.entries(times.ms).find(([k]) => k === 'vrrp.prepare')?.[1], 5);
});

test('a part that cannot prepare refuses the config whole: nothing is committed, the plans made are discarded, the error names the part', async () => {
  const a = new FakePart('ruleset');
  const b = new FakePart('vrrp', { prepare: 'new' });
  const c = new FakePart('sharing');
  await assert.rejects(prepareAll(cfg('new'), [a, b, c]), (e: Error & { code?: string }) => e.code === 'ERR_PREPARE' && e.message === 'vrrp: vrrp cannot take new');
  assert.deepEqual(a.log, ['prepare new', 'discard new']);
  assert.deepEqual(c.log, [], 'a part after the refusal is not even prepared');
  assert.deepEqual([a.runs, b.runs], ['old', 'old']);
});

test('a commit that fails half-way puts the running config back: the parts it reached, the failing one included, last first; the rest discarded', async () => {
  const a = new FakePart('ruleset');
  const b = new FakePart('vrrp', { commit: 'new' });
  const c = new FakePart('notify');
  const ready = await prepareAll(cfg('new'), [a, b, c]);
  await assert.rejects(commitAll(ready, { always: a, running: cfg('old') }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ERR_COMMIT');
    assert.equal(e.message, 'vrrp: vrrp failed half-way to new; the running config was put back (vrrp, ruleset)');
    return true;
  });
  assert.deepEqual([a.runs, b.runs, c.runs], ['old', 'old', 'old'], 'every part runs the old config again');
  assert.deepEqual(b.log, ['prepare new', 'commit new', 'prepare old', 'commit old']);
  assert.deepEqual(a.log, ['prepare new', 'commit new', 'prepare old', 'commit old']);
  assert.deepEqual(c.log, ['prepare new', 'discard new'], 'the part not reached is discarded, never committed');
  // The failing part was put back before the one committed before it (last first).
  const order = [...b.log.slice(2).map((l) => `vrrp ${l}`), ...a.log.slice(2).map((l) => `ruleset ${l}`)];
  assert.deepEqual(order, ['vrrp prepare old', 'vrrp commit old', 'ruleset prepare old', 'ruleset commit old']);
});

test('what cannot be put back is said: the node runs part of the new config', async () => {
  const a = new FakePart('ruleset', { commit: 'old' }); // cannot go back
  const b = new FakePart('vrrp', { commit: 'new' });
  await assert.rejects(commitAll(await prepareAll(cfg('new'), [a, b]), { always: a, running: cfg('old') }), (e: Error) => {
    assert.match(e.message, /^vrrp: vrrp failed half-way to new; the running config was put back \(vrrp\), except: ruleset \(ruleset failed half-way to old\): the node runs part of the new config there$/);
    return true;
  });
});

test('at start (nothing running to go back to) a failed commit is only reported', async () => {
  const a = new FakePart('vrrp', { commit: 'new' });
  await assert.rejects(commitAll(await prepareAll(cfg('new'), [a])), (e: Error) => e.message === 'vrrp: vrrp failed half-way to new');
  assert.deepEqual(a.log, ['prepare new', 'commit new']);
});
