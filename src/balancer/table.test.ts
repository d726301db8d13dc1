import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { roundRobinTable } from './table.js';

const be = (name: string, weight: number) => ({ name, address: `198.18.1.${name.length}`, port: 80, weight });

test('round-robin table: interleaved, in proportion to weight, weight 0 gets nothing', () => {
  const t = roundRobinTable([be('a', 1), be('b', 2), be('c', 0)], 6);
  assert.deepEqual(t.map((s) => s.name), ['b', 'a', 'b', 'b', 'a', 'b']);
  assert.deepEqual(roundRobinTable([be('a', 0)], 8), []);
});

test('round-robin table: every slot filled, counts within one slot of the exact share (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 2048 }), (ws, size) => {
      const backends = ws.map((w, i) => be(`b${i}`, w));
      const t = roundRobinTable(backends, size);
      const total = ws.reduce((a, b) => a + b, 0);
      if (total === 0) return assert.equal(t.length, 0);
      assert.equal(t.length, size);
      for (const b of backends) {
        const n = t.filter((s) => s.name === b.name).length;
        assert.ok(Math.abs(n - (b.weight * size) / total) < 1, `${b.name}: ${n} slots for weight ${b.weight}/${total} of ${size}`);
      }
    }),
  );
});

test('round-robin table: no backend gets two slots in a row while another is owed one (equal weights)', () => {
  const t = roundRobinTable([be('a', 1), be('b', 1), be('c', 1)], 1024).map((s) => s.name);
  for (let i = 1; i < t.length; i++) assert.notEqual(t[i], t[i - 1]);
});
