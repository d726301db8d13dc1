import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';

test('FakeClock fires timers in order, including ones set while firing, and honours cancel', () => {
  const c = new FakeClock(1000);
  const fired: string[] = [];
  c.after(30, () => fired.push(`b@${c.now()}`));
  c.after(10, () => {
    fired.push(`a@${c.now()}`);
    c.after(5, () => fired.push(`a2@${c.now()}`));
  });
  const t = c.after(20, () => fired.push('cancelled'));
  t.cancel();
  c.advance(25);
  assert.deepEqual(fired, ['a@1010', 'a2@1015']);
  assert.equal(c.now(), 1025);
  c.advance(10);
  assert.deepEqual(fired, ['a@1010', 'a2@1015', 'b@1030']);
  assert.equal(c.pending(), 0);
});
