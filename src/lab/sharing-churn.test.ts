import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attribute, byKind, SHARING_FAILURES, type SharingFailureRecord } from './sharing-churn.js';

const f = (kind: SharingFailureRecord['kind'], atMs: number, movedMs = 50): SharingFailureRecord => ({ kind, node: 'fw1', atMs, movedMs, rejoinAtMs: atMs + 600, backAtMs: atMs + 1000 });

test('stalls and lost datagrams are charged to the failure whose window holds their start; before the first, to `before`', () => {
  const failures = [f('crash', 1000, 80), f('link', 5000, 40), f('crash', 9000, 120)];
  // [4960, 300]: began 40 ms before the second failure and ran through it: that failure's.
  const gaps: [number, number][] = [[500, 300], [1100, 400], [1200, 900], [4960, 300], [5100, 200], [12_000, 150]];
  // 900: 100 ms before the first failure, before it; 4999 and 4950: sent just before the
  // second failure, counted in it; 4900 falls in the first failure's rejoin (1600 on).
  const lostAt = [900, 1001, 1002, 4900, 4950, 4999, 5000, 9500];
  const { perFailure, before } = attribute(failures, gaps, lostAt);
  // Rejoins begin 600 ms after each failure: 1600, 5600, 9600.
  assert.deepEqual(before, { worstStallMs: 300, datagramsLost: 1, rejoin: { worstStallMs: 0, datagramsLost: 0 } });
  assert.deepEqual(perFailure, [
    { worstStallMs: 900, datagramsLost: 3, rejoin: { worstStallMs: 0, datagramsLost: 1 } },
    { worstStallMs: 300, datagramsLost: 3, rejoin: { worstStallMs: 0, datagramsLost: 0 } },
    { worstStallMs: 150, datagramsLost: 1, rejoin: { worstStallMs: 150, datagramsLost: 0 } },
  ]);
  const k = byKind(failures, perFailure, SHARING_FAILURES);
  assert.deepEqual(k.crash, { count: 2, worstStallMs: 900, datagramsLost: 4, worstMoveMs: 120, rejoin: { worstStallMs: 150, datagramsLost: 1 } });
  assert.deepEqual(k.link, { count: 1, worstStallMs: 300, datagramsLost: 3, worstMoveMs: 40, rejoin: { worstStallMs: 0, datagramsLost: 0 } });
  assert.deepEqual(k.kill, { count: 0, worstStallMs: 0, datagramsLost: 0, worstMoveMs: 0, rejoin: { worstStallMs: 0, datagramsLost: 0 } });
});
