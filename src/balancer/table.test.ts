import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backendTable } from './table.js';

test('weighted table: slots in proportion to weights, reduced by the common divisor, interleaved', () => {
  const t = backendTable([
    { name: 'a', address: '198.18.1.1', port: 80, weight: 2 },
    { name: 'b', address: '198.18.1.2', port: 80, weight: 4 },
    { name: 'c', address: '198.18.1.3', port: 80, weight: 0 },
  ]);
  assert.deepEqual(t.map((s) => s.name), ['b', 'a', 'b']);
});

test('weighted table: exact proportions and no run longer than needed (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 8 }), (ws) => {
      const backends = ws.map((w, i) => ({ name: `b${i}`, address: `198.18.1.${i + 1}`, port: 80, weight: w }));
      const t = backendTable(backends);
      const live = backends.filter((b) => b.weight > 0);
      if (!live.length) return assert.equal(t.length, 0);
      const g = live.reduce((a, b) => gcd(a, b.weight), 0);
      for (const b of live) assert.equal(t.filter((s) => s.name === b.name).length, b.weight / g);
      assert.equal(t.length, live.reduce((a, b) => a + b.weight / g, 0));
    }),
  );
});

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
