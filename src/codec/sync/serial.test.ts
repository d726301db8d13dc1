/** Serial arithmetic of the 32-bit stream sequences, around zero and around the wrap. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isSeq, seqAdd, seqDiff, seqInRange, seqLe, seqLt } from './serial.js';

test('adding wraps at 2^32', () => {
  assert.equal(seqAdd(0xffffffff, 1), 0);
  assert.equal(seqAdd(0xfffffffe, 5), 3);
  assert.equal(seqAdd(3, -5), 0xfffffffe);
});

test('comparison follows the shorter way round', () => {
  assert.equal(seqDiff(2, 0xfffffffe), 4);
  assert.equal(seqDiff(0xfffffffe, 2), -4);
  assert.ok(seqLt(0xffffffff, 0));
  assert.ok(!seqLt(0, 0xffffffff));
  assert.ok(seqLe(5, 5) && !seqLt(5, 5));
  assert.ok(seqInRange(1, 0xfffffff0, 5));
  assert.ok(!seqInRange(5, 0xfffffff0, 5));
  assert.ok(!seqInRange(0xffffffef, 0xfffffff0, 5));
});

test('isSeq accepts 32-bit integers only', () => {
  for (const n of [0, 1, 0xffffffff]) assert.ok(isSeq(n));
  for (const n of [-1, 2 ** 32, 1.5, NaN, '1', undefined]) assert.ok(!isSeq(n));
});

test('property: a + d - a = d for any start and |d| < 2^31', () => {
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 }), (a, d) => {
      assert.equal(seqDiff(seqAdd(a, d), a), d);
      assert.equal(seqLt(a, seqAdd(a, d)), d > 0);
    }),
  );
});
