import { test } from 'node:test';
import assert from 'node:assert/strict';
import { singleFlight } from './single-flight.js';

test('concurrent callers share one computation; the next call after it settles computes again', async () => {
  let runs = 0;
  let release!: () => void;
  const f = singleFlight(async () => {
    runs++;
    await new Promise<void>((r) => (release = r));
    return runs;
  });
  const all = Array.from({ length: 200 }, () => f());
  release();
  assert.deepEqual(new Set(await Promise.all(all)), new Set([1]));
  assert.equal(runs, 1);
  const next = f();
  release();
  assert.equal(await next, 2);
});

test('a failure reaches every caller that shared it, and the next call tries again', async () => {
  let runs = 0;
  const f = singleFlight(async () => {
    runs++;
    if (runs === 1) throw new Error('first fails');
    return 'ok';
  });
  const [a, b] = await Promise.allSettled([f(), f()]);
  assert.equal(a.status, 'rejected');
  assert.equal(b.status, 'rejected');
  assert.equal(await f(), 'ok');
  assert.equal(runs, 2);
});
