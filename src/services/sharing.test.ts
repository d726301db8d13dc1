import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { RELEASE_GRACE_MS, SharingService } from './sharing.js';
import { bucketOwners, ownedMarks } from '../fsm/sharing.js';

/** Three services as three nodes would run them, each with a fake kernel set. */
function trio(opts: { failFirst?: boolean } = {}) {
  const nodes = ['fw1', 'fw2', 'fw3'];
  const kernels = new Map(nodes.map((n) => [n, new Set<number>()]));
  let fail = opts.failFirst ?? false;
  const svc = new Map(
    nodes.map((n) => [
      n,
      new SharingService({
        log: pino({ level: 'silent' }),
        self: n,
        buckets: 512,
        seed: 7,
        now: () => performance.now(),
        apply: async (c) => {
          if (fail) {
            fail = false;
            throw new Error('EBUSY');
          }
          const k = kernels.get(n)!;
          if ('replace' in c) {
            k.clear();
            c.replace.forEach((m) => k.add(m));
            return;
          }
          for (const m of c.remove) assert.ok(k.delete(m), `removed ${m}, which ${n}'s kernel did not hold`);
          for (const m of c.add) {
            assert.ok(!k.has(m), `added ${m} twice`);
            k.add(m);
          }
        },
      }),
    ]),
  );
  return { nodes, kernels, svc };
}

test('three ready members split the buckets with nothing shared and nothing left out; each kernel holds its own', async () => {
  const t = trio();
  for (const n of t.nodes) {
    const s = t.svc.get(n)!;
    s.setReady(true);
    for (const p of t.nodes) s.peer(p, true);
  }
  await Promise.all([...t.svc.values()].map((s) => s.settled()));
  const all = t.nodes.flatMap((n) => [...t.kernels.get(n)!]);
  assert.equal(all.length, 512, 'every bucket owned once');
  assert.equal(new Set(all).size, 512);
  for (const n of t.nodes) assert.deepEqual([...t.kernels.get(n)!].sort((a, b) => a - b), ownedMarks(bucketOwners(512, t.nodes, 7), n));
  const s1 = t.svc.get('fw1')!;
  assert.ok(s1.ownsMark([...t.kernels.get('fw1')!][0]));
  assert.ok(!s1.ownsMark([...t.kernels.get('fw2')!][0]));
  assert.ok(!s1.ownsMark(0), 'mark 0 is no shared flow');
  assert.ok(!s1.ownsMark(513));
});

test('a member leaves: the survivors take its buckets, by element, and keep their own; it comes back and takes them back', async () => {
  const t = trio();
  for (const n of t.nodes) {
    t.svc.get(n)!.setReady(true);
    for (const p of t.nodes) t.svc.get(n)!.peer(p, true);
  }
  await Promise.all([...t.svc.values()].map((s) => s.settled()));
  const before = new Map(t.nodes.map((n) => [n, new Set(t.kernels.get(n))]));
  for (const n of ['fw1', 'fw2']) t.svc.get(n)!.peer('fw3', false);
  await Promise.all([...t.svc.values()].map((s) => s.settled()));
  for (const n of ['fw1', 'fw2']) for (const m of before.get(n)!) assert.ok(t.kernels.get(n)!.has(m), `${n} lost a bucket of its own`);
  const union = new Set([...t.kernels.get('fw1')!, ...t.kernels.get('fw2')!]);
  assert.equal(union.size, 512);
  assert.ok(t.kernels.get('fw1')!.size > 200 && t.kernels.get('fw2')!.size > 200, 'spread over both survivors');
  for (const n of ['fw1', 'fw2']) t.svc.get(n)!.peer('fw3', true);
  await Promise.all([...t.svc.values()].map((s) => s.settled()));
  for (const n of t.nodes) assert.deepEqual(t.kernels.get(n), before.get(n));
});

test('a node that is not ready owns nothing; a failed kernel write is replaced whole on the next change', async () => {
  const t = trio({ failFirst: true });
  const s = t.svc.get('fw1')!;
  s.peer('fw2', true);
  await s.settled();
  assert.equal(t.kernels.get('fw1')!.size, 0);
  assert.equal(s.status().owned, 0);
  s.setReady(true); // this write fails
  await s.settled();
  assert.equal(s.status().applyFailures, 1);
  s.peer('fw3', true); // the next one replaces the set whole
  await s.settled();
  assert.deepEqual([...t.kernels.get('fw1')!].sort((a, b) => a - b), ownedMarks(bucketOwners(512, t.nodes, 7), 'fw1'));
  assert.deepEqual(s.status().members, ['fw1', 'fw2', 'fw3']);
});

test('regression (issue 20): a node still speaks for the buckets it gave up for RELEASE_GRACE_MS, then no more; a bucket it takes back is its own again', () => {
  let now = 1000;
  const svc = new SharingService({ log: pino({ level: 'silent' }), self: 'fw1', buckets: 64, seed: 3, apply: async () => undefined, now: () => now });
  svc.setReady(true);
  const all = Array.from({ length: 64 }, (_, b) => b + 1);
  assert.ok(all.every((m) => svc.speaksFor(m) && svc.ownsMark(m)));
  svc.peer('fw2', true);
  const given = all.filter((m) => !svc.ownsMark(m));
  assert.ok(given.length > 10 && given.length < 54, `fw2 took ${given.length} of 64`);
  now += RELEASE_GRACE_MS - 1;
  assert.ok(given.every((m) => svc.speaksFor(m)), 'the old owner replicates what the flows of a bucket it just gave up do');
  now += 2;
  assert.ok(given.every((m) => !svc.speaksFor(m)));
  assert.equal(svc.speaksFor(undefined), false);
  assert.equal(svc.speaksFor(0), false);
  svc.peer('fw2', false);
  assert.ok(all.every((m) => svc.speaksFor(m)));
});

test('the relay is told every bucket\'s owner when they change, in order with the owned set, and not when nothing moved', async () => {
  const told: (string | undefined)[][] = [];
  const order: string[] = [];
  const svc = new SharingService({
    log: pino({ level: 'silent' }),
    self: 'fw1',
    buckets: 64,
    seed: 7,
    now: () => performance.now(),
    apply: async () => void order.push('owned'),
    relay: async (owners) => {
      order.push('relay');
      told.push([...owners]);
    },
  });
  svc.setReady(true);
  svc.peer('fw2', true);
  await svc.settled();
  assert.deepEqual(told.at(-1), bucketOwners(64, ['fw1', 'fw2'], 7));
  // One queue: each update writes what is wanted when it runs (here, both changes at once).
  assert.deepEqual(order.slice(0, 2), ['relay', 'owned']);
  const n = told.length;
  svc.peer('fw2', true); // no change
  await svc.settled();
  assert.equal(told.length, n);
  svc.peer('fw3', true);
  await svc.settled();
  assert.deepEqual(told.at(-1), bucketOwners(64, ['fw1', 'fw2', 'fw3'], 7));
  // A ruleset applied (a reload that may have changed the announced addresses): written again, the same owners.
  const m = told.length;
  svc.resync();
  await svc.settled();
  assert.equal(told.length, m + 1);
  assert.deepEqual(told.at(-1), bucketOwners(64, ['fw1', 'fw2', 'fw3'], 7));
});
