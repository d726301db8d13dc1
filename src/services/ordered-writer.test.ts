import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OrderedWriter } from './ordered-writer.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

test('writes of one key run one at a time, in order; at most `concurrency` at once; written() waits for all before', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 6 }), async (ops, concurrency) => {
      const done: number[] = [];
      const running = new Map<string, number>();
      let now = 0;
      let peak = 0;
      const w = new OrderedWriter<{ key: string; i: number; delay: number }>(async (x) => {
        assert.equal(running.has(x.key), false, `two writes of key ${x.key} at once`);
        running.set(x.key, x.i);
        now++;
        peak = Math.max(peak, now);
        // Finishes after `delay` turns, in whatever order that makes.
        for (let t = 0; t < x.delay; t++) await tick();
        running.delete(x.key);
        now--;
        done.push(x.i);
        if (x.i % 7 === 3) throw new Error('a failed write still finishes');
      }, concurrency);
      const byKey = new Map<string, number[]>();
      const marks: { upTo: number; p: Promise<void> }[] = [];
      for (const [i, [k, delay]] of ops.entries()) {
        const key = `k${k}`;
        assert.equal(w.push(key, { key, i, delay }), i);
        byKey.set(key, [...(byKey.get(key) ?? []), i]);
        if (i % 5 === 0) {
          const upTo = w.last;
          marks.push({ upTo, p: w.written(upTo).then(() => { for (let j = 0; j <= upTo; j++) assert.ok(done.includes(j), `written(${upTo}) before ${j} finished`); }) });
        }
      }
      await w.written();
      await Promise.all(marks.map((m) => m.p));
      assert.equal(done.length, ops.length);
      assert.ok(peak <= concurrency, `peak ${peak} > ${concurrency}`);
      for (const order of byKey.values()) assert.deepEqual(done.filter((i) => order.includes(i)), order);
      assert.equal(w.backlog, 0);
    }),
    { numRuns: 100 },
  );
});
