/**
 * No session lost under churn (root): a pair of fwlb firewalls with the state sync on, 200
 * long TCP sessions through the load-balanced VIP, and nodes failing and coming back.
 *
 *  1. The logged case: the backup is restarted, and the master is stopped 2.7 s later,
 *     while the backup is still starting: the master waits for it to be ready.
 *  2. Both nodes restart at once, one of them with an empty table: the one that lost its
 *     state waits for the one that held it, takes its table, and the sessions survive.
 *  3. A torture loop: crash, link down or graceful stop of alternating nodes, each failure
 *     2 s after the previous node reports ready, for 5 minutes (FWLB_TORTURE_SECONDS; the
 *     schedule from FWLB_TORTURE_SEED). After every failure: exactly one master, holding
 *     every VIP, whose kernel table holds the sessions; a takeover that does not happen fails
 *     the test with what each node said. The sessions end only once the last failure has
 *     settled, with time to recover from it.
 *
 * Every failure is logged with its time, so a lost session can be placed in the daemons' logs;
 * on any failure the lab's journal, both daemons' logs and their tables are kept in
 * /var/tmp/fwlb-churn/ (the path is in the message).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus, Readiness } from '../src/services/node-daemon.js';
import type { ProcessHandle } from '../src/lab/processes.js';
import { waitFor } from '../src/lib/wait.js';
import { tortureLoop, type ChurnSystem } from '../src/lab/churn.js';

const PREFIX = 'tch';
const SESSIONS = 200;
const FWS = ['fw1', 'fw2'] as const;
type Fw = (typeof FWS)[number];
let lab: Lab;
let cfg: string;
const VIPS = { eth0: '198.18.0.100', eth1: '198.18.1.1' } as const;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
const readiness = (fw: string) => controlCall(control(fw), 'ready') as Promise<Readiness>;
const journal = (line: string) => appendFile(`${lab.stateDir}/churn.journal`, `${new Date().toISOString()} ${line}\n`);

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  cfg = await writeSyncedCluster(lab);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

function start(fw: Fw): ProcessHandle {
  return lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'info']);
}

/** Until the node says it is ready (its socket may not be open yet). */
async function waitReady(fw: Fw, timeoutMs = 30_000): Promise<Readiness> {
  return waitFor(`${fw} ready`, async () => {
    const r = await readiness(fw);
    return r.ready ? r : undefined;
  }, timeoutMs, 20);
}

async function masterOf(): Promise<Fw | undefined> {
  for (const fw of FWS) {
    const st = await status(fw).catch(() => null);
    if (st?.vrrp.groups[0]?.state === 'master') return fw;
  }
  return undefined;
}

/** Both daemons up, fw1 master, fw2 synced; a clean conntrack state on both. */
async function freshPair(): Promise<void> {
  for (const fw of FWS) if (!lab.daemon(fw)) start(fw);
  for (const fw of FWS) await waitReady(fw);
  await waitFor('fw1 master', async () => ((await masterOf()) === 'fw1' ? true : undefined), 15_000);
}

async function stopAll(): Promise<void> {
  for (const fw of FWS) if (lab.daemon(fw)) await lab.gracefulStop(fw, 30_000).catch(() => undefined);
}

interface SessionsResult {
  connected: number;
  kept: number;
  lost: number;
  worstStallMs: number | null;
  stalls: number[];
}

/** When sessions were lost: both nodes' conntrack tables, kept beside the logs to find them. */
async function keepTables(r: SessionsResult, tag: string): Promise<void> {
  if (r.lost === 0) return;
  for (const fw of FWS) {
    const t = await lab.exec(fw, ['conntrack', '-L', '-p', 'tcp', '--dport', '7']).catch((e: Error) => e.message);
    await appendFile(`${lab.stateDir}/${tag}.${fw}.conntrack`, t);
  }
}

function sessions(seconds: number, log: string, graceMs = 3000): { done: () => Promise<SessionsResult>; end: () => Promise<SessionsResult> } {
  const h = lab.spawn('client1', [process.execPath, SESSIONS_JS, '198.18.0.100', '7', '--count', String(SESSIONS), '--every', '50', '--seconds', String(seconds), '--grace', String(graceMs)], { log });
  const done = async () => {
    await h.wait((seconds + 60) * 1000 + graceMs);
    return JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as SessionsResult;
  };
  return {
    done,
    /** Ends the sending now; the report comes when every session has its echoes, or after the grace. */
    end: async () => {
      h.kill('SIGUSR2');
      return done();
    },
  };
}

/** The sessions' entries in a node's kernel table (established, to the VIP's echo port). */
async function sessionEntries(fw: Fw): Promise<number> {
  const t = await lab.exec(fw, ['conntrack', '-L', '-p', 'tcp', '-d', VIPS.eth0, '--dport', '7', '--state', 'ESTABLISHED']).catch(() => '');
  return t.split('\n').filter((l) => l.startsWith('tcp')).length;
}

