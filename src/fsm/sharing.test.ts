import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bucketOfMark, bucketOwners, defaultSeed, natPortRange, ownedMarks, ownershipDelta } from './sharing.js';

const NODES = ['fw1', 'fw2', 'fw3', 'fw4', 'fw5', 'fw6', 'fw7', 'fw8'];
const members = fc.uniqueArray(fc.constantFrom(...NODES), { minLength: 1, maxLength: 8 });

test('every node computes the same owners whatever order it lists the members in; every bucket has one live owner', () => {
  fc.assert(
    fc.property(members, fc.integer({ min: 0, max: 0xffffffff }), (m, seed) => {
      const a = bucketOwners(256, m, seed);
      const b = bucketOwners(256, [...m].reverse(), seed);
      assert.deepEqual(a, b);
      assert.ok(a.every((o) => o !== undefined && m.includes(o)));
    }),
  );
  assert.deepEqual(bucketOwners(4, [], 1), [undefined, undefined, undefined, undefined]);
});

test('4096 buckets (the default) over 2 to 8 members: each near an equal share, as the statistics of rendezvous hashing say', () => {
  // A member's share deviates by about sqrt((N-1)/B) of the fair share (one standard
  // deviation): 2.2% for 3 members of 4096, 4.1% for 8. Asserted at about three of them.
  for (const seed of [defaultSeed('lab'), defaultSeed('edge'), defaultSeed('aa'), 0, 1, 0xdeadbeef]) {
    for (let n = 2; n <= 8; n++) {
      const m = NODES.slice(0, n);
      const owners = bucketOwners(4096, m, seed);
      const fair = 4096 / n;
      const bound = n <= 4 ? 0.07 : 0.13;
      for (const x of m) {
        const have = owners.filter((o) => o === x).length;
        assert.ok(Math.abs(have - fair) <= bound * fair, `seed ${seed}, ${n} members: ${x} owns ${have} of 4096 (fair ${fair.toFixed(0)})`);
      }
    }
  }
});

test('a member that leaves moves only its own buckets, spread over the others; one that joins takes only from the others, about 1/N', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.constantFrom(...NODES), { minLength: 2, maxLength: 8 }), fc.integer({ min: 0, max: 0xffffffff }), (m, seed) => {
      const before = bucketOwners(512, m, seed);
      const gone = m[0]!;
      const after = bucketOwners(512, m.slice(1), seed);
      for (let b = 0; b < 512; b++) {
        if (before[b] !== gone) assert.equal(after[b], before[b], `bucket ${b} moved though its owner stayed`);
        else assert.notEqual(after[b], gone);
      }
      // And back: the joiner takes exactly the buckets it had.
      assert.deepEqual(bucketOwners(512, m, seed), before);
    }),
  );
});

test('owned marks are bucket + 1; a mark outside 1..N is no shared flow; deltas and NAT port ranges', () => {
  const owners = ['a', 'b', 'a', undefined];
  assert.deepEqual(ownedMarks(owners, 'a'), [1, 3]);
  assert.equal(bucketOfMark(1, 4), 0);
  assert.equal(bucketOfMark(4, 4), 3);
  assert.equal(bucketOfMark(0, 4), undefined);
  assert.equal(bucketOfMark(5, 4), undefined);
  assert.equal(bucketOfMark(undefined, 4), undefined);
  assert.deepEqual(ownershipDelta([1, 2, 3], [2, 3, 4]), { add: [4], remove: [1] });
  for (let n = 1; n <= 8; n++) {
    const ranges = Array.from({ length: n }, (_, i) => natPortRange(i, n));
    assert.equal(ranges[0]!.from, 1024);
    assert.equal(ranges.at(-1)!.to, 65535);
    for (let i = 1; i < n; i++) assert.equal(ranges[i]!.from, ranges[i - 1]!.to + 1, 'contiguous, disjoint');
  }
});
