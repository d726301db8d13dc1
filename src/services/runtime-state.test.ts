/**
 * Runtime changes between three nodes in memory: every request through the real frames to the
 * peer's real handler; each node "runs" a change by adding it to its list (a backend it does
 * not know, an add of one it has, fail as the balancer's would).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { decodeFrame, deriveConfigKey, encodeFrame } from '../codec/config/frame.js';
import type { RuntimeCommand, RuntimeDoc } from '../fsm/runtime-log.js';
import { RuntimeState } from './runtime-state.js';

const key = deriveConfigKey(Buffer.alloc(32, 3));
const NAMES = ['fw1', 'fw2', 'fw3'];

function nodes() {
  const down = new Set<string>();
  const all = new Map<string, { rt: RuntimeState; ran: RuntimeCommand[]; saved?: RuntimeDoc }>();
  for (const name of NAMES) {
    const n = { rt: undefined as unknown as RuntimeState, ran: [] as RuntimeCommand[], saved: undefined as RuntimeDoc | undefined };
    n.rt = new RuntimeState({
      log: pino({ level: 'silent' }),
      cluster: 'lab',
      peers: NAMES.filter((p) => p !== name),
      send: async (peer, type, payload) => {
        if (down.has(peer)) throw new Error(`${peer} unreachable`);
        const f = decodeFrame(key, encodeFrame(key, { type, nonce: Buffer.alloc(16), payload }));
        assert.ok(f.ok);
        return all.get(peer)!.rt.handle(f.frame, name);
      },
      peerDown: (peer) => down.has(peer),
      save: async (doc) => void (n.saved = structuredClone(doc)),
      run: async (c) => {
        if (c.op !== 'maintenance' && c.service !== 'web') throw new Error(`no service "${c.service}"`);
        if (c.op === 'add' && n.ran.some((x) => x.op === 'add' && x.backend === c.backend)) throw new Error('exists');
        n.ran.push(c);
        return { done: c.op };
      },
    });
    all.set(name, n);
  }
  return { down, all, node: (n: string) => all.get(n)! };
}

const drain: RuntimeCommand = { op: 'drain', service: 'web', backend: 'web1' };
const add: RuntimeCommand = { op: 'add', service: 'web', backend: 'web9', address: '198.18.1.19', port: 80 };

test('a change with --cluster runs here, then on every peer; each keeps it; the outcomes say so', async () => {
  const c = nodes();
  const r = await c.node('fw2').rt.clusterChange(drain);
  assert.deepEqual(r.result, { done: 'drain' });
  assert.deepEqual([r.version, Object.values(r.nodes).map((o) => o.outcome)], [1, ['applied', 'applied']]);
  for (const n of NAMES) {
    assert.deepEqual(c.node(n).ran, [drain], n);
    assert.deepEqual(c.node(n).saved?.shared, { version: 1, commands: [drain] }, `${n} kept it`);
  }
  // A change that fails here (no such service) is refused before any peer hears of it.
  await assert.rejects(c.node('fw1').rt.clusterChange({ op: 'drain', service: 'api', backend: 'a' }), /no service "api"/);
  assert.equal(c.node('fw3').ran.length, 1);
});

test('a node away during a change gets the whole log when it is back (its version asked), and replays what it lacks', async () => {
  const c = nodes();
  c.down.add('fw3');
  const r = await c.node('fw1').rt.clusterChange(add);
  assert.equal(r.nodes.fw3?.outcome, 'unreachable');
  await c.node('fw1').rt.clusterChange(drain);
  c.down.clear();
  c.node('fw1').rt.peerSeen('fw3', c.node('fw3').rt.describe());
  await new Promise((res) => setTimeout(res, 10));
  assert.deepEqual(c.node('fw3').ran, [add, drain]);
  assert.equal(c.node('fw3').rt.status().version, 2);
  // The same log again: refused as a replay, nothing run twice.
  const again = await c.node('fw1').rt['sendTo']('fw3');
  assert.deepEqual([again.outcome, 'reason' in again ? again.reason : ''], ['refused', 'replayed']);
  assert.equal(c.node('fw3').ran.length, 2);
});

test('after a restart the kept changes run again, in order; one that no longer applies is dropped', async () => {
  const c = nodes();
  await c.node('fw1').rt.recordLocal({ op: 'maintenance', on: true });
  await c.node('fw1').rt.clusterChange(drain);
  const doc = structuredClone(c.node('fw1').saved!);
  doc.local.unshift({ op: 'drain', service: 'gone', backend: 'x' });
  const fresh = nodes();
  await fresh.node('fw1').rt.restore(doc);
  assert.deepEqual(fresh.node('fw1').ran, [{ op: 'maintenance', on: true }, drain]);
  assert.deepEqual(fresh.node('fw1').saved?.local, [{ op: 'maintenance', on: true }, drain], 'the one that failed is no longer kept');
  assert.equal(fresh.node('fw1').rt.status().version, 1);
  await fresh.node('fw2').rt.restore({ ...doc, cluster: 'another' });
  assert.deepEqual(fresh.node('fw2').ran, [], "another cluster's file is not this one's");
});