/** The VIPs a node holds in its kernel. */
async function vipsOn(fw: Fw): Promise<string[]> {
  const out = JSON.parse(await lab.exec(fw, ['ip', '-j', '-4', 'addr', 'show'])) as { ifname: string; addr_info: { local: string }[] }[];
  const held: string[] = [];
  for (const l of out) for (const a of l.addr_info) if ((VIPS as Record<string, string>)[l.ifname] === a.local) held.push(a.local);
  return held.sort();
}

/** What each node says: role per group, readiness, bulk sync, VIPs held, session entries; its log's tail. */
async function describeNodes(): Promise<string> {
  const out: string[] = [];
  for (const fw of FWS) {
    const st = await status(fw).catch((e: Error) => e.message);
    const rd = await readiness(fw).catch((e: Error) => ({ ready: false, reason: e.message }) as Readiness);
    const roles = typeof st === 'string' ? st : st.vrrp.groups.map((g) => `${g.name}=${g.state}`).join(',');
    const bulk = typeof st === 'string' || !st.sync ? '-' : JSON.stringify(st.sync.bulk);
    out.push(`${fw}: ${roles}; ready=${rd.ready} (${rd.reason}); bulk ${bulk}; VIPs ${(await vipsOn(fw).catch(() => [])).join(' ') || 'none'}; session entries ${await sessionEntries(fw)}`);
    const log = await readFile(`${lab.stateDir}/${fw}.daemon.log`, 'utf8').catch(() => '');
    out.push(...log.trim().split('\n').slice(-8).map((l) => `  ${fw} log: ${l.slice(0, 300)}`));
  }
  return out.join('\n');
}

/**
 * After a failure has settled: exactly one master (of every group), holding every VIP, the
 * other holding none, and the master's kernel table holds the sessions. A preemption may be
 * under way (preempt delay 2 s): the state must be reached within 8 s, or the test fails with
 * what each node said.
 */
async function checkOneMaster(after: string): Promise<void> {
  let last = '';
  try {
    await waitFor('one master with every VIP and the sessions', async () => {
      const st = await Promise.all(FWS.map((fw) => status(fw).catch(() => null)));
      const masters = FWS.filter((_, i) => st[i]?.vrrp.groups.length && st[i]!.vrrp.groups.every((g) => g.state === 'master'));
      if (masters.length !== 1) return void (last = `masters: [${masters.join(', ')}]`);
      const m = masters[0]!;
      const o = FWS.find((fw) => fw !== m)!;
      const [vm, vo] = [await vipsOn(m), await vipsOn(o)];
      if (vm.length !== 2) return void (last = `master ${m} holds VIPs [${vm.join(' ')}]`);
      if (vo.length !== 0) return void (last = `backup ${o} holds VIPs [${vo.join(' ')}]`);
      const n = await sessionEntries(m);
      if (n < SESSIONS) return void (last = `master ${m} holds ${n} of ${SESSIONS} session entries`);
      return true;
    }, 8000, 100);
  } catch {
    throw new Error(`after "${after}": ${last}\n${await describeNodes()}`);
  }
}

