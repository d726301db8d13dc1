/**
 * State sync among three nodes (root): every node a speaker of what it owns (in
 * active-standby: the master), on a switched sync segment. Long TCP sessions through the VIP
 * survive a crash of the master and then of the next master; every node's table converges;
 * nothing is echoed; the peers of a node that left stop queueing for it; a node that boots
 * again bulk-syncs from whichever peer is alive.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { ECHO_SESSION_JS, REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tst3';
let lab: Lab;
let cfg: string;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
const start = (fw: string) => lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'debug']);
const isMaster = (fw: string) => async () => ((await status(fw)).vrrp.groups[0]?.state === 'master' ? true : undefined);
/** Established entries of the echo service (VIP port 7) in a node's kernel. */
const echoEntries = async (fw: string) =>
  (await lab.exec(fw, ['conntrack', '-L', '-p', 'tcp', '--orig-dst', '198.18.0.100', '--orig-port-dst', '7'])).split('\n').filter((l) => l.includes('ESTABLISHED')).length;

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'trio' });
  // The lab's cluster with a third node, priorities 200 > 150 > 100.
  const base = (await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8'))
    .replace('    priority: 100\n', '    priority: 150\n')
    .replace(
      '\ninterfaces:',
      '\n  fw3:\n    priority: 100\n    addresses: { outside: 198.18.0.4/24, inside: 198.18.1.4/24, sync: 198.18.2.3/24 }\ninterfaces:',
    );
  cfg = await writeSyncedCluster(lab, base);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

test('three nodes: sessions survive the crash of the master and of the next one; tables converge; a rebooted node bulk-syncs from the live peer', async () => {
  for (const fw of ['fw1', 'fw2', 'fw3']) start(fw);
  await waitFor('fw1 master', isMaster('fw1'), 20_000);
  for (const fw of ['fw2', 'fw3']) await waitFor(`${fw} synced`, async () => ((await status(fw)).sync?.bulk.complete ? true : undefined), 20_000);

  const run = (client: string, tag: string, n: number, seconds: number) =>
    Array.from({ length: n }, (_, i) => ({
      name: `${tag}${i}`,
      h: lab.spawn(client, [process.execPath, ECHO_SESSION_JS, '198.18.0.100', '7', '--every', '50', '--seconds', String(seconds)], { log: `${lab.stateDir}/${tag}${i}.log` }),
    }));
  // (Started together, the nodes may elect another master for a moment before fw1 wins.)
  const before = Object.fromEntries(await Promise.all(['fw2', 'fw3'].map(async (fw) => [fw, (await status(fw)).sync!.counters] as const)));
  // Batch A through fw1.
  const a = run('client1', 'a', 20, 18);
  await sleep(1500);
  for (const fw of ['fw2', 'fw3']) assert.ok((await echoEntries(fw)) >= 20, `${fw} has the master's sessions`);
  for (const fw of ['fw2', 'fw3']) {
    const c = (await status(fw)).sync!.counters;
    // A backup owns nothing: it replicates nothing, and never echoes what it wrote.
    assert.equal(c.records_replicated, before[fw]!.records_replicated, `${fw} spoke while a backup`);
    assert.ok(c.records_applied - before[fw]!.records_applied >= 20, `${fw} applied ${c.records_applied}`);
  }

  // The master crashes: the next in line (fw2) takes over, and speaks to fw3.
  await lab.crash('fw1');
  await waitFor('fw2 master', isMaster('fw2'), 5000);
  const b = run('client2', 'b', 10, 12);
  await sleep(2500);
  assert.ok((await echoEntries('fw3')) >= 30, 'fw3 has the sessions of both masters');
  const s2 = await status('fw2');
  assert.ok(s2.sync!.counters.records_replicated > 0, 'fw2 speaks as master');
  const toFw1 = s2.sync!.peers.find((p) => p.peer === 'fw1')!;
  assert.equal(toFw1.alive, false, 'fw2 saw fw1 leave');
  assert.ok(s2.sync!.counters.peers_lost >= 1);
  // Bounded: nothing waits for the dead node beyond what was in flight when it went.
  assert.ok(toFw1.queuedMessages <= 64, `fw2 queues ${toFw1.queuedMessages} messages for the dead fw1`);
  assert.notEqual(toFw1.resync, 'none');

  // The next master crashes too: fw3 carries on with every session.
  await lab.crash('fw2');
  await waitFor('fw3 master', isMaster('fw3'), 5000);

  // fw1 boots again (empty table) and bulk-syncs from the only live peer.
  await lab.recover('fw1');
  start('fw1');
  await waitFor('fw1 synced', async () => ((await status('fw1')).sync?.bulk.state === 'done' ? true : undefined), 20_000);
  const s1 = await status('fw1');
  assert.equal(s1.sync!.bulk.source, 'fw3');
  assert.ok((await echoEntries('fw1')) >= 30, 'the rebooted fw1 has every live session');

  for (const s of [...a, ...b]) {
    await s.h.wait(30_000);
    const r = JSON.parse((await readFile(`${lab.stateDir}/${s.name}.log`, 'utf8')).trim().split('\n').pop()!) as { sent: number; echoed: number; error: string | null; maxGapMs: number };
    assert.equal(r.error, null, `session ${s.name}: ${JSON.stringify(r)}`);
    assert.equal(r.echoed, r.sent, `session ${s.name} lost echoes`);
  }
});
