import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialHandover, stepHandover, type HandoverEvent, type HandoverState } from './handover.js';

function run(events: HandoverEvent[]) {
  let s: HandoverState = initialHandover();
  const released: string[] = [];
  let done = false;
  for (const e of events) {
    const r = stepHandover(s, e);
    s = r.state;
    released.push(...r.release.map((x) => `${x.ifname}:${x.addresses.join(',')}`));
    done = r.done;
  }
  return { s, released, done };
}

test('held removals go when a new master is heard on their virtual router, one by one; done when none is left', () => {
  const r = run([
    { type: 'hold', key: 'eth0/51', release: { ifname: 'eth0', addresses: ['198.18.0.100/24'] } },
    { type: 'hold', key: 'eth1/52', release: { ifname: 'eth1', addresses: ['198.18.1.1/24'] } },
    { type: 'master_heard', key: 'eth0/51', priority: 100 },
  ]);
  assert.deepEqual(r.released, ['eth0:198.18.0.100/24']);
  assert.equal(r.done, false);
  const r2 = stepHandover(r.s, { type: 'master_heard', key: 'eth1/52', priority: 100 });
  assert.deepEqual(r2.release.map((x) => x.ifname), ['eth1']);
  assert.equal(r2.done, true);
});

test('a priority 0 (another node leaving) or an unknown virtual router releases nothing; the deadline releases all', () => {
  const r = run([
    { type: 'hold', key: 'eth0/51', release: { ifname: 'eth0', addresses: ['a'] } },
    { type: 'master_heard', key: 'eth0/51', priority: 0 },
    { type: 'master_heard', key: 'eth9/9', priority: 200 },
  ]);
  assert.deepEqual(r.released, []);
  const d = stepHandover(r.s, { type: 'deadline' });
  assert.deepEqual(d.release.map((x) => x.ifname), ['eth0']);
  assert.equal(d.done, true);
  assert.equal(d.state.held.size, 0);
});
