import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { initialCluster, readiness, stepCluster, type ClusterEvent, type ClusterInput, type ClusterState } from './cluster.js';

function run(inputs: ClusterInput[], s: ClusterState = initialCluster()): { state: ClusterState; events: ClusterEvent[] } {
  const events: ClusterEvent[] = [];
  for (const i of inputs) {
    const r = stepCluster(s, i);
    s = r.state;
    events.push(...r.events);
  }
  return { state: s, events };
}

test('ready once started, VRRP running and the table complete; the reason names what is missing', () => {
  const r = run([
    { type: 'started', vrrp: true, sync: true, sharedLinks: [] },
    { type: 'table', complete: false, progress: 'bulk sync: 10 of 200 entries' },
    { type: 'vrrp_running', running: true },
    { type: 'table', complete: true, progress: 'done' },
  ]);
  assert.deepEqual(
    r.events.filter((e) => e.type === 'ready'),
    [
      { type: 'ready', ready: false, reason: 'VRRP not running' },
      { type: 'ready', ready: false, reason: 'bulk sync: 10 of 200 entries' },
      { type: 'ready', ready: true, reason: 'ready' },
    ],
  );
  assert.equal(r.state.ready.ready, true);
});

test('the blocker names the condition that holds readiness back, the first in the order stopping, starting, VRRP, table, links', () => {
  const s0 = initialCluster();
  assert.equal(readiness(s0).blocker, 'starting');
  const started = stepCluster(s0, { type: 'started', vrrp: true, sync: true, sharedLinks: ['eth0'] }).state;
  assert.equal(readiness(started).blocker, 'vrrp');
  const running = stepCluster(started, { type: 'vrrp_running', running: true }).state;
  assert.deepEqual(readiness(running), { ready: false, reason: 'not started', blocker: 'table' });
  const synced = stepCluster(running, { type: 'table', complete: true, progress: 'complete' }).state;
  assert.equal(readiness(synced).blocker, 'links');
  const up = stepCluster(synced, { type: 'link', ifname: 'eth0', up: true }).state;
  assert.deepEqual(readiness(up), { ready: true, reason: 'ready', blocker: null });
  assert.deepEqual(up.ready, readiness(up), 'the state carries the verdict');
  assert.equal(readiness(stepCluster(up, { type: 'stopping', why: 'SIGTERM' }).state).blocker, 'stopping');
});

test('a reload that restarts VRRP: not ready while it is stopped (a failed restart keeps it so), ready again once it runs; VRRP removed from the config holds nothing back', () => {
  const r = run([
    { type: 'started', vrrp: true, sync: false, sharedLinks: [] },
    { type: 'vrrp_running', running: true, configured: true },
    { type: 'vrrp_running', running: false, configured: true },
    { type: 'vrrp_running', running: true, configured: true },
    { type: 'vrrp_running', running: false, configured: false },
  ]);
  assert.deepEqual(
    r.events.filter((e) => e.type === 'ready').map((e) => (e.type === 'ready' ? `${e.ready}:${e.reason}` : '')),
    ['false:VRRP not running', 'true:ready', 'false:VRRP not running', 'true:ready'],
  );
  assert.equal(r.state.has.vrrp, false);
});

test('a shared link down takes readiness away and gives it back; stopping ends it for good', () => {
  const r = run([
    { type: 'started', vrrp: false, sync: false, sharedLinks: [] },
    { type: 'link', ifname: 'eth0', up: false },
    { type: 'link', ifname: 'eth0', up: true },
    { type: 'stopping', why: 'SIGTERM' },
    { type: 'link', ifname: 'eth0', up: false },
  ]);
  assert.deepEqual(
    r.events.map((e) => (e.type === 'ready' ? `${e.ready}:${e.reason}` : e.type)),
    ['true:ready', 'false:shared link down: eth0', 'true:ready', 'stopping', 'false:stopping'],
  );
});

test('VIPs held and released per group, said once, as differences', () => {
  const r = run([
    { type: 'group', group: 'edge', state: 'backup', vips: ['198.18.0.100'] },
    { type: 'group', group: 'edge', state: 'master', vips: ['198.18.0.100', '198.18.1.1'] },
    { type: 'group', group: 'edge', state: 'master', vips: ['198.18.0.100', '198.18.1.1'] },
    { type: 'group', group: 'edge', state: 'fault', vips: ['198.18.0.100', '198.18.1.1'] },
  ]);
  assert.deepEqual(
    r.events.filter((e) => e.type !== 'ready'),
    [
      { type: 'group_state', group: 'edge', from: 'init', to: 'backup', vips: ['198.18.0.100'] },
      { type: 'group_state', group: 'edge', from: 'backup', to: 'master', vips: ['198.18.0.100', '198.18.1.1'] },
      { type: 'vips_held', group: 'edge', vips: ['198.18.0.100', '198.18.1.1'] },
      { type: 'group_state', group: 'edge', from: 'master', to: 'fault', vips: ['198.18.0.100', '198.18.1.1'] },
      { type: 'vips_released', group: 'edge', vips: ['198.18.0.100', '198.18.1.1'] },
    ],
  );
});

