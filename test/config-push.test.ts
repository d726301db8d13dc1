/**
 * One config, every node, in a real lab (root; issue 24): the pair of examples/lab.yaml with
 * its state sync, each node with its own copy of the cluster file (as on two machines). A
 * config pushed from the backup is applied by both (their rulesets carry the new rule, their
 * files are the pushed one); a node down during a push catches up when it is back; frames
 * that are not signed with the cluster's key, a replay of the running version and an older
 * version are refused and counted; a push with --confirm and no confirm is rolled back on
 * both nodes, while 200 TCP sessions through the VIP live through both changes; a drain made
 * with --cluster holds on both and survives a restart of each; a config of a few MiB (its
 * block list) is pushed whole.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, REPO_ROOT, SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tcf';
const VIP = '198.18.0.100';
const RULE = "    - allow: { proto: tcp, port: 8081, from: outside, to: 198.18.1.0/24, comment: pushed rule }\n";
let lab: Lab;
let base: string;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const file = (fw: string) => `${lab.stateDir}/${fw}.yaml`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
const version = async (fw: string) => (await status(fw).catch(() => undefined))?.config.version;
const fwlb = async (args: string[]) => {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI_MAIN_JS, ...args], { timeout: 60_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? 1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
};
const start = (fw: string) => lab.startDaemon(fw, ['run', '-c', file(fw), '--node', fw, '--control', control(fw), '--log-level', 'debug']);
const waitReady = (fw: string) => waitFor(`${fw} ready`, async () => ((await controlCall(control(fw), 'ready').catch(() => undefined)) as { ready?: boolean } | undefined)?.ready || undefined, 20_000);
const rulesetHas = async (fw: string, text: string) => (await lab.exec(fw, ['nft', 'list', 'ruleset'])).includes(text);

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  const cfg = await writeSyncedCluster(lab);
  base = await readFile(cfg, 'utf8');
  for (const fw of ['fw1', 'fw2']) await copyFile(cfg, file(fw));
  start('fw1');
  await waitReady('fw1');
  start('fw2');
  await waitReady('fw2');
  await waitFor('fw1 master', async () => ((await status('fw1')).vrrp.groups[0]?.state === 'master' ? true : undefined), 10_000);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

test('a config pushed from the backup reaches the master; both apply it (ruleset and file), both show its version and each other in step', async () => {
  assert.deepEqual([await version('fw1'), await version('fw2')], [0, 0]);
  const next = `${lab.stateDir}/next.yaml`;
  await writeFile(next, base.replace('    - allow: { proto: tcp, port: 7,', `${RULE}    - allow: { proto: tcp, port: 7,`));
  const r = await fwlb(['config', 'push', next, '--control', control('fw2')]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /config version 1 /);
  assert.match(r.out, /fw1: applied/);
  assert.match(r.out, /fw2: applied/);
  for (const fw of ['fw1', 'fw2']) {
    assert.ok(await rulesetHas(fw, 'pushed rule'), `${fw}'s ruleset has the pushed rule`);
    assert.equal(await readFile(file(fw), 'utf8'), await readFile(next, 'utf8'), `${fw}'s file is the pushed one`);
  }
  await waitFor('each node sees the other in step', async () => {
    const [a, b] = [await status('fw1'), await status('fw2')];
    return a.config.distribution?.peers.fw2?.state === 'same' && b.config.distribution?.peers.fw1?.state === 'same' ? true : undefined;
  }, 10_000);
  const st = await status('fw1');
  assert.equal(st.config.version, 1);
  assert.equal(st.config.hash, (await status('fw2')).config.hash);
  assert.match(await (await fwlb(['status', '--control', control('fw1')])).out, /version 1 \([0-9a-f]{12}\); peers: fw2 same/);
  assert.match((await fwlb(["metrics", "--control", control("fw1")])).out, /fwlb_config_version\{[^}]*\} 1\n/);
});

test('a node down during a push is reported pending, never waited for, and catches up when it is back', async () => {
  await lab.crash('fw2');
  const next = `${lab.stateDir}/next2.yaml`;
  await writeFile(next, base);
  const t0 = Date.now();
  const r = await fwlb(['config', 'push', next, '--control', control('fw1')]);
  const tookMs = Date.now() - t0;
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /config version 2 /);
  assert.match(r.out, /fw2: unreachable, pending/);
  assert.ok(tookMs < 5000, `the push did not wait for the node that is down (${tookMs} ms)`);
  assert.equal(await rulesetHas('fw1', 'pushed rule'), false);
  await lab.recover('fw2');
  start('fw2');
  await waitFor('fw2 on version 2', async () => ((await version('fw2')) === 2 ? true : undefined), 20_000);
  await waitFor('the pushed rule gone from fw2 too', async () => ((await rulesetHas('fw2', 'pushed rule')) ? undefined : true), 5000);
  assert.equal(await readFile(file('fw2'), 'utf8'), base);
  await waitReady('fw2');
});

test('frames not signed with the cluster key, a replay of the running version and an older version are refused and counted', async () => {
  // From fw2's namespace (the sync link), with the lab's key: the running bundle again, the
  // one before it, and a push signed with another key.
  const script = `
    import { readFile } from 'node:fs/promises';
    import { deriveConfigKey, FrameType } from '${REPO_ROOT}/dist/src/codec/config/frame.js';
    import { requestConfigLink } from '${REPO_ROOT}/dist/src/adapters/config-link.js';
    const [keyFile, stateDir] = process.argv.slice(1);
    const key = deriveConfigKey(await readFile(keyFile));
    const send = (k, payload) => requestConfigLink({ host: '198.18.2.1', port: 3780, key: k, type: FrameType.PUSH, payload, timeoutMs: 3000, localAddress: '198.18.2.2' }).then((b) => b.toString(), (e) => 'error: ' + e.message);
    const out = {
      replayed: await send(key, await readFile(stateDir + '/config-current.bundle')),
      older: await send(key, await readFile(stateDir + '/config-previous.bundle')),
      forged: await send(Buffer.alloc(32, 1), await readFile(stateDir + '/config-current.bundle')),
    };
    console.log(JSON.stringify(out));`;
  const out = JSON.parse(await lab.exec('fw2', [process.execPath, '--input-type=module', '-e', script, `${lab.stateDir}/cluster.key`, `${lab.stateDir}/fw2-state`])) as Record<string, string>;
  assert.match(out.replayed!, /"reason":"replayed"/, JSON.stringify(out));
  assert.match(out.older!, /"reason":"older"/, JSON.stringify(out));
  assert.match(out.forged!, /^error: /, 'no answer to a frame signed with another key');
  const d = (await status('fw1')).config.distribution!;
  assert.equal(d.counters.refused.replayed, 1);
  assert.equal(d.counters.refused.older, 1);
  assert.equal(d.link?.refused.bad_hmac, 1);
  assert.equal((await status('fw1')).config.version, 2, 'nothing applied');
});

test('a push with --confirm and no confirm is rolled back on every node; 200 sessions through the VIP live through both changes', async () => {
  const log = `${lab.stateDir}/sessions.log`;
  const sessions = lab.spawn('client1', [process.execPath, SESSIONS_JS, VIP, '7', '--count', '200', '--every', '100', '--seconds', '14', '--grace', '3000'], { log });
  await waitFor('the sessions in fw1\'s table', async () => (Number((await lab.exec('fw1', ['conntrack', '-C'])).trim()) >= 200 ? true : undefined), 10_000);
  const next = `${lab.stateDir}/risky.yaml`;
  await writeFile(next, base.replace('    - allow: { proto: tcp, port: 7,', `${RULE}    - allow: { proto: tcp, port: 7,`));
  const r = await fwlb(['config', 'push', next, '--confirm', '4s', '--control', control('fw2')]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /config version 3 .*to be confirmed within 4s/);
  for (const fw of ['fw1', 'fw2']) assert.ok(await rulesetHas(fw, 'pushed rule'), `${fw} runs version 3`);
  assert.match((await fwlb(['status', '--control', control('fw1')])).out, /NOT CONFIRMED: rolls back in \d s/);
  const t0 = Date.now();
  await waitFor('both nodes rolled back', async () => ((await version('fw1')) === 4 && (await version('fw2')) === 4 ? true : undefined), 10_000);
  const rolledMs = Date.now() - t0;
  for (const fw of ['fw1', 'fw2']) {
    assert.equal(await rulesetHas(fw, 'pushed rule'), false, `${fw} back on the rules before`);
    assert.equal(await readFile(file(fw), 'utf8'), base, `${fw}'s file back too`);
    assert.ok(((await status(fw)).config.distribution?.counters.refused.conflict ?? 0) === 0, 'the two rollbacks are one version');
  }
  process.stdout.write(`# rolled back ${rolledMs} ms after the status showed the confirm pending (confirm time 4 s)\n`);
  await sessions.wait(30_000);
  const s = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { kept: number; lost: number; worstStallMs: number };
  assert.equal(s.kept, 200, JSON.stringify({ ...s, stalls: undefined }));
});

test('a drain made with --cluster holds on every node and survives a restart of each', async () => {
  const admin = async (fw: string) => (await status(fw)).services.find((s) => s.name === 'web')?.backends.find((b) => b.name === 'web1')?.admin;
  const r = await fwlb(['backend', 'drain', 'web', 'web1', '--cluster', '--control', control('fw1')]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /"fw2":\{"outcome":"applied"/);
  assert.deepEqual([await admin('fw1'), await admin('fw2')], ['drain', 'drain']);
  for (const fw of ['fw2', 'fw1']) {
    await lab.gracefulStop(fw);
    start(fw);
    await waitReady(fw);
    assert.equal(await admin(fw), 'drain', `${fw} came back with web1 drained (its state file)`);
  }
  const other = await admin('fw2');
  assert.equal(other, 'drain');
  const st = (await status('fw1')).config.distribution;
  assert.equal(st?.runtime?.version, 1, 'the cluster runtime version');
  const m = (await fwlb(['metrics', '--control', control('fw2')])).out;
  assert.match(m, /fwlb_runtime_version\{[^}]*\} 1\n/);
  assert.match(m, /fwlb_runtime_changes\{[^}]*scope="cluster"[^}]*\} 1\n/, 'the drain, kept as a cluster change');
});

test('a config of a few MiB (a block list of 100,000 IPv6 prefixes beside it) is pushed whole: both nodes block them', async () => {
  const lines: string[] = [];
  for (let i = 0; i < 100_000; i++) lines.push(`2001:2:ff:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/80 # entry ${i}`);
  const list = lines.join('\n') + '\n';
  assert.ok(list.length > 3 * 1024 * 1024, `${list.length} bytes`);
  await writeFile(`${lab.stateDir}/blocks.txt`, list);
  const next = `${lab.stateDir}/big.yaml`;
  await writeFile(next, base.replace('firewall:\n', 'firewall:\n  block_files: [blocks.txt]\n'));
  // The list travels with the push: each node reads it from the pushed bytes, then writes it beside its file.
  const r = await fwlb(['config', 'push', next, '--control', control('fw1')]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /fw2: applied/);
  for (const fw of ['fw1', 'fw2']) {
    const st = await status(fw);
    assert.equal(st.ruleset.blockedPrefixes, 100_000, `${fw} blocks every prefix of the list`);
  }
});
