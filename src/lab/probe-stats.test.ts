import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probeGaps } from './probe-stats.js';

test('probe gaps: the longest stretch without a successful probe, and the failures', () => {
  assert.deepEqual(probeGaps([[0, 'web1', 1], [5, 'web2', 1], [10, null, 400], [15, null, 400], [20, 'web1', 1], [25, 'web2', 1]]), { gap: 15, failed: 2, total: 6 });
  assert.deepEqual(probeGaps([]), { gap: 0, failed: 0, total: 0 });
});
