import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Fifo } from './fifo.js';

test('Fifo behaves as an array used as a queue, across chunk boundaries', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constant(-1)), { maxLength: 200 }), (ops) => {
      const q = new Fifo<number>();
      const ref: number[] = [];
      let next = 0;
      for (const op of ops) {
        if (op < 0) assert.equal(q.shift(), ref.shift());
        else
          for (let i = 0; i < op; i++) {
            q.push(next);
            ref.push(next++);
          }
        assert.equal(q.length, ref.length);
        assert.equal(q.peek(), ref[0]);
      }
      assert.deepEqual([...q], ref);
    }),
    { numRuns: 200 },
  );
});

test('a hundred thousand items go in and come out in order', () => {
  const q = new Fifo<number>();
  for (let i = 0; i < 100_000; i++) q.push(i);
  let sum = 0;
  for (let i = 0; i < 100_000; i++) sum += q.shift()!;
  assert.equal(sum, (99_999 * 100_000) / 2);
  assert.equal(q.shift(), undefined);
});
