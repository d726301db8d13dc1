/**
 * BGP with ECMP across the nodes (root; issue 26): `fwlb lab up bgp`'s four firewalls behind a
 * BIRD router (rt) that learns 198.18.30.100 from each node's BIRD and spreads the flows over
 * them by its own L4 hash. The nodes share the flows by bucket (examples/bgp.yaml) and relay a
 * packet the router sent to a node that does not own its bucket to the owner, once
 * (compiler/relay.ts). Long TCP sessions and UDP flows from both clients through every change
 * of the router's ECMP set: a node added, a node drained (GRACEFUL_SHUTDOWN, then stopped), a
 * node crashed (its BIRD with it: the router's BFD finds it gone), a node whose own health
 * checks all fail (it withdraws; the flows it owns stay with it, relayed). Checked: no TCP
 * session and no UDP flow lost; the router's next hops follow each event; each node's route
 * appeared only after that node said it was ready.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { BGP_EDGE as EDGE, BGP_SERVICE as SERVICE, hopAddedAt, monitorRouterRoutes, readyAt, routerBfdSessions, routerNextHops, writeBgpCluster } from '../src/lab/bird.js';
import { controlCall } from '../src/control/client.js';
import { SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tbe';
/** Per client: the 1,000 TCP sessions and 2,000 UDP flows in all. */
const TCP_PER_CLIENT = 500;
const UDP_PER_CLIENT = 1000;
const EVERY_MS = 1000;
/** BEATs every 50 ms, gone after 250 ms: this 2-core lab's (test/sharing.test.ts says why). */
const BEAT_MS = 50;
let lab: Lab;
let cfg: string;
let routes: string;

const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
const start = (fw: string) => lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw)]);

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'bgp' });
  cfg = await writeBgpCluster(lab, BEAT_MS);
  routes = monitorRouterRoutes(lab);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

const hopsOf = (fws: readonly string[]) => fws.map((f) => EDGE[f]!).sort();
const waitHops = (fws: readonly string[], what: string, ms = 15_000) =>
  waitFor(`${what}: the router's next hops ${hopsOf(fws).join(' ')}`, async () => ((await routerNextHops(lab)).join() === hopsOf(fws).join() ? true : undefined), ms, 50);

const ready = (fw: string) => waitFor(`${fw} ready`, async () => ((await status(fw).catch(() => undefined))?.ready.ready ? true : undefined), 30_000, 100);

interface SessionsResult { sessions: number; connected: number; kept: number; lost: number; worstStallMs: number | null; lostWhy: unknown[]; datagramsLost?: number }

function traffic(seconds: number): () => Promise<SessionsResult[]> {
  const runs = ['client1', 'client2'].flatMap((client) =>
    [false, true].map((udp) => {
      const log = `${lab.stateDir}/ecmp-${client}-${udp ? 'udp' : 'tcp'}.log`;
      const args = [process.execPath, SESSIONS_JS, SERVICE, '7', ...(udp ? ['--udp'] : []), '--count', String(udp ? UDP_PER_CLIENT : TCP_PER_CLIENT), '--every', String(EVERY_MS), '--seconds', String(seconds), '--grace', '8000'];
      return { log, h: lab.spawn(client, args, { log }) };
    }),
  );
  return async () => {
    const out: SessionsResult[] = [];
    for (const r of runs) {
      await r.h.wait((seconds + 40) * 1000);
      out.push(JSON.parse((await readFile(r.log, 'utf8')).trim().split('\n').pop()!) as SessionsResult);
    }
    return out;
  };
}

test('four nodes behind a BIRD router with ECMP: a node added, drained, crashed, its backends failing: no TCP session or UDP flow lost', async () => {
  const t0 = Date.now();
  for (const fw of ['fw1', 'fw2', 'fw3']) start(fw);
  for (const fw of ['fw1', 'fw2', 'fw3']) await ready(fw);
  await waitHops(['fw1', 'fw2', 'fw3'], 'three nodes up');
  for (const fw of ['fw1', 'fw2', 'fw3']) {
    const [r, h] = [await readyAt(lab, fw), await hopAddedAt(routes, EDGE[fw]!, t0)];
    assert.ok(r !== undefined && h !== undefined && h >= r - 5, `${fw}: announced at ${h}, ready at ${r}`);
  }

  const done = traffic(45);
  await sleep(5000);
  // Added: fw4 joins the sharing, then the router's set.
  const t4 = Date.now();
  start('fw4');
  await ready('fw4');
  await waitHops(['fw1', 'fw2', 'fw3', 'fw4'], 'fw4 added');
  const [r4, h4] = [await readyAt(lab, 'fw4'), await hopAddedAt(routes, EDGE.fw4!, t4)];
  assert.ok(r4 !== undefined && h4 !== undefined && h4 >= r4 - 5, `fw4: announced at ${h4}, ready at ${r4}`);
  await sleep(4000);

  // Drained: tagged, still a next hop for the drain (2 s: LOCAL_PREF 0 takes it out of the
  // router's merged set at once), withdrawn, then stopped.
  const stopped = lab.gracefulStop('fw2', 20_000);
  await waitHops(['fw1', 'fw3', 'fw4'], 'fw2 drained');
  assert.equal((await stopped).code, 0);
  await sleep(4000);

  // Crashed: its BIRD dies with it; the router's BFD finds it gone (0.5 s; else the 3 s hold
  // time). BFD is up with every running node first (each node's ruleset lets it in).
  const bfd = await routerBfdSessions(lab);
  assert.deepEqual(['fw1', 'fw3', 'fw4'].map((fw) => bfd[EDGE[fw]!]), ['Up', 'Up', 'Up'], JSON.stringify(bfd));
  // And each node's status says so, from its own BIRD.
  assert.deepEqual((await status('fw3')).bgp?.bfd?.map((f) => [f.address, f.state]), [['198.18.3.1', 'Up']]);
  await lab.crash('fw3');
  await waitHops(['fw1', 'fw4'], 'fw3 crashed', 10_000);
  await sleep(4000);

  // fw1's own health checks all fail (its probes to the echo and web ports dropped; the servers
  // are fine, and so are the flows it carries): every service on the address down, it withdraws.
  await lab.exec('fw1', ['nft', 'add table inet tbe_probe; add chain inet tbe_probe out { type filter hook output priority 0; }; add rule inet tbe_probe out ip daddr 198.18.1.0/24 tcp dport { 7, 80 } drop']);
  await waitHops(['fw4'], 'fw1 without backends');
  const st1 = await status('fw1');
  assert.match(st1.bgp?.why ?? '', /withdrawn for want of a backend/);

  // What the relay did, in the status of the node that joined last (all four buckets' owners then).
  const relay = (await status('fw4')).bgp?.relay;
  assert.ok(relay && relay.relayed > 0 && relay.seen > relay.relayed, `fw4's relay counters: ${JSON.stringify(relay)}`);

  const results = await done();
  for (const r of results) {
    assert.equal(r.connected, r.sessions, JSON.stringify(r));
    assert.equal(r.lost, 0, JSON.stringify(r));
  }
});
