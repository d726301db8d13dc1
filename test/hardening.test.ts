/**
 * Hardening (issue 12), in a real lab (root): nothing sent to fwlb stops it, bloats it or
 * moves a VIP. A synced pair (fw1 master, fw2 backup) of the sandwich lab takes, in turn:
 * 500 concurrent status requests; a client pipelining 10 MB of requests and never reading;
 * unknown and prototype command names; an alias-bomb config by `fwlb reload` and by SIGHUP;
 * VRRP adverts from a non-peer and malformed ones in a peer's name; and a minute of garbage,
 * forged, truncated and replayed datagrams at the sync port while sessions run. After each:
 * no VRRP state changed on either node, and what was refused was counted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, ECHO_SESSION_JS, SYNC_FLOOD_JS, VRRP_SEND_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { runRaw } from '../src/lib/exec.js';

const PREFIX = 'thd';
let lab: Lab;
let cfg: string;
let goodConfig: string;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;

/** Each node's VRRP: instance states and the groups' transition counts. */
async function vrrpSnapshot(): Promise<string> {
  const out: unknown[] = [];
  for (const fw of ['fw1', 'fw2']) {
    const s = await status(fw);
    out.push(fw, s.vrrp.groups.map((g) => [g.name, g.state, g.transitions, g.instances.map((i) => i.state)]));
  }
  return JSON.stringify(out);
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Child processes of `pid` right now (every thread's children). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch {
      // the thread ended
    }
  }
  return out;
}

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  cfg = await writeSyncedCluster(lab);
  goodConfig = await readFile(cfg, 'utf8');
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1')]);
  await waitFor('fw1 master', async () => ((await status('fw1').catch(() => undefined))?.vrrp.groups[0]?.state === 'master' ? true : undefined), 20_000);
  lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', control('fw2')]);
  await waitFor('fw2 ready as backup', async () => {
    const s = await status('fw2').catch(() => undefined);
    return s?.ready.ready && s.vrrp.groups[0]?.state === 'backup' ? true : undefined;
  }, 20_000);
  // Let the preempt delay and the first health checks settle.
  await sleep(2500);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

test('500 concurrent status requests: all answered within 2 s, nothing spawned, no VRRP transition', async () => {
  const vrrpBefore = await vrrpSnapshot();
  const pid = (await status('fw1')).pid;
  const spawned = new Set<number>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const c of childrenOf(pid)) spawned.add(c);
      await sleep(1);
    }
  })();
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: 500 }, () => controlCall(control('fw1'), 'status', undefined, 10_000) as Promise<NodeStatus>));
  const took = performance.now() - t0;
  sampling = false;
  await sampler;
  const failed = results.filter((r) => r.status === 'rejected');
  assert.equal(failed.length, 0, `refused: ${failed.slice(0, 3).map((r) => (r as PromiseRejectedResult).reason).join('; ')}`);
  for (const r of results) assert.equal((r as PromiseFulfilledResult<NodeStatus>).value.node, 'fw1');
  assert.ok(took < 2000, `500 answers took ${Math.round(took)} ms`);
  assert.deepEqual([...spawned], [], 'the daemon spawned child processes while answering status');
  await sleep(500);
  assert.equal(await vrrpSnapshot(), vrrpBefore, 'a VRRP state changed');
});

test('a client pipelining 10 MB of requests and never reading: the daemon stops reading it; RSS back within 20 MB after', async () => {
  const pid = (await status('fw1')).pid;
  await sleep(1000);
  const base = rssMiB(pid);
  const sock = createConnection(control('fw1'));
  await new Promise((r) => sock.once('connect', r));
  const line = JSON.stringify({ id: 1, cmd: 'status' }) + '\n';
  const chunk = line.repeat(Math.ceil((1024 * 1024) / line.length));
  let written = 0;
  for (let i = 0; i < 10; i++) {
    sock.write(chunk);
    written += chunk.length;
  }
  let peak = base;
  for (let i = 0; i < 30; i++) {
    await sleep(100);
    peak = Math.max(peak, rssMiB(pid));
  }
  // Meanwhile the daemon answers everyone else.
  assert.equal((await status('fw1')).node, 'fw1');
  sock.destroy();
  let after = Infinity;
  for (let i = 0; i < 20 && after - base > 20; i++) {
    await sleep(500);
    after = rssMiB(pid);
  }
  assert.ok(written >= 10 * 1024 * 1024);
  assert.ok(after - base <= 20, `RSS ${base.toFixed(1)} MiB before, ${peak.toFixed(1)} at the peak, ${after.toFixed(1)} after`);
  assert.ok(peak - base < 100, `RSS peak ${peak.toFixed(1)} MiB from ${base.toFixed(1)}`);
});

