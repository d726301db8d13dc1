import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { changeReporter } from './change-reporter.js';

test('a value is posted when it changed, looked at no more than once per interval; force looks now', () => {
  const clock = new FakeClock(0);
  const posted: number[] = [];
  const report = changeReporter<{ n: number }>(clock, 1000, (v) => posted.push(v.n));
  let n = 1;
  report(() => ({ n }));
  assert.deepEqual(posted, [1], 'the first look posts');
  n = 2;
  clock.advance(500);
  report(() => ({ n }));
  assert.deepEqual(posted, [1], 'too soon: not looked at');
  clock.advance(500);
  report(() => ({ n }));
  assert.deepEqual(posted, [1, 2]);
  clock.advance(1000);
  report(() => ({ n }));
  assert.deepEqual(posted, [1, 2], 'unchanged: nothing posted');
  n = 3;
  report(() => ({ n }), true);
  assert.deepEqual(posted, [1, 2, 3], 'forced');
});
