import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharesOf, shareBound } from './shares.js';

test('shares come from each node\'s own stamps: a node read late over a longer window is not over-counted', () => {
  // fw1's second reading came 500 ms late (2,500 ms window at the same rate as the others).
  const s = sharesOf(
    { fw1: { carried: 0, at: 1000 }, fw2: { carried: 0, at: 1000 }, fw3: { carried: 0, at: 1000 } },
    { fw1: { carried: 2500, at: 3500 }, fw2: { carried: 2000, at: 3000 }, fw3: { carried: 2000, at: 3000 } },
  );
  for (const fw of ['fw1', 'fw2', 'fw3']) assert.ok(Math.abs(s.share[fw]! - 1 / 3) < 1e-9, `${fw} ${s.share[fw]}`);
  assert.ok(s.worst < 1e-9);
  assert.equal(s.total, 6500);
  assert.deepEqual(s.packets, { fw1: 2500, fw2: 2000, fw3: 2000 });
});

test('an uneven split is seen as one', () => {
  const s = sharesOf({ a: { carried: 100, at: 0 }, b: { carried: 0, at: 0 } }, { a: { carried: 400, at: 1000 }, b: { carried: 100, at: 1000 } });
  assert.ok(Math.abs(s.share.a! - 0.75) < 1e-9, `a ${s.share.a}`);
  assert.ok(Math.abs(s.worst - 0.5) < 1e-9, `worst ${s.worst}`);
});

test('readings that do not move forward in time are refused', () => {
  assert.throws(() => sharesOf({ a: { carried: 0, at: 5 } }, { a: { carried: 1, at: 5 } }), /not later/);
  assert.throws(() => sharesOf({ a: { carried: 0, at: 5 } }, {}), /no second reading from a/);
});

test('the bound the hash allows: 4.5 spreads of a node\'s part of the flows, never under 10%', () => {
  assert.equal(Math.round(shareBound(2540, 3) * 1000) / 10, 15.5);
  assert.equal(Math.round(shareBound(2540, 2) * 1000) / 10, 10.9);
  assert.equal(shareBound(1_000_000, 3), 0.1, 'many flows: the 10% floor');
  assert.ok(shareBound(300, 3) > shareBound(3000, 3), 'fewer flows, a wider bound');
});
