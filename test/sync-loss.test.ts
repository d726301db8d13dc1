/**
 * The state sync under loss, long enough to catch a stalled timer (root): fwlb on two
 * firewalls, 10% of the sync datagrams dropped in each direction (an nft rule on each
 * node's output), sessions opened through the VIP in waves for a minute. The links must
 * never go quiet (hellos, acks, retransmissions all keep running), the backup must hold
 * every session, and a crash of the master then loses none.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { runRaw } from '../src/lib/exec.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tsl';
let lab: Lab;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  await writeSyncedCluster(lab);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

/** A table of the test's own (fwlb never touches other tables): 10% of sync datagrams leaving this node dropped. */
const LOSS = `table inet fwlbtest_loss {
  chain out { type filter hook output priority 0; policy accept; udp dport 3780 numgen random mod 100 < 10 counter drop; }
}
`;

test('10% loss each way on the sync link for a minute: no link stalls, the backup holds every session, a crash loses none', async () => {
  const cfg = `${lab.stateDir}/cluster.yaml`;
  for (const fw of ['fw1', 'fw2']) lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'info']);
  await waitFor('fw1 master, fw2 synced', async () => {
    const [a, b] = [await status('fw1'), await status('fw2')];
    return a.vrrp.groups[0]?.state === 'master' && b.sync?.bulk.state === 'done' ? true : undefined;
  }, 20_000);
  for (const fw of ['fw1', 'fw2']) await lab.exec(fw, ['nft', '-f', '-'], LOSS);

  // Six waves of 20 sessions, 10 s apart, all running to the end of the minute and beyond the crash.
  const waves = 6;
  const handles = [];
  for (let w = 0; w < waves; w++) {
    handles.push(lab.spawn('client1', [process.execPath, SESSIONS_JS, '198.18.0.100', '7', '--count', '20', '--every', '200', '--seconds', String(75 - w * 10)], { log: `${lab.stateDir}/wave${w}.log` }));
    // Meanwhile the links must stay alive both ways: a stalled hello timer shows here first.
    for (let i = 0; i < 10; i++) {
      await sleep(1000);
      for (const fw of ['fw1', 'fw2']) {
        const peer = (await status(fw)).sync!.peers[0]!;
        assert.ok(peer.alive && peer.session, `${fw} lost its peer at wave ${w}: ${JSON.stringify(peer)}`);
      }
    }
  }
  // Let retransmissions catch up, then the backup must hold all 120 sessions.
  await waitFor('the master\'s queue to drain', async () => {
    const p = (await status('fw1')).sync!.peers[0]!;
    return p.inFlight === 0 && p.queuedMessages === 0 ? true : undefined;
  }, 10_000);
  const listed = await lab.exec('fw2', ['conntrack', '-L', '-p', 'tcp', '--orig-dst', '198.18.0.100', '--orig-port-dst', '7']);
  const established = listed.split('\n').filter((l) => l.includes('ESTABLISHED')).length;
  assert.ok(established >= waves * 20, `the backup holds ${established} of ${waves * 20} sessions`);
  // Converged: the same sessions (original tuple and NAT) in both tables.
  const sessionsOf = async (fw: string) =>
    (await lab.exec(fw, ['conntrack', '-L', '-p', 'tcp', '--orig-dst', '198.18.0.100', '--orig-port-dst', '7']))
      .split('\n')
      .filter((l) => l.includes('ESTABLISHED'))
      .map((l) => (/src=(\S+) dst=\S+ sport=(\d+) .*src=(\S+) dst=\S+ sport=\d+/.exec(l) ?? []).slice(1).join(' '))
      .sort();
  assert.deepEqual(await sessionsOf('fw2'), await sessionsOf('fw1'), 'the backup has the very sessions of the master, NAT included');
  // The loss shows in the counters everyone can see: status, and Prometheus.
  const c1 = (await status('fw1')).sync!.counters;
  assert.ok(c1.sender_retransmits_timeout + c1.sender_retransmits_nack > 0, `no retransmission counted at fw1: ${JSON.stringify(c1)}`);
  assert.ok(c1.records_replicated >= waves * 20, `fw1 replicated ${c1.records_replicated} records`);
  const c2 = (await status('fw2')).sync!.counters;
  assert.ok(c2.records_applied >= waves * 20 && c2.receiver_nacks_sent > 0, `fw2: ${JSON.stringify(c2)}`);
  const metrics = (await controlCall(control('fw2'), 'metrics')) as string;
  assert.match(metrics, /^fwlb_sync_events_total\{counter="records_applied",node="fw2",cluster="lab"\} [1-9]\d*$/m);
  assert.match(metrics, /^fwlb_sync_peer_alive\{peer="fw1",node="fw2",cluster="lab"\} 1$/m);
  const drops = await lab.exec('fw1', ['nft', 'list', 'table', 'inet', 'fwlbtest_loss']);
  const dropped = Number(/packets (\d+)/.exec(drops)?.[1] ?? 0);
  assert.ok(dropped > 20, `loss was injected (${dropped} datagrams dropped at fw1)`);

  await lab.crash('fw1');
  await waitFor('fw2 master', async () => ((await status('fw2')).vrrp.groups[0]?.state === 'master' ? true : undefined), 5000);
  let kept = 0;
  for (const [w, h] of handles.entries()) {
    await h.wait(60_000);
    const r = JSON.parse((await readFile(`${lab.stateDir}/wave${w}.log`, 'utf8')).trim().split('\n').pop()!) as { connected: number; kept: number; lost: number };
    assert.equal(r.connected, 20, `wave ${w}: ${JSON.stringify(r)}`);
    assert.equal(r.lost, 0, `wave ${w} lost sessions: ${JSON.stringify(r)}`);
    kept += r.kept;
  }
  assert.equal(kept, waves * 20);
});

test('a reload that changes the state sync (port, key file) is refused whole: nothing applied, the sync runs on', async () => {
  // fw2 carries on from the test above (fw1 crashed).
  const cfg = `${lab.stateDir}/cluster.yaml`;
  const text = await readFile(cfg, 'utf8');
  const st0 = await status('fw2');
  const reload = () => runRaw(process.execPath, [CLI_MAIN_JS, 'reload', '--control', control('fw2')]);
  try {
    await writeFile(cfg, text.replace('port: 3780', 'port: 3790'));
    let r = await reload();
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, /state_sync or cluster\.key_file changed \(port\)/);
    await writeFile(cfg, text.replace('key_file: cluster.key', 'key_file: missing.key'));
    r = await reload();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cluster\.key_file: cannot read .*missing\.key/);
    const st1 = await status('fw2');
    assert.equal(st1.reloads.failed, st0.reloads.failed + 2);
    assert.equal(st1.ruleset.digest, st0.ruleset.digest, 'the ruleset (with its sync port) is untouched');
    await writeFile(cfg, text);
    r = await reload();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /reloaded: ruleset unchanged/);
  } finally {
    await writeFile(cfg, text);
  }
});
