/**
 * The config distribution between three nodes in memory, on a fake clock: every request goes
 * through the real frames (signed, decoded) to the peer's real handler; a node "down" neither
 * answers nor is asked (the liveness says so). What is applied is what a node "runs".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { FakeClock } from '../lib/clock.js';
import { decodeFrame, deriveConfigKey, encodeFrame, FrameType } from '../codec/config/frame.js';
import { encodeBundle, filesHash, type Bundle, type BundleFile } from '../codec/config/bundle.js';
import { ConfigDistService, RECONCILE_MS, type NodeOutcome } from './config-dist.js';
import type { PendingConfirm } from '../ports/config-store.js';

const key = deriveConfigKey(Buffer.alloc(32, 1));
const files = (text: string): BundleFile[] => [{ name: 'cluster.yaml', body: Buffer.from(text) }];
const NAMES = ['fw1', 'fw2', 'fw3'];

interface Node {
  name: string;
  svc: ConfigDistService;
  runs: BundleFile[];
  applies: number;
  scopes: string[];
  stored: { current?: Bundle; previous?: Bundle; confirm?: PendingConfirm };
}

function cluster(initial = 'version zero') {
  const clock = new FakeClock(1_765_000_000_000);
  const down = new Set<string>();
  const nodes = new Map<string, Node>();
  for (const name of NAMES) {
    let chain: Promise<unknown> = Promise.resolve();
    const n: Node = { name, runs: files(initial), applies: 0, scopes: [], stored: {}, svc: undefined as unknown as ConfigDistService };
    n.svc = new ConfigDistService({
      clock,
      wallNow: () => clock.now(),
      log: pino({ level: 'silent' }),
      self: name,
      cluster: 'lab',
      peers: NAMES.filter((p) => p !== name),
      send: async (peer, type: FrameType, payload) => {
        if (down.has(peer) || down.has(name)) throw new Error(`${peer} unreachable`);
        const req = decodeFrame(key, encodeFrame(key, { type, nonce: Buffer.alloc(16, 9), payload }));
        assert.ok(req.ok);
        const reply = await nodes.get(peer)!.svc.handle(req.frame, name);
        return reply;
      },
      peerDown: (peer) => down.has(peer),
      store: {
        saveVersions: async (current, previous) => void Object.assign(n.stored, { current, previous }),
        saveConfirm: async (c) => void (n.stored.confirm = c),
      },
      check: async (f, scope) => {
        n.scopes.push(scope);
        return f[0]!.body.toString().includes('INVALID') ? 'line 1: not a config' : undefined;
      },
      apply: async (f) => {
        if (f[0]!.body.toString().includes('FAILS')) return { ok: false, error: 'the kernel refused it' };
        n.runs = [...f];
        n.applies++;
        return { ok: true, changed: true };
      },
      serial: <T>(f: () => Promise<T>) => {
        const p = chain.then(f);
        chain = p.catch(() => undefined);
        return p;
      },
    });
    nodes.set(name, n);
  }
  for (const n of nodes.values()) n.svc.start({ problems: [] }, n.runs);
  // Fake time in steps, the promises of each step settled before the next.
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      clock.advance(Math.min(50, ms - t));
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    }
  };
  const text = (name: string) => nodes.get(name)!.runs[0]!.body.toString();
  const st = (name: string) => nodes.get(name)!.svc.status();
  return { clock, down, nodes, run, text, st, svc: (name: string) => nodes.get(name)!.svc };
}

const outcomes = (r: { nodes: Record<string, NodeOutcome> }) => Object.fromEntries(Object.entries(r.nodes).map(([k, v]) => [k, v.outcome]));

test('a push from any node is applied on every node, numbered past what each knows; each says so; status shows the version and the peers in step', async () => {
  const c = cluster();
  await c.run(100);
  assert.deepEqual(NAMES.map((n) => c.st(n).peers), NAMES.map((n) => Object.fromEntries(NAMES.filter((p) => p !== n).map((p) => [p, { version: 0, hash: filesHash(files('version zero')), state: 'same', error: null }]))), 'at start: version 0 everywhere, the same files');
  const r = await c.svc('fw2').push(files('one'));
  assert.deepEqual([r.version, outcomes(r)], [1, { fw2: 'applied', fw1: 'applied', fw3: 'applied' }]);
  // Every node's part is checked where the push is made; a peer checks its own (its reload does).
  assert.deepEqual(NAMES.map((n) => c.nodes.get(n)!.scopes), [['self'], ['cluster'], ['self']]);
  for (const n of NAMES) assert.deepEqual([c.text(n), c.st(n).version, c.st(n).hash], ['one', 1, filesHash(files('one'))], n);
  const r2 = await c.svc('fw3').push(files('two'));
  assert.equal(r2.version, 2);
  assert.equal(c.nodes.get('fw1')!.stored.current?.meta.version, 2, 'kept on disk');
  assert.equal(c.nodes.get('fw1')!.stored.previous?.meta.hash, filesHash(files('one')), 'and the one before, for a rollback');
  await c.run(RECONCILE_MS + 100);
  assert.deepEqual(Object.values(c.st('fw1').peers).map((p) => p.state), ['same', 'same']);
});

test('a config refused where it is pushed is sent nowhere; one a peer cannot apply is reported refused with its reason, the others apply it', async () => {
  const c = cluster();
  await assert.rejects(c.svc('fw1').push(files('INVALID')), /refused on this node, sent to no peer: line 1: not a config/);
  assert.equal(c.text('fw2'), 'version zero');
  // fw3 alone cannot apply it (its kernel refuses): the others run it, fw3 says why.
  const n3 = c.nodes.get('fw3')!;
  const apply3 = n3.svc['d'].apply;
  n3.svc['d'].apply = async (f) => (f[0]!.body.toString() === 'three' ? { ok: false, error: 'the kernel refused it' } : apply3(f));
  const r = await c.svc('fw1').push(files('three'));
  assert.deepEqual(outcomes(r), { fw1: 'applied', fw2: 'applied', fw3: 'refused' });
  assert.match(JSON.stringify(r.nodes.fw3), /apply_failed.*the kernel refused it/);
  assert.equal(c.text('fw3'), 'version zero');
  assert.equal(c.st('fw3').counters.refused.apply_failed, 1);
});

test('a peer down during a push does not hold it up (pending) and catches up when it is back; older and replayed versions are refused and counted', async () => {
  const c = cluster();
  c.down.add('fw3');
  const r = await c.svc('fw1').push(files('while fw3 was away'));
  assert.deepEqual(outcomes(r), { fw1: 'applied', fw2: 'applied', fw3: 'unreachable' });
  assert.match(JSON.stringify(r.nodes.fw3), /down: it gets version 1 when it is back/);
  assert.equal(c.text('fw3'), 'version zero');
  c.down.delete('fw3');
  c.svc('fw1').peerUp();
  await c.run(200);
  assert.equal(c.text('fw3'), 'while fw3 was away', 'caught up by a peer that has it');
  assert.equal(c.st('fw3').version, 1);
  // The same version again (a replay), and an older one: refused, counted.
  const current = c.nodes.get('fw1')!.stored.current!;
  const send = (b: Bundle) => c.svc('fw2').handle({ type: FrameType.PUSH, nonce: Buffer.alloc(16), payload: encodeBundle(b) }, 'a replayer');
  assert.match((await send(current)).toString(), /"reason":"replayed"/);
  const older = { meta: { ...current.meta, version: 1, hash: filesHash(files('old')) }, files: files('old') };
  await c.svc('fw1').push(files('v2'));
  assert.match((await send(older)).toString(), /"reason":"older"/);
  assert.deepEqual([c.st('fw2').counters.refused.replayed, c.st('fw2').counters.refused.older], [1, 1]);
  assert.equal(c.text('fw2'), 'v2');
});

test('two pushes of one version with other files: a conflict, refused and reported; the next push settles it', async () => {
  const c = cluster();
  c.down.add('fw2');
  await c.svc('fw1').push(files('from fw1'));
  c.down.clear();
  for (const n of ['fw1', 'fw3']) c.down.add(n);
  const r = await c.svc('fw2').push(files('from fw2'));
  assert.equal(r.version, 1, 'fw2 knew of no version past 0');
  c.down.clear();
  await c.run(RECONCILE_MS * 2);
  assert.equal(c.st('fw1').peers.fw2!.state, 'differs', 'flagged in status');
  assert.equal(c.st('fw2').peers.fw3!.state, 'differs');
  const mine = c.nodes.get('fw2')!.stored.current!;
  const reply = await c.svc('fw1').handle({ type: FrameType.PUSH, nonce: Buffer.alloc(16), payload: encodeBundle(mine) }, 'fw2');
  assert.match(reply.toString(), /"reason":"conflict"/);
  assert.equal(c.st('fw1').counters.refused.conflict, 1);
  assert.equal(c.text('fw1'), 'from fw1');
  const settled = await c.svc('fw3').push(files('settled'));
  assert.equal(settled.version, 2);
  for (const n of NAMES) assert.equal(c.text(n), 'settled');
});

test('commit-confirm: no confirm, and every node goes back to the files before (as one same version); a confirmed later push is never rolled back by the earlier timer', async () => {
  const c = cluster();
  await c.svc('fw1').push(files('good'));
  const r = await c.svc('fw2').push(files('risky'), 60_000);
  assert.deepEqual(outcomes(r), { fw2: 'applied', fw1: 'applied', fw3: 'applied' });
  assert.ok(c.st('fw1').confirm && c.st('fw1').confirm!.inMs <= 60_000);
  await c.run(59_000);
  assert.equal(c.text('fw1'), 'risky');
  await c.run(2000);
  for (const n of NAMES) assert.deepEqual([c.text(n), c.st(n).version, c.st(n).confirm], ['good', 3, null], `${n} rolled back`);
  assert.equal(NAMES.reduce((s, n) => s + c.st(n).counters.rollbacks, 0) >= 1, true);
  assert.equal(NAMES.reduce((s, n) => s + (c.st(n).counters.refused.conflict ?? 0), 0), 0, 'the rollbacks made on each node are one version: no conflict');

  // A push to confirm, then a later one confirmed before the first's time: nothing rolls back.
  await c.svc('fw3').push(files('first'), 60_000);
  await c.run(30_000);
  await c.svc('fw1').push(files('second'), 60_000);
  const conf = await c.svc('fw2').confirmAll();
  assert.deepEqual(outcomes(conf), { fw2: 'confirmed', fw1: 'confirmed', fw3: 'confirmed' });
  await c.run(100_000);
  for (const n of NAMES) assert.deepEqual([c.text(n), c.st(n).confirm], ['second', null], n);
});

test("a node that missed the confirm (away when it came) keeps the version: a peer has it confirmed", async () => {
  const c = cluster();
  await c.svc('fw1').push(files('kept'), 60_000);
  c.down.add('fw3');
  const conf = await c.svc('fw1').confirmAll();
  assert.deepEqual(outcomes(conf), { fw1: 'confirmed', fw2: 'confirmed', fw3: 'unreachable' });
  await c.run(20_000);
  c.down.clear();
  await c.run(50_000);
  assert.deepEqual([c.text('fw3'), c.st('fw3').confirm, c.st('fw3').counters.rollbacks], ['kept', null, 0]);
});

test('a node cut off through the whole confirm window rolls back alone; back in touch, a peer that has the version confirmed brings it back (not "ahead" with the old files)', async () => {
  const c = cluster();
  await c.svc('fw1').push(files('kept'), 10_000);
  c.down.add('fw3');
  assert.deepEqual(outcomes(await c.svc('fw1').confirmAll()), { fw1: 'confirmed', fw2: 'confirmed', fw3: 'unreachable' });
  await c.run(15_000);
  assert.deepEqual([c.text('fw3'), c.st('fw3').version, c.st('fw3').counters.rollbacks], ['version zero', 2, 1], 'fw3 asked nobody and rolled back');
  c.down.clear();
  await c.run(2 * RECONCILE_MS + 500);
  for (const n of NAMES) assert.deepEqual([c.text(n), c.st(n).version, c.st(n).confirm], ['kept', 1, null], n);
  assert.deepEqual(Object.values(c.st('fw3').peers).map((p) => p.state), ['same', 'same']);
  assert.equal(c.st('fw1').counters.refused.confirmed ?? 0, 0, 'its rollback was never sent');
  // Stays so: the next rounds move nothing.
  await c.run(10 * RECONCILE_MS);
  for (const n of NAMES) assert.deepEqual([c.text(n), c.st(n).version], ['kept', 1], n);
});

test('a restart keeps the version and the confirm it waits for: its time still runs', async () => {
  const c = cluster();
  await c.svc('fw1').push(files('pending'), 60_000);
  const n2 = c.nodes.get('fw2')!;
  assert.equal(n2.stored.confirm?.version, 1);
  n2.svc.stop();
  // fw2 again, from what it kept: version 1 runs, its confirm still due 60 s after the push.
  const again = new ConfigDistService({ ...n2.svc['d'] });
  n2.svc = again;
  again.start({ problems: [], ...n2.stored } as never, n2.runs);
  assert.equal(again.status().version, 1);
  assert.ok(again.status().confirm, 'the confirm still waits');
  await c.run(61_000);
  assert.equal(c.text('fw2'), 'version zero', 'rolled back at the original time');
});

test('a file changed by hand and reloaded on one node: it says so, and its peers see other files (differs)', async () => {
  const c = cluster();
  await c.svc('fw1').push(files('pushed'));
  c.svc('fw2').reloaded(files('edited on fw2'));
  await c.run(RECONCILE_MS * 11);
  assert.equal(c.st('fw2').localChanges, true);
  assert.equal(c.st('fw2').version, 1);
  assert.equal(c.st('fw1').peers.fw2!.state, 'differs');
  assert.equal(c.st('fw1').peers.fw3!.state, 'same');
});

test('fwlb reload --confirm, on one node: the files before come back at the deadline unless confirmed; the peers are not involved', async () => {
  const c = cluster();
  const n1 = c.nodes.get('fw1')!;
  // A reload by hand of an edited file: what ran before is kept for the rollback.
  const before = c.svc('fw1').files();
  n1.runs = files('edited by hand');
  c.svc('fw1').reloaded(n1.runs);
  c.svc('fw1').armLocalConfirm(5000, before);
  assert.ok(c.st('fw1').confirm);
  await c.run(5100);
  assert.equal(c.text('fw1'), 'version zero', 'rolled back');
  assert.equal(c.st('fw1').counters.rollbacks, 1);
  // Again, confirmed this time: it stays; the confirm is this node's alone.
  n1.runs = files('edited again');
  c.svc('fw1').reloaded(n1.runs);
  c.svc('fw1').armLocalConfirm(5000, files('version zero'));
  const conf = await c.svc('fw1').confirmAll();
  assert.deepEqual(outcomes(conf), { fw1: 'confirmed' });
  await c.run(6000);
  assert.equal(c.text('fw1'), 'edited again');
  assert.equal(c.text('fw2'), 'version zero');
});
