/**
 * Connection-state sync in a real lab (root): fwlb on two firewalls with the sync on, long
 * TCP sessions through the load-balanced VIP, then the master crashes. The backup has the
 * sessions' conntrack entries (NAT included) before the traffic arrives; none is lost.
 * Between the two, the lag (issue 25): measured per peer, and a backup cut off from the sync
 * data for a moment is behind on both sides (the master's status and count, the backup's own
 * status from the master's BEATs, with its preemption held meanwhile), then caught up, each
 * logged.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { REPO_ROOT } from '../src/lab/paths.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { ECHO_SESSION_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tss';
let lab: Lab;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  // A lag bound of 200 ms: a cut of the sync data shorter than the dead interval (1.5 s) makes the backup behind.
  const text = (await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8')).replace('state_sync: { interface: sync, port: 3780 }', 'state_sync: { interface: sync, port: 3780, lag_bound: 200ms }');
  assert.match(text, /lag_bound: 200ms/);
  await writeSyncedCluster(lab, text);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

test('the joining node is held back until its bulk sync; the master replicates every session; a crash loses none', async () => {
  const cfg = `${lab.stateDir}/cluster.yaml`;
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1'), '--log-level', 'debug']);
  // Alone, fw1 waits for a peer to sync from, then concludes it is alone and takes over.
  await waitFor('fw1 master', async () => ((await status('fw1')).vrrp.groups[0]?.state === 'master' ? true : undefined), 15_000);
  lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', control('fw2'), '--log-level', 'debug']);
  await waitFor('fw2 bulk sync done', async () => ((await status('fw2')).sync?.bulk.state === 'done' ? true : undefined), 15_000);
  assert.equal((await status('fw2')).vrrp.syncDemoted, false);

  // Ten long sessions through the VIP (DNAT to the web servers, round robin).
  const sessions = Array.from({ length: 10 }, (_, i) =>
    lab.spawn('client1', [process.execPath, ECHO_SESSION_JS, '198.18.0.100', '7', '--every', '50', '--seconds', '6'], { log: `${lab.stateDir}/s${i}.log` }),
  );
  await sleep(1500);
  const onBackup = await lab.exec('fw2', ['conntrack', '-L', '-p', 'tcp', '--orig-dst', '198.18.0.100', '--orig-port-dst', '7']);
  const entries = onBackup.split('\n').filter((l) => l.includes('ESTABLISHED'));
  assert.ok(entries.length >= 10, `the backup has ${entries.length} of the sessions:\n${onBackup}`);
  assert.match(entries[0]!, /src=198\.18\.1\.1[12] dst=198\.18\.0\.10 sport=7/, 'with the DNAT');
  await lagSeenAndBehind();

  await lab.crash('fw1');
  await waitFor('fw2 master', async () => ((await status('fw2')).vrrp.groups[0]?.state === 'master' ? true : undefined), 5000);
  for (const [i, s] of sessions.entries()) {
    await s.wait(20_000);
    const r = JSON.parse((await readFile(`${lab.stateDir}/s${i}.log`, 'utf8')).trim().split('\n').pop()!) as { sent: number; echoed: number; error: string | null; maxGapMs: number };
    assert.equal(r.error, null, `session ${i}: ${JSON.stringify(r)}`);
    assert.equal(r.echoed, r.sent, `session ${i} lost echoes`);
    assert.ok(r.maxGapMs < 2000, `session ${i} stalled ${r.maxGapMs} ms`);
  }
});

/** UDP entries created in the master's kernel: events it replicates. */
async function createEntries(from: number, n: number, on = 'fw1'): Promise<void> {
  for (let i = from; i < from + n; i++) await lab.exec(on, ['conntrack', '-I', '-p', 'udp', '-s', '198.18.0.50', '-d', '198.18.1.11', '--sport', String(20000 + i), '--dport', '53', '-t', '60']);
}

