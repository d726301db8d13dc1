/**
 * Liveness between fwlb nodes (issue 13), in a real lab (root): a synced pair of the sandwich
 * lab (examples/lab.yaml: 0.1 s adverts; BEATs every 15 ms, 5 missed = gone).
 *  - The sync link broken while both nodes live: the backup hears no BEAT, but the master's
 *    adverts still come: nothing moves.
 *  - The master's timing thread dies (a failpoint): the liveness starts again in a new one
 *    (the dead one's sockets closed), and the pair settles with one master.
 *  - The master crashes behind a switch (processes killed, then silent, no carrier change
 *    anywhere): the backup takes over by liveness, well before Master_Down_Interval.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { VRRP_SEND_JS } from '../src/lab/paths.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tlv';
let lab: Lab;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;

/** The group state changes a daemon logged after `since` (ms since the epoch). */
async function groupStates(fw: string, since: number): Promise<{ time: number; state: string }[]> {
  const text = await readFile(`${lab.stateDir}/${fw}.daemon.log`, 'utf8');
  const out: { time: number; state: string }[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"vrrp_group_state"')) continue;
    const j = JSON.parse(line) as { time: string; state: string };
    const time = Date.parse(j.time);
    if (time >= since) out.push({ time, state: j.state });
  }
  return out;
}

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  const cfg = await writeSyncedCluster(lab);
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1')]);
  await waitFor('fw1 master', async () => ((await status('fw1').catch(() => undefined))?.vrrp.groups[0]?.state === 'master' ? true : undefined), 20_000);
  lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', control('fw2')]);
  await waitFor('both see each other live', async () => {
    const [a, b] = [await status('fw1').catch(() => undefined), await status('fw2').catch(() => undefined)];
    return a?.liveness?.peers[0]?.state === 'up' && b?.liveness?.peers[0]?.state === 'up' && b.ready.ready && b.vrrp.groups[0]?.state === 'backup' ? true : undefined;
  }, 20_000);
  await sleep(2500); // the preempt delay and health checks settle
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

test('the sync link broken, both nodes alive: the BEATs stop but the master\'s adverts still come, so nothing moves', async () => {
  const f1 = (await status('fw1')).vrrp.groups[0]!.transitions;
  const since = Date.now();
  // Silence on fw2's sync cable with its carrier up: what a broken switch or a filter does.
  await lab.exec('fw2', ['nft', '-f', '-'], 'table inet lab_cut {\n  chain i { type filter hook input priority -400; iifname "eth2" drop; }\n  chain o { type filter hook output priority -400; oifname "eth2" drop; }\n}\n');
  try {
    await waitFor('fw2 to see fw1 gone', async () => ((await status('fw2')).liveness?.peers[0]?.state === 'down' ? true : undefined), 5000, 20);
    await sleep(3000);
    const s2 = await status('fw2');
    assert.equal(s2.vrrp.groups[0]!.state, 'backup', 'fw2 is backup again');
    assert.equal((await status('fw1')).vrrp.groups[0]!.state, 'master');
    assert.equal((await status('fw1')).vrrp.groups[0]!.transitions, f1, 'fw1 stayed master throughout');
    const states = await groupStates('fw2', since);
    assert.deepEqual(states, [], `fw2 changed state: ${JSON.stringify(states)}`);
    assert.equal(s2.vrrp.groups[0]!.transitions, (await status('fw2')).vrrp.groups[0]!.transitions);
  } finally {
    await lab.exec('fw2', ['nft', 'delete', 'table', 'inet', 'lab_cut']);
  }
  await waitFor('liveness back', async () => ((await status('fw2')).liveness?.peers[0]?.state === 'up' ? true : undefined), 5000, 20);
  // The timing of the adverts' and the BEATs' own threads reaches the metrics.
  const m1 = (await controlCall(control('fw1'), 'metrics')) as string;
  const sent = Number(/^fwlb_vrrp_adverts_total\{result="sent"[^}]*\} (\d+)$/m.exec(m1)?.[1] ?? 0);
  assert.ok(sent > 10, `fw1, master, sent ${sent} adverts from its advert thread`);
  const m2 = (await controlCall(control('fw2'), 'metrics')) as string;
  assert.match(m2, /^fwlb_liveness_beat_gap_max_seconds\{peer="fw1"[^}]*\} [0-9.e-]+$/m);
});