test('unknown and prototype command names get ERR_UNKNOWN_COMMAND, counted', async () => {
  const before = (await status('fw1')).control.refused.unknown_command ?? 0;
  for (const cmd of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'no-such-command']) {
    await assert.rejects(controlCall(control('fw1'), cmd), (e: Error & { code?: string }) => e.code === 'ERR_UNKNOWN_COMMAND', cmd);
  }
  assert.equal((await status('fw1')).control.refused.unknown_command, before + 5);
});

test('an alias-bomb config is refused in under a second by `fwlb reload` and by SIGHUP: logged, counted, old config kept', async () => {
  const s0 = await status('fw1');
  const levels = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
  let bomb = `${levels[0]}: &${levels[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
  for (let i = 1; i < levels.length; i++) bomb += `${levels[i]}: &${levels[i]} [${Array(9).fill(`*${levels[i - 1]}`).join(',')}]\n`;
  await writeFile(cfg, goodConfig + bomb);
  try {
    const t0 = performance.now();
    const r = await runRaw(process.execPath, [CLI_MAIN_JS, 'reload', '--control', control('fw1')]);
    const took = performance.now() - t0;
    assert.notEqual(r.status, 0, 'fwlb reload reports the failure');
    assert.match(r.stderr, /alias/i);
    assert.ok(took < 3000, `fwlb reload took ${Math.round(took)} ms (node start included)`);
    const s1 = await status('fw1');
    assert.equal(s1.reloads.failed, s0.reloads.failed + 1);
    assert.ok((s1.reloads.lastMs ?? Infinity) < 1000, `the daemon took ${s1.reloads.lastMs} ms to refuse it`);
    assert.equal(s1.ruleset.digest, s0.ruleset.digest, 'the ruleset is the old one');
    assert.equal(s1.config.digest, s0.config.digest, 'the config is the old one');

    process.kill(s0.pid, 'SIGHUP');
    const s2 = await waitFor('SIGHUP reload counted', async () => {
      const s = await status('fw1');
      return s.reloads.failed === s0.reloads.failed + 2 ? s : undefined;
    }, 3000);
    assert.ok((s2.reloads.lastMs ?? Infinity) < 1000, `SIGHUP: ${s2.reloads.lastMs} ms`);
    assert.equal(s2.ruleset.digest, s0.ruleset.digest);
    const log = await readFile(`${lab.stateDir}/fw1.daemon.log`, 'utf8');
    const failures = log.split('\n').filter((l) => l.includes('"reload_failed"') && /alias/i.test(l));
    assert.ok(failures.length >= 2, `both reloads logged with the reason (${failures.length} lines)`);
  } finally {
    await writeFile(cfg, goodConfig);
  }
});

test('VRRP adverts from a non-peer and malformed ones in the peer\'s name change nothing; the malformed are counted', async () => {
  const vrrpBefore = await vrrpSnapshot();
  const d0 = (await status('fw1')).vrrp.drops;
  // From the client network, a non-peer: the ruleset accepts VRRP only from the peers.
  await lab.exec('client1', [process.execPath, VRRP_SEND_JS, '--dev', 'eth0', '--src', '198.18.0.10', '--vrid', '51', '--priority', '254', '--vip', '198.18.0.100', '--count', '10', '--every-ms', '20']);
  // In fw2's name (its outside address), malformed in each way.
  const kinds = ['bad-checksum', 'bad-ttl', 'bad-version', 'bad-length', 'garbage'];
  for (const kind of kinds) {
    await lab.exec('client1', [process.execPath, VRRP_SEND_JS, '--dev', 'eth0', '--src', '198.18.0.3', '--vrid', '51', '--priority', '254', '--vip', '198.18.0.100', '--kind', kind, '--count', '5', '--every-ms', '10']);
  }
  await sleep(500);
  const d1 = (await status('fw1')).vrrp.drops;
  const grew = (k: string) => ((d1 as Record<string, number>)[k] ?? 0) - ((d0 as Record<string, number>)[k] ?? 0);
  for (const k of ['bad_checksum', 'bad_ttl', 'bad_version', 'bad_length']) assert.ok(grew(k) >= 5, `${k}: ${grew(k)} (${JSON.stringify(d1)})`);
  assert.equal(await vrrpSnapshot(), vrrpBefore, 'a VRRP state changed');
});

test('a minute of garbage, forged, truncated and replayed datagrams at the sync port: sessions, sync and VRRP unaffected', async () => {
  const vrrpBefore = await vrrpSnapshot();
  const s0 = await status('fw1');
  const sessions = Array.from({ length: 10 }, (_, i) =>
    lab.spawn('client1', [process.execPath, ECHO_SESSION_JS, '198.18.0.100', '7', '--every', '50', '--seconds', '66'], { log: `${lab.stateDir}/flood-s${i}.log` }),
  );
  await sleep(1500);
  // From the sync segment, in fw2's own name (the ruleset lets the peer's address through),
  // as fast as one process sends; and from the client network at fw1's outside address.
  const flood = lab.spawn('fw2', [process.execPath, SYNC_FLOOD_JS, '--to', '198.18.2.1', '--port', '3780', '--seconds', '60', '--sender', '1', '--key-file', `${lab.stateDir}/cluster.key`], { log: `${lab.stateDir}/flood.log` });
  const outside = lab.spawn('client1', [process.execPath, SYNC_FLOOD_JS, '--to', '198.18.0.2', '--port', '3780', '--seconds', '60', '--rate', '20000', '--kinds', 'garbage,forged'], { log: `${lab.stateDir}/flood-outside.log` });
  let maxLag = 0;
  let lagSamples = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 58_000) {
    await sleep(1000);
    const s = await status('fw1');
    const lag = s.sync?.peers[0]?.lagMs ?? 0;
    maxLag = Math.max(maxLag, lag);
    lagSamples++;
    assert.equal(s.sync?.peers[0]?.alive, true, 'the sync session with fw2 holds');
  }
  await flood.wait(15_000);
  await outside.wait(15_000);
  const sent = JSON.parse((await readFile(`${lab.stateDir}/flood.log`, 'utf8')).trim().split('\n').pop()!) as { sent: number; rate: number };
  for (const [i, s] of sessions.entries()) {
    await s.wait(20_000);
    const r = JSON.parse((await readFile(`${lab.stateDir}/flood-s${i}.log`, 'utf8')).trim().split('\n').pop()!) as { sent: number; echoed: number; error: string | null; maxGapMs: number };
    assert.equal(r.error, null, `session ${i}: ${JSON.stringify(r)}`);
    assert.equal(r.echoed, r.sent, `session ${i} lost echoes`);
    assert.ok(r.maxGapMs < 1000, `session ${i} stalled ${r.maxGapMs} ms`);
  }
  // The sessions are on the backup too: the sync kept replicating through the flood.
  const onBackup = await lab.exec('fw2', ['conntrack', '-L', '-p', 'tcp', '--orig-dst', '198.18.0.100', '--orig-port-dst', '7']);
  assert.ok(onBackup.split('\n').filter((l) => l.includes('dport=7')).length >= 10, `the backup holds the sessions:\n${onBackup}`);
  const s1 = await status('fw1');
  const d = (k: string) => ((s1.sync!.drops as Record<string, number>)[k] ?? 0) - ((s0.sync!.drops as Record<string, number>)[k] ?? 0);
  const counted = Object.keys(s1.sync!.drops).reduce((a, k) => a + d(k), 0);
  const socketDrops = s1.sync!.socketDrops ?? 0;
  const replayed = d('wrong_peer_epoch') + d('unverified_epoch') + d('old_epoch');
  process.stdout.write(`# flood: ${sent.sent} datagrams (${sent.rate}/s) from the sync segment; counted ${counted} (bad_hmac ${d('bad_hmac')}, bad_magic ${d('bad_magic')}, too_short ${d('too_short')}, bad_length ${d('bad_length')}, replayed ${replayed}), kernel drops ${socketDrops}; max sync lag ${maxLag} ms over ${lagSamples} samples\n`);
  for (const k of ['bad_hmac', 'bad_magic', 'too_short']) assert.ok(d(k) > 0, `${k} counted`);
  assert.ok(replayed > 0, 'replayed datagrams counted');
  assert.ok(counted + socketDrops >= sent.sent * 0.99, `every datagram counted, by us or the kernel: ${counted} + ${socketDrops} of ${sent.sent}`);
  assert.ok(maxLag < 1000, `sync lag reached ${maxLag} ms`);
  assert.equal(await vrrpSnapshot(), vrrpBefore, 'a VRRP state changed');
});
