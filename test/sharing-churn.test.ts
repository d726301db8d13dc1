/**
 * Active-active under churn (root; issue 20): three fwlb nodes share the traffic while, for
 * 5 minutes (FWLB_SHARING_TORTURE_SECONDS; schedule from FWLB_SHARING_TORTURE_SEED), one
 * random node at a time crashes with its links, has its daemon killed with -9, stops
 * gracefully, or loses the carrier of a shared link; the survivors take its buckets, it
 * comes back and takes its own again (src/lab/sharing-churn.ts). Meanwhile 200 long TCP
 * sessions and 600 UDP flows from two clients through the shared address: no TCP session and
 * no UDP flow may be lost. The worst stall and the datagrams lost per kind of failure are
 * printed (bench/sharing-churn.ts runs it longer); on a loss the journal and every node's
 * log are kept in /var/tmp/fwlb-churn/ (the path is in the message).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import type { ProcessHandle } from '../src/lab/processes.js';
import { attribute, byKind, churnClients, ownedBuckets, SHARING_FAILURES, sharingTortureLoop, type SharingSystem } from '../src/lab/sharing-churn.js';

const PREFIX = 'tshc';
const FWS = ['fw1', 'fw2', 'fw3'] as const;
const VIP = '198.18.0.100';
const TCP_PER_CLIENT = 100;
const UDP_PER_CLIENT = 300;
let lab: Lab;
let cfg: string;

const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'trio' });
  cfg = await writeSyncedCluster(lab, await readFile(`${REPO_ROOT}/examples/active-active.yaml`, 'utf8'));
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});


/** Every live node sees exactly the live ones as members, and their kernels split every bucket. */
async function converged(live: readonly string[]): Promise<boolean> {
  for (const fw of live) {
    const s = (await status(fw).catch(() => null))?.sharing;
    if (!s || s.members.join() !== [...live].sort().join()) return false;
  }
  const sets = await Promise.all(live.map((fw) => ownedBuckets(lab, fw)));
  const total = sets.reduce((n, s) => n + s.size, 0);
  const union = new Set(sets.flatMap((s) => [...s]));
  return total === 4096 && union.size === 4096;
}

async function describe(): Promise<string> {
  const out: string[] = [];
  for (const fw of FWS) {
    const st = await status(fw).catch((e: Error) => e.message);
    if (typeof st === 'string') out.push(`${fw}: ${st}`);
    else out.push(`${fw}: ready=${st.ready.ready} (${st.ready.reason}); sharing ${JSON.stringify({ members: st.sharing?.members, owned: st.sharing?.owned, ready: st.sharing?.ready, linksDown: st.sharing?.linksDown })}`);
    const log = await readFile(`${lab.stateDir}/${fw}.daemon.log`, 'utf8').catch(() => '');
    out.push(...log.trim().split('\n').slice(-6).map((l) => `  ${fw} log: ${l.slice(0, 300)}`));
  }
  return out.join('\n');
}

async function keepEvidence(tag: string): Promise<string> {
  const dir = `/var/tmp/fwlb-churn/${tag}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await mkdir(dir, { recursive: true });
  await cp(lab.stateDir, dir, { recursive: true, filter: (src) => !src.endsWith('.sock') });
  return dir;
}

test('three sharing nodes under 5 minutes of random crash / kill -9 / graceful stop / carrier loss: no TCP session and no UDP flow lost', async () => {
  const seconds = Number(process.env.FWLB_SHARING_TORTURE_SECONDS ?? 300);
  const seed = Number(process.env.FWLB_SHARING_TORTURE_SEED ?? Date.now() % 100000);
  const journal = `${lab.stateDir}/churn.journal`;
  await appendFile(journal, `${new Date().toISOString()} sharing torture seed ${seed}: ${seconds} s\n`);
  const start = (fw: string): ProcessHandle => lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'info']);
  for (const fw of FWS) start(fw);
  const sys: SharingSystem = {
    nodes: FWS,
    start: async (fw) => void start(fw),
    stop: async (fw) => void (await lab.gracefulStop(fw, 30_000)),
    converged,
    describe,
  };
  // Sessions from both clients, ended once the loop is over (20 s for the last failure's
  // retransmissions to recover before a session counts as lost).
  const clients = churnClients(lab, { clients: ['client1', 'client2'], vip: VIP, tcp: 2 * TCP_PER_CLIENT, udp: 2 * UDP_PER_CLIENT });
  const results = clients.end;
  // Every node a member and the sessions flowing before the first failure.
  await sleep(3000);
  let failures;
  try {
    failures = await sharingTortureLoop(lab, sys, { seconds, seed, journal });
  } catch (e) {
    await results().catch(() => undefined);
    throw new Error(`${(e as Error).message}\n(journal and logs kept in ${await keepEvidence(`sharing-seed-${seed}`)})`);
  }
  await sleep(2000);
  const res = await results();
  const gaps = res.flatMap((r) => r.gaps ?? []);
  const lostAt = res.flatMap((r) => r.lostAt ?? []);
  const costs = attribute(failures, gaps, lostAt);
  const kinds = byKind(failures, costs.perFailure, SHARING_FAILURES);
  for (const [k, v] of Object.entries(kinds)) console.log(`# ${k}: ${v.count} failures, worst TCP stall ${v.worstStallMs} ms (rejoins: ${v.rejoin.worstStallMs} ms), UDP datagrams lost ${v.datagramsLost} (rejoins: ${v.rejoin.datagramsLost}), slowest bucket move ${v.worstMoveMs} ms`);
  const worst = failures.map((f, i) => ({ f, c: costs.perFailure[i]! })).sort((a, b) => b.c.worstStallMs - a.c.worstStallMs)[0];
  if (worst) console.log(`# worst: ${worst.c.worstStallMs} ms at ${worst.f.kind}${worst.f.link ? ` ${worst.f.link}` : ''} ${worst.f.node} (${new Date(worst.f.atMs).toISOString()}; rejoin from ${new Date(worst.f.rejoinAtMs).toISOString()})`);
  const lost = res.filter((r) => r.lost > 0 || r.connected !== r.sessions);
  const kept = lost.length ? await keepEvidence(`sharing-seed-${seed}`) : '';
  assert.ok(failures.length >= Math.floor(seconds / 15), `only ${failures.length} failures in ${seconds} s`);
  assert.deepEqual(lost, [], `seed ${seed}: lost after ${failures.length} failures (kept in ${kept})`);
  for (const fw of FWS) if (lab.daemon(fw)) await lab.gracefulStop(fw, 30_000).catch(() => undefined);
});
