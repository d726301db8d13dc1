import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catchUpLacks } from './graceful-stop.js';

const base = { unackedAgeMs: undefined, sinceStartMs: 50, ackedForMs: 30, told: { behind: false, writing: false, beatAgoMs: 5 }, lagBoundMs: 1000 };

test('a peer has caught up when what was queued before the wait is acked and a later BEAT says its kernel has it', () => {
  assert.equal(catchUpLacks(base), undefined);
  // Changes queued after the wait began (new traffic) do not hold it up.
  assert.equal(catchUpLacks({ ...base, unackedAgeMs: 20 }), undefined);
});

test('what a peer that has not caught up still lacks', () => {
  assert.match(catchUpLacks({ ...base, unackedAgeMs: 80, ackedForMs: undefined })!, /not acknowledged \(oldest 80 ms\)/);
  assert.match(catchUpLacks({ ...base, told: { ...base.told, beatAgoMs: 40 } })!, /no BEAT since/);
  assert.match(catchUpLacks({ ...base, told: { ...base.told, beatAgoMs: null } })!, /no BEAT since/);
  assert.match(catchUpLacks({ ...base, told: { ...base.told, behind: true } })!, /behind/);
  assert.match(catchUpLacks({ ...base, told: { ...base.told, writing: true } })!, /wait for its kernel/);
  // Still writing after a lag bound since the ack (new traffic keeps it so): not behind is enough.
  assert.equal(catchUpLacks({ ...base, ackedForMs: 1000, told: { ...base.told, writing: true } }), undefined);
});

test('without the liveness (no BEATs), the ack is all there is', () => {
  assert.equal(catchUpLacks({ ...base, told: undefined, ackedForMs: undefined }), undefined);
});
