import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { BoundedWait } from './bounded-wait.js';

test('a bounded wait: holds while its cause lasts, at most its time, looks again by itself, says its end once; reset begins anew', () => {
  const clock = new FakeClock(100);
  const said: string[] = [];
  let looked = 0;
  const w = new BoundedWait(clock, 1000, () => looked++);
  const hooks = { onBegin: () => said.push('begin'), onOver: () => said.push('over') };
  assert.equal(w.holds(false, hooks), false, 'no cause: no wait');
  assert.equal(w.holds(true, hooks), true);
  clock.advance(999);
  assert.equal(w.holds(true, hooks), true);
  assert.equal(looked, 0);
  clock.advance(2);
  assert.equal(looked, 1, 'looked at again when the time is up');
  assert.equal(w.holds(true, hooks), false);
  assert.equal(w.holds(true, hooks), false, 'over stays over');
  assert.deepEqual(said, ['begin', 'over']);
  w.reset();
  assert.equal(w.holds(true, hooks), true, 'a new wait after a reset');
  assert.deepEqual(said, ['begin', 'over', 'begin']);
});
