import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { effectiveTable, maglevBase } from './maglev.js';
import { defaultTableSize, makeScheduler, schedulerFor, tableSizeProblem, type SchedBackend, type SchedulerName } from './schedulers.js';

const SIZE = 4099; // the property tests use the source-hash size to stay quick
const names = (n: number) => Array.from({ length: n }, (_, i) => `web${i + 1}`);

test('Maglev base table: every slot filled, balanced within a few slots, independent of input order', () => {
  const bs = names(7).map((name) => ({ name, weight: 1 }));
  const t = maglevBase(bs, SIZE);
  const counts = new Array<number>(7).fill(0);
  for (const i of t) counts[i]!++;
  assert.equal(counts.reduce((a, b) => a + b, 0), SIZE);
  for (const c of counts) assert.ok(Math.abs(c - SIZE / 7) <= 2, `unbalanced: ${counts}`);
  const shuffled = [...bs].reverse();
  const t2 = maglevBase(shuffled, SIZE);
  assert.deepEqual(Array.from(t2, (i) => shuffled[i]!.name), Array.from(t, (i) => bs[i]!.name));
});

test('Maglev base table: weights are honoured', () => {
  const t = maglevBase([{ name: 'a', weight: 1 }, { name: 'b', weight: 3 }], SIZE);
  const b = t.filter((i) => i === 1).length;
  assert.ok(Math.abs(b / SIZE - 0.75) < 0.01, `b has ${b} of ${SIZE}`);
});

test('taking one backend of N out moves exactly its slots (about 1/N) and no other entry (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 12 }), fc.nat(), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 12, maxLength: 12 }), (n, pick, weights) => {
      const bs = names(n).map((name, i) => ({ name, weight: weights[i]! }));
      const out = pick % n;
      const base = maglevBase(bs, SIZE);
      const before = effectiveTable(base, bs, bs.map(() => true));
      const after = effectiveTable(base, bs, bs.map((_, i) => i !== out));
      let moved = 0;
      for (let s = 0; s < SIZE; s++) {
        if (before[s] === out) {
          assert.notEqual(after[s], out);
          moved++;
        } else {
          assert.equal(after[s], before[s], `slot ${s} moved though its backend stayed`);
        }
      }
      const share = bs[out]!.weight / bs.reduce((a, b) => a + b.weight, 0);
      assert.ok(Math.abs(moved / SIZE - share) < 0.02, `moved ${moved / SIZE}, share ${share}`);
      // And it comes back to exactly where it was.
      assert.deepEqual(effectiveTable(base, bs, bs.map(() => true)), before);
    }),
    { numRuns: 60 },
  );
});

test("an unavailable backend's slots spread over the others in proportion to weight", () => {
  const bs = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }, { name: 'c', weight: 2 }, { name: 'gone', weight: 4 }];
  const eff = effectiveTable(maglevBase(bs, 65537), bs, [true, true, true, false]);
  const counts = [0, 0, 0, 0];
  for (const i of eff) counts[i]!++;
  assert.equal(counts[3], 0);
  assert.ok(Math.abs(counts[2]! / 65537 - 0.5) < 0.01, String(counts));
  assert.ok(Math.abs(counts[0]! / 65537 - 0.25) < 0.01, String(counts));
});

test('adding a backend to the set moves about 1/(N+1) of the table to it', () => {
  const bs = names(5).map((name) => ({ name, weight: 1 }));
  const before = maglevBase(bs, 65537);
  const grown = [...bs, { name: 'web6', weight: 1 }];
  const after = maglevBase(grown, 65537);
  let toNew = 0;
  let elsewhere = 0;
  for (let s = 0; s < 65537; s++) {
    if (after[s] === 5) toNew++;
    else if (grown[after[s]!]!.name !== bs[before[s]!]!.name) elsewhere++;
  }
  assert.ok(Math.abs(toNew / 65537 - 1 / 6) < 0.01);
  assert.ok(elsewhere / 65537 < 0.05, `Maglev disruption beyond the new backend: ${elsewhere / 65537}`);
});

test('schedulers: nothing available gives an all-empty table; selectors name the flow keys', () => {
  const bs: SchedBackend[] = [{ name: 'a', address: '198.18.1.11', port: 80, weight: 1, available: false }];
  for (const name of ['rr', 'wrr', 'source-hash', 'maglev'] as SchedulerName[]) {
    const s = schedulerFor({ scheduler: name, backends: { a: {} } });
    const t = s.table(bs);
    assert.equal(t.length, s.size);
    assert.ok(t.every((x) => x === null), s.name);
  }
  assert.equal(makeScheduler('maglev', 65537).selector({ family: 4, proto: 'tcp' }, 0xdeadbeef), 'jhash ip saddr . tcp sport mod 65537 seed 0xdeadbeef');
  assert.equal(makeScheduler('source-hash', 4099).selector({ family: 6, proto: 'udp' }, 1), 'jhash ip6 saddr mod 4099 seed 0x00000001');
  assert.equal(makeScheduler('rr', 1024).selector({ family: 4, proto: 'tcp' }, 1), 'numgen inc mod 1024');
});

test('tables sized to the work: 100+ slots per backend (a prime) for hashing, 32 per backend (a power of two) for round robin', () => {
  assert.equal(defaultTableSize('maglev', 2), 251);
  assert.equal(defaultTableSize('maglev', 10), 1021);
  assert.equal(defaultTableSize('source-hash', 100), 16381);
  assert.equal(defaultTableSize('maglev', 5000), 65521);
  assert.equal(defaultTableSize('rr', 1), 64);
  assert.equal(defaultTableSize('wrr', 10), 512);
  assert.equal(defaultTableSize('rr', 500), 1024);
  assert.equal(schedulerFor({ scheduler: 'maglev', table_size: 65537, backends: { a: {} } }).size, 65537, 'the config may set it');
  assert.match(tableSizeProblem('maglev', 1000) ?? '', /prime/);
  assert.equal(tableSizeProblem('maglev', 1021), undefined);
  assert.equal(tableSizeProblem('rr', 100), undefined);
  assert.match(tableSizeProblem('rr', 70000) ?? '', /65537/);
});

test('a default-sized Maglev table stays balanced (every backend within 2% of its share) and minimally disturbed', () => {
  for (const n of [2, 3, 7, 10, 25]) {
    const size = defaultTableSize('maglev', n);
    const bs: SchedBackend[] = Array.from({ length: n }, (_, i) => ({ name: `b${i}`, address: `198.18.1.${10 + i}`, port: 80, weight: 1, available: true }));
    const s = makeScheduler('maglev', size);
    const t = s.table(bs);
    for (const b of bs) {
      const share = t.filter((x) => x?.name === b.name).length / size;
      assert.ok(Math.abs(share - 1 / n) < 0.02, `${n} backends in ${size} slots: ${b.name} has ${share}`);
    }
    // One backend down moves exactly its own slots.
    const down = s.table(bs.map((b, i) => (i === 0 ? { ...b, available: false } : b)));
    const moved = t.filter((x, i) => x?.name !== down[i]?.name).length;
    assert.equal(moved, t.filter((x) => x?.name === 'b0').length);
  }
});
