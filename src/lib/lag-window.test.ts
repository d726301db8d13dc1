import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LagWindow } from './lag-window.js';

test('an empty window says so', () => {
  assert.deepEqual(new LagWindow().summary(1000), { records: 0, p50Ms: null, p99Ms: null, maxMs: null });
});

test('p50 and p99 of a known spread, weights counted', () => {
  const w = new LagWindow();
  // 98 records at 1 ms, 2 at 100 ms (one sample of weight 2).
  for (let i = 0; i < 98; i++) w.add(10_000 + i, 1);
  w.add(10_500, 100, 2);
  const s = w.summary(11_000);
  assert.equal(s.records, 100);
  assert.ok(s.p50Ms! >= 1 && s.p50Ms! <= 1.1, `p50 ${s.p50Ms}`);
  assert.ok(s.p99Ms! >= 100 && s.p99Ms! <= 110, `p99 ${s.p99Ms}`);
  assert.equal(s.maxMs, 100);
});

test('samples older than a minute no longer count; a quiet minute empties the window', () => {
  const w = new LagWindow();
  w.add(0, 500);
  w.add(30_000, 2);
  assert.equal(w.summary(30_000).maxMs, 500);
  // 0 ms fell in slot 0 (0-5 s); at 60 s the window is 5 s .. 60 s.
  const later = w.summary(60_000);
  assert.equal(later.records, 1);
  assert.equal(later.maxMs, 2);
  assert.equal(w.summary(200_000).records, 0);
  // A slot reused after the wrap starts empty.
  w.add(200_000, 7);
  assert.deepEqual([w.summary(200_000).records, w.summary(200_000).maxMs], [1, 7]);
});

test('property: a percentile is never below the true one, at most 10% above it (or 0.05 ms), never above the max', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 100_000, noNaN: true }), { minLength: 1, maxLength: 300 }), (xs) => {
      const w = new LagWindow();
      xs.forEach((x) => w.add(1000, x));
      const s = w.summary(1000);
      const sorted = [...xs].sort((a, b) => a - b);
      const truth = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
      for (const [q, got] of [[0.5, s.p50Ms!], [0.99, s.p99Ms!]] as const) {
        const t = truth(q);
        assert.ok(got >= Math.round(t * 100) / 100 - 0.01, `q${q}: ${got} below ${t}`);
        assert.ok(got <= Math.max(t * 1.1, 0.05) + 0.01, `q${q}: ${got} more than 10% above ${t}`);
        assert.ok(got <= s.maxMs! + 1e-9);
      }
      assert.equal(s.maxMs, Math.round(Math.max(...xs) * 100) / 100);
    }),
  );
});

test('garbage samples are ignored, not counted', () => {
  const w = new LagWindow();
  w.add(0, Number.NaN);
  w.add(0, 5, 0);
  w.add(0, 5, -1);
  assert.equal(w.summary(0).records, 0);
});

test('a sample beyond the last bucket (minutes) is reported as the largest, never below it', () => {
  const w = new LagWindow();
  w.add(0, 400_000);
  const s = w.summary(0);
  assert.deepEqual([s.p50Ms, s.p99Ms, s.maxMs], [400_000, 400_000, 400_000]);
});