test('spoofed adverts from the client network (priority 254 in the backup\'s name, priority 0 in the master\'s) change nothing and are counted', async () => {
  const snapshot = async () => JSON.stringify(await Promise.all(['fw1', 'fw2'].map(async (fw) => (await status(fw)).vrrp.groups.map((g) => [g.state, g.transitions]))));
  const before = await snapshot();
  const drops = async (fw: string) => (await status(fw)).vrrp.drops as Record<string, number>;
  const [d1, d2] = [await drops('fw1'), await drops('fw2')];
  const send = (src: string, priority: number) =>
    lab.exec('client1', [process.execPath, VRRP_SEND_JS, '--dev', 'eth0', '--src', src, '--vrid', '51', '--priority', String(priority), '--vip', '198.18.0.100', '--count', '5', '--every-ms', '40']);
  await send('198.18.0.3', 254); // "fw2, priority 254": would take the VIPs from fw1
  await send('198.18.0.2', 0); // "fw1 releases": would make fw2 take over
  await sleep(500);
  assert.equal(await snapshot(), before, 'a VRRP state changed');
  const [e1, e2] = [await drops('fw1'), await drops('fw2')];
  assert.ok((e1.forged_priority ?? 0) - (d1.forged_priority ?? 0) >= 5, `fw1 refused the priority-254 adverts: ${JSON.stringify(e1)}`);
  assert.ok((e2.forged_release ?? 0) - (d2.forged_release ?? 0) >= 1, `fw2 refused the release: ${JSON.stringify(e2)}`);
});

test('the master\'s timing thread dies (failpoint liveness.thread): its sockets are closed, the liveness starts again, and the pair settles with one master and BEATs both ways', async () => {
  const cfg = `${lab.stateDir}/cluster.yaml`;
  await lab.gracefulStop('fw1');
  await waitFor('fw2 master', async () => ((await status('fw2')).vrrp.groups[0]?.state === 'master' ? true : undefined), 5000);
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1')], { env: { FWLB_FAILPOINTS: 'liveness.thread' } });
  const log = () => readFile(`${lab.stateDir}/fw1.daemon.log`, 'utf8');
  await waitFor('fw1 to log its timing thread\'s death', async () => ((await log()).includes('"liveness_failed"') ? true : undefined), 30_000, 100);
  const failed = (await log()).split('\n').find((l) => l.includes('"liveness_failed"'))!;
  assert.match(failed, /"restarted":true/, failed);
  assert.match(failed, /failpoint liveness\.thread/, failed);
  // Settled: fw1 master again (it preempts), fw2 backup, each hearing the other's BEATs anew.
  await waitFor('one master, BEATs both ways', async () => {
    const [a, b] = [await status('fw1'), await status('fw2')];
    const up = a.liveness?.peers[0]?.state === 'up' && b.liveness?.peers[0]?.state === 'up';
    return up && a.vrrp.groups[0]?.state === 'master' && b.vrrp.groups[0]?.state === 'backup' && b.ready.ready ? true : undefined;
  }, 20_000, 100);
  const heard = async () => (await status('fw2')).liveness!.peers[0]!.beats;
  const b0 = await heard();
  await sleep(500);
  assert.ok((await heard()) > b0, 'fw1\'s BEATs keep coming from its new thread');
  const vips = async (fw: string) => (await lab.exec(fw, ['ip', '-4', '-o', 'addr', 'show'])).includes('198.18.0.100/');
  assert.deepEqual([await vips('fw1'), await vips('fw2')], [true, false], 'the VIP on fw1 alone');
  assert.doesNotMatch(await log(), /EADDRINUSE/, 'the new thread bound the port the dead one held');
  // Counted where an operator looks: status and the metrics' counters.
  const thread = (await status('fw1')).liveness!.thread;
  assert.ok(thread.failures >= 1 && thread.restarts >= 1, JSON.stringify(thread));
  assert.match(thread.lastError ?? '', /failpoint liveness\.thread/);
});

test('the master crashes behind a switch (killed, then silent, no carrier change): the backup takes over by liveness', async () => {
  await waitFor('fw2 synced and backup', async () => {
    const s = await status('fw2');
    return s.ready.ready && s.vrrp.groups[0]?.state === 'backup' && s.liveness?.peers[0]?.state === 'up' ? true : undefined;
  }, 10_000);
  const since = Date.now();
  const t0 = performance.now();
  await lab.crashSwitched('fw1');
  const s2 = await waitFor('fw2 master', async () => {
    const s = await status('fw2');
    return s.vrrp.groups[0]?.state === 'master' ? s : undefined;
  }, 5000, 10);
  const seen = Math.round(performance.now() - t0);
  const states = await groupStates('fw2', since);
  const takeover = (states.find((s) => s.state === 'master')?.time ?? NaN) - since;
  process.stdout.write(`# fw2 master ${takeover} ms after the kill began (seen by polling at ${seen} ms)\n`);
  assert.equal(s2.liveness?.peers[0]?.state, 'down');
  assert.ok((s2.liveness?.peers[0]?.released ?? 0) >= 2, `liveness released both instances: ${JSON.stringify(s2.liveness)}`);
  const log = await readFile(`${lab.stateDir}/fw2.daemon.log`, 'utf8');
  assert.match(log, /"peer_gone"/);
});