/** Keeps the lab's journal, logs and tables where the lab's removal does not reach; returns the folder. */
async function keepEvidence(tag: string): Promise<string> {
  const dir = `/var/tmp/fwlb-churn/${tag}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await mkdir(dir, { recursive: true });
  for (const fw of FWS) await appendFile(`${dir}/${fw}.conntrack`, await lab.exec(fw, ['conntrack', '-L']).catch((e: Error) => e.message));
  await cp(lab.stateDir, dir, { recursive: true, filter: (src) => !src.endsWith('.sock') });
  return dir;
}

for (const delayMs of [2700, 100]) {
  test(`the logged case: the backup restarts, the master is stopped ${delayMs} ms later; it hands over only to a ready backup, no session is lost`, async () => {
    await freshPair();
    const log = `${lab.stateDir}/logged-${delayMs}.log`;
    const s = sessions(25, log);
    await sleep(3000);
    await journal(`logged case: graceful restart of fw2 (backup), SIGTERM to fw1 ${delayMs} ms later`);
    await lab.gracefulStop('fw2');
    start('fw2');
    await sleep(delayMs);
    const before = await readiness('fw2').catch(() => ({ ready: false, reason: 'no answer yet' }) as Readiness);
    const mark = (await readFile(`${lab.stateDir}/fw1.daemon.log`, 'utf8')).length;
    await lab.gracefulStop('fw1', 30_000);
    const fw1log = (await readFile(`${lab.stateDir}/fw1.daemon.log`, 'utf8')).slice(mark);
    if (!before.ready) assert.match(fw1log, /"event":"stop_wait_done"/, `fw1 did not wait for fw2 to be ready (fw2 was: ${before.reason})`);
    assert.doesNotMatch(fw1log, /"event":"stop_wait_timeout"/);
    await waitFor('fw2 master', async () => ((await masterOf()) === 'fw2' ? true : undefined), 10_000);
    start('fw1');
    await waitReady('fw1');
    const r = await s.done();
    assert.equal(r.connected, SESSIONS);
    assert.equal(r.lost, 0, `sessions lost: ${JSON.stringify(r)}`);
    await stopAll();
  });
}

test('both nodes restart at once, fw1 with an empty table: it waits for fw2, takes its table, wins the election, and no session is lost', async () => {
  await freshPair();
  const s = sessions(40, `${lab.stateDir}/both.log`);
  await sleep(3000);
  // Both daemons die (the kernel forwards on meanwhile); fw1's machine then reboots and
  // comes back with an empty conntrack table; fw2 keeps what its kernel holds.
  await journal('both: kill -9 of both daemons, fw1 reboots (empty table)');
  await lab.daemonKill('fw1');
  await lab.daemonKill('fw2');
  await lab.recover('fw1');
  // The client and the servers forget fw1's MAC for the VIPs (a rebooted node no longer
  // answers for them), so their retransmissions stop landing on fw1 and filling its new
  // table with picked-up entries before fwlb runs. One delete of each VIP's entry, not
  // `ip neigh flush all`: under the sessions' traffic the kernel makes entries again while a
  // flush runs, and iproute2 gives up after 10 rounds with exit 255 ("Flush not complete"),
  // which failed this test in a clean-clone run.
  for (const [h, vip] of [['client1', '198.18.0.100'], ['web1', '198.18.1.1'], ['web2', '198.18.1.1']] as const) {
    const r = await lab.execRaw(h, ['ip', 'neigh', 'del', vip, 'dev', 'eth0']);
    assert.ok(r.status === 0 || /No such file|Cannot find/i.test(r.stderr), `${h}: ip neigh del ${vip}: ${r.stderr}`);
  }
  await sleep(200);
  await lab.exec('fw1', ['conntrack', '-F']);
  const count = (fw: Fw) => lab.exec(fw, ['conntrack', '-C']).then((t) => Number(t.trim()));
  // The kernel frees flushed entries a little later (its count lags the flush).
  await waitFor('fw1 with an empty table', async () => ((await count('fw1')) === 0 ? true : undefined), 10_000, 100);
  assert.ok((await count('fw2')) >= SESSIONS, 'fw2 holds the sessions');
  // fw1 first, fw2 four seconds later: the empty fw1 must not go on alone meanwhile.
  start('fw1');
  await sleep(4000);
  const early = await readiness('fw1');
  assert.equal(early.ready, false, `fw1, empty, went on alone before its peer came: ${early.reason}`);
  start('fw2');
  await journal('both: fw1 started, fw2 started 4 s later');
  for (const fw of FWS) await waitReady(fw);
  await waitFor('fw1 master', async () => ((await masterOf()) === 'fw1' ? true : undefined), 15_000);
  assert.ok((await count('fw1')) >= SESSIONS, 'fw1 has the sessions from fw2');
  const r = await s.done();
  await keepTables(r, 'both');
  assert.equal(r.connected, SESSIONS);
  assert.equal(r.lost, 0, `sessions lost: ${JSON.stringify(r)}`);
  await stopAll();
});

test('torture: crash, link down or graceful stop of alternating nodes, 2 s after the last one is ready; after each one master with every VIP and the sessions; no session lost', async () => {
  const seconds = Number(process.env.FWLB_TORTURE_SECONDS ?? 300);
  const seed = Number(process.env.FWLB_TORTURE_SEED ?? Date.now() % 100000);
  await freshPair();
  // The sessions run until the loop is over and its last failure settled (ended by signal);
  // then 20 s for a session still retransmitting to recover before it counts as lost.
  const s = sessions(seconds + 600, `${lab.stateDir}/torture.log`, 20_000);
  await sleep(3000);
  const sys: ChurnSystem = {
    label: 'fwlb',
    start: async (fw) => void start(fw),
    stop: async (fw) => void (await lab.gracefulStop(fw, 30_000)),
    ready: async (fw) => (await readiness(fw)).ready,
    master: masterOf,
    describe: describeNodes,
  };
  await journal(`torture seed ${seed}: ${seconds} s`);
  let done: string[];
  try {
    done = await tortureLoop(lab, sys, { seconds, seed, journal: `${lab.stateDir}/churn.journal`, strictTakeover: true, check: checkOneMaster });
  } catch (e) {
    await s.end().catch(() => undefined);
    const kept = await keepEvidence(`seed-${seed}`);
    throw new Error(`${(e as Error).message}\n(journal, logs and tables kept in ${kept})`);
  }
  await checkOneMaster('the last failure');
  const r = await s.end();
  await journal(`torture seed ${seed} over: ${done.length} failures, ${JSON.stringify(r)}`);
  console.log(`# torture seed ${seed}: ${done.length} failures (${done.filter((d) => d.includes('(master)')).length} of the master), ${r.kept}/${SESSIONS} sessions kept, worst stall ${r.worstStallMs} ms`);
  const kept = r.lost > 0 || r.connected !== SESSIONS ? await keepEvidence(`seed-${seed}`) : '';
  assert.ok(done.length >= Math.floor(seconds / 15), `only ${done.length} failures in ${seconds} s`);
  assert.equal(r.connected, SESSIONS);
  assert.equal(r.lost, 0, `seed ${seed}: ${r.lost} sessions lost after ${done.length} failures (${done.join(', ')}): ${JSON.stringify(r)} (journal, logs and tables kept in ${kept})`);
  await stopAll();
});
