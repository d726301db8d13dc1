/**
 * Connection-state sync in a real lab (root): fwlb on two firewalls with the sync on, long
 * TCP sessions through the load-balanced VIP, then the master crashes. The backup has the
 * sessions' conntrack entries (NAT included) before the traffic arrives; none is lost.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
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
  await writeSyncedCluster(lab);
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