async function lagSeenAndBehind(): Promise<void> {
  // The sessions' changes were acknowledged: the master has their lag over the last minute.
  const p = (await status('fw1')).sync!.peers[0]!;
  assert.ok(p.lag.lastMinute.records >= 10 && p.lag.lastMinute.p50Ms !== null && p.lag.lastMinute.p99Ms !== null, JSON.stringify(p.lag));
  assert.equal(p.lag.behind, false);
  const l2 = (await status('fw2')).liveness!;
  assert.ok(l2.peers[0]!.told !== null, 'the master\'s BEATs tell the backup its lag');
  assert.equal(l2.own.behind, false);

  // The backup hears nothing of the sync data for 800 ms (its HELLOs still go out, the BEATs
  // on the next port still come): the changes made meanwhile wait for its ack.
  await lab.exec('fw2', ['nft', '-f', '-'], 'table inet tsslag { chain cut { type filter hook prerouting priority -400; udp dport 3780 drop; }; }\n');
  try {
    await createEntries(0, 5);
    await waitFor('fw1 to say fw2 is behind', async () => ((await status('fw1')).sync!.peers[0]!.lag.behind ? true : undefined), 5000);
    await waitFor('fw2 to say it is behind (the BEATs)', async () => ((await status('fw2')).liveness!.own.behind ? true : undefined), 5000);
    // Behind, it would take no VIP from the master by preemption (services/vrrp.ts, unit-tested).
    const hold = (await status('fw2')).vrrp.preemptHold;
    assert.ok(hold?.held && hold.why.some((w) => /this node is behind: fw1 says we lag \d+ ms/.test(w)), JSON.stringify(hold));
  } finally {
    await lab.exec('fw2', ['nft', 'delete', 'table', 'inet', 'tsslag']);
  }
  await createEntries(5, 3);
  await waitFor('fw1 to say fw2 caught up', async () => (!(await status('fw1')).sync!.peers[0]!.lag.behind ? true : undefined), 10_000);
  await waitFor('fw2 to say it is no longer behind', async () => (!(await status('fw2')).liveness!.own.behind ? true : undefined), 5000);
  await waitFor('fw2 to let preemption go', async () => ((await status('fw2')).vrrp.preemptHold?.held === false ? true : undefined), 2000);
  const s1 = await status('fw1');
  assert.equal(s1.sync!.counters.peers_behind, 1, 'one episode, counted once');
  assert.ok((s1.sync!.peers[0]!.lag.lastMinute.maxMs ?? 0) >= 200, JSON.stringify(s1.sync!.peers[0]!.lag));
  const onBackup = await lab.exec('fw2', ['conntrack', '-L', '-p', 'udp', '--orig-src', '198.18.0.50']);
  assert.equal(onBackup.split('\n').filter((l) => l.includes('dport=53')).length, 8, `every entry made during and after the cut reached the backup:\n${onBackup}`);
  const log = await readFile(`${lab.stateDir}/fw1.daemon.log`, 'utf8');
  assert.match(log, /"event":"sync_peer_behind"/);
  assert.match(log, /"event":"sync_peer_caught_up"/);
  const log2 = await readFile(`${lab.stateDir}/fw2.daemon.log`, 'utf8');
  assert.match(log2, /"event":"own_behind"/);
  assert.match(log2, /"event":"own_caught_up"/);
}

test('a graceful stop of the master waits for its peer to catch up before it hands over (issue 25)', async () => {
  const cfg = `${lab.stateDir}/cluster.yaml`;
  // fw1 back after its crash (booted clean), as the backup of fw2 (the master since the crash).
  await lab.recover('fw1');
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1'), '--log-level', 'debug']);
  await waitFor('fw1 ready', async () => ((await status('fw1')).ready.ready ? true : undefined), 20_000);
  assert.equal((await status('fw2')).vrrp.groups[0]?.state, 'master');
  // fw1 hears nothing of the sync data: what fw2 replicates now waits for its ack.
  await lab.exec('fw1', ['nft', '-f', '-'], 'table inet tsslag { chain cut { type filter hook prerouting priority -400; udp dport 3780 drop; }; }\n');
  let stopped: Promise<unknown> | undefined;
  try {
    await createEntries(100, 5, 'fw2');
    stopped = lab.stop(lab.daemon('fw2')!, 'SIGTERM', 15_000);
    await waitFor('fw2 to wait for fw1 to catch up', async () => ((await readFile(`${lab.stateDir}/fw2.daemon.log`, 'utf8')).includes('"event":"stop_catch_up"') ? true : undefined), 5000);
    await sleep(300);
    assert.equal((await status('fw2')).vrrp.groups[0]?.state, 'master', 'no handover before fw1 has the changes');
  } finally {
    await lab.exec('fw1', ['nft', 'delete', 'table', 'inet', 'tsslag']);
  }
  await stopped;
  const log = await readFile(`${lab.stateDir}/fw2.daemon.log`, 'utf8');
  assert.match(log, /"event":"stop_catch_up".*changes not acknowledged/);
  assert.match(log, /"event":"stop_catch_up_done"/);
  await waitFor('fw1 master', async () => ((await status('fw1')).vrrp.groups[0]?.state === 'master' ? true : undefined), 5000);
  const onFw1 = await lab.exec('fw1', ['conntrack', '-L', '-p', 'udp', '--orig-src', '198.18.0.50']);
  assert.equal(onFw1.split('\n').filter((l) => /sport=201\d\d/.test(l)).length, 5, `the changes made before the stop are on fw1:\n${onFw1}`);
});