test('buckets: owned and given up are the differences; peers: each change said once', () => {
  const r = run([
    { type: 'buckets', owned: [3, 1, 2] },
    { type: 'buckets', owned: [2, 3, 4] },
    { type: 'peer', peer: 'fw2', state: 'up' },
    { type: 'peer', peer: 'fw2', state: 'up' },
    { type: 'peer', peer: 'fw2', state: 'leaving' },
    { type: 'peer', peer: 'fw2', state: 'down' },
  ]);
  assert.deepEqual(
    r.events.filter((e) => e.type !== 'ready'),
    [
      { type: 'buckets_owned', buckets: [1, 2, 3] },
      { type: 'buckets_given_up', buckets: [1] },
      { type: 'buckets_owned', buckets: [4] },
      { type: 'peer_up', peer: 'fw2' },
      { type: 'peer_leaving', peer: 'fw2' },
      { type: 'peer_down', peer: 'fw2' },
    ],
  );
});

const input: fc.Arbitrary<ClusterInput> = fc.oneof(
  fc.record({ type: fc.constant('started' as const), vrrp: fc.boolean(), sync: fc.boolean(), sharedLinks: fc.subarray(['eth0', 'eth1']) }),
  fc.record({ type: fc.constant('vrrp_running' as const), running: fc.boolean(), configured: fc.boolean() }),
  fc.record({ type: fc.constant('peer' as const), peer: fc.constantFrom('fw2', 'fw3'), state: fc.constantFrom('up' as const, 'down' as const, 'leaving' as const) }),
  fc.record({ type: fc.constant('group' as const), group: fc.constantFrom('a', 'b'), state: fc.constantFrom('master', 'backup', 'fault'), vips: fc.subarray(['198.18.0.100', '198.18.1.1']) }),
  fc.record({ type: fc.constant('table' as const), complete: fc.boolean(), progress: fc.constantFrom('x', 'y') }),
  fc.record({ type: fc.constant('link' as const), ifname: fc.constantFrom('eth0', 'eth1'), up: fc.boolean() }),
  fc.record({ type: fc.constant('buckets' as const), owned: fc.subarray([1, 2, 3, 4, 5]) }),
  fc.record({ type: fc.constant('stopping' as const), why: fc.constant('t') }),
);

test('property: replaying the events gives the state (VIPs, buckets, peers, readiness); the state matches readiness()', () => {
  fc.assert(
    fc.property(fc.array(input, { maxLength: 60 }), (inputs) => {
      const { state, events } = run(inputs);
      const held = new Map<string, Set<string>>();
      const owned = new Set<number>();
      const peers = new Map<string, string>();
      let ready: boolean | undefined;
      for (const e of events) {
        if (e.type === 'vips_held') for (const v of e.vips) (held.get(e.group) ?? held.set(e.group, new Set()).get(e.group)!).add(v);
        if (e.type === 'vips_released') for (const v of e.vips) assert.ok(held.get(e.group)?.delete(v), `released ${v} it never held`);
        if (e.type === 'buckets_owned') for (const b of e.buckets) owned.add(b);
        if (e.type === 'buckets_given_up') for (const b of e.buckets) assert.ok(owned.delete(b));
        if (e.type === 'peer_up' || e.type === 'peer_down' || e.type === 'peer_leaving') peers.set(e.peer, e.type.slice(5));
        if (e.type === 'ready') {
          assert.notEqual(e.ready && ready, true, 'ready said twice in a row');
          ready = e.ready;
        }
      }
      for (const [g, st] of Object.entries(state.groups)) assert.deepEqual([...(held.get(g) ?? [])].sort(), [...st.held]);
      assert.deepEqual([...owned].sort((a, b) => a - b), [...state.owned]);
      assert.deepEqual(Object.fromEntries(peers), { ...state.peers });
      assert.deepEqual(state.ready, readiness(state));
      assert.equal(ready ?? false, state.ready.ready);
    }),
  );
});
