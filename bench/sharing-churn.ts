/**
 * Churn under sharing (issue 20): three fwlb nodes share the traffic on the trio lab while one
 * random node at a time crashes with its links, has its daemon killed with -9, stops
 * gracefully, or loses the carrier of a shared link, comes back and takes its buckets again
 * (src/lab/sharing-churn.ts), for --seconds. 200 long TCP sessions (every 50 ms) and 600 UDP
 * flows (every 200 ms) from two clients through the shared address. Printed per kind of
 * failure: how many, the worst TCP stall that began in its window (from the failure until the
 * next; in brackets, what of it began once the node was brought back: its rejoin), the UDP
 * datagrams sent in its window and never answered (the same), the slowest move of its
 * buckets to the survivors (polled from outside: the kernels' owned sets); and the sessions
 * and flows kept over the whole run.
 *
 * Beside it, the peer: keepalived (v3, 0.1 s) + conntrackd (FTFW, syncing TCP and UDP), active-standby on the
 * sandwich lab, through src/lab/churn.ts's loop (crash, link down, graceful stop of alternating
 * nodes) for the same time, under the same sessions and flows from one client, measured by
 * the same clients and charged to failures the same way. (The peer cannot share: its figures
 * are for the pair it can build.)
 *
 *   node dist/bench/sharing-churn.js [--seconds 600] [--seed N] [--systems fwlb,peer] [--prefix bshc] [--figures FILE]
 *
 * Prints figures; never asserts.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { attribute, byKind, churnClients, ownedBuckets, SHARING_FAILURES, sharingTortureLoop, type ClientResult, type KindCost } from '../src/lab/sharing-churn.js';
import { tortureLoop, type ChurnFailure } from '../src/lab/churn.js';
import { peerSystem } from '../src/lab/churn-systems.js';
import { waitFor } from '../src/lib/wait.js';
import { num, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '600' }, seed: { type: 'string' }, systems: { type: 'string', default: 'fwlb,peer' }, prefix: { type: 'string', default: 'bshc' }, figures: { type: 'string' } },
});
const SECONDS = Number(values.seconds);
const SEED = values.seed !== undefined ? Number(values.seed) : Date.now() % 100000;
const PREFIX = values.prefix!;
const VIP = '198.18.0.100';
const TCP = 200;
const UDP = 600;

type Result = ClientResult;
const figures: Figure[] = [];

/** What the clients and the failures add up to, for the figures and the table alike. */
function totals(res: Result[], kinds: Record<string, KindCost>) {
  const tcp = res.filter((r) => r.datagramsSent === undefined);
  const udp = res.filter((r) => r.datagramsSent !== undefined);
  const sum = (rs: Result[], f: (r: Result) => number) => rs.reduce((n, r) => n + f(r), 0);
  const moves = Object.values(kinds).map((v) => v.worstMoveMs).filter((m) => m > 0);
  return {
    failures: Object.values(kinds).reduce((n, v) => n + v.count, 0),
    worstStallMs: Math.max(0, ...Object.values(kinds).map((v) => v.worstStallMs)),
    tcp: { kept: sum(tcp, (r) => r.kept), sessions: sum(tcp, (r) => r.sessions) },
    udp: { kept: sum(udp, (r) => r.kept), sessions: sum(udp, (r) => r.sessions), lost: sum(udp, (r) => r.datagramsLost ?? 0), sent: sum(udp, (r) => r.datagramsSent ?? 0) },
    slowestMoveMs: moves.length ? Math.max(...moves) : null,
  };
}

/** The run's figures for bench/figures.ts: sessions and flows kept, the worst stall, datagrams lost, the slowest bucket move. */
function pushFigures(system: string, peer: boolean, res: Result[], kinds: Record<string, KindCost>): void {
  const t = totals(res, kinds);
  const conditions = `${TCP} TCP sessions (every 50 ms) and ${UDP} UDP flows (every 200 ms), ${SECONDS} s of failures one node at a time, seed ${SEED}${peer ? ' (active-standby pair: the peer cannot share)' : ' (3 nodes sharing)'}`;
  const base = { conditions, system, peer };
  figures.push(
    { ...base, id: 'sharing-churn.failures', figure: 'failures done under sharing churn', unit: 'failures', value: t.failures },
    { ...base, id: 'sharing-churn.tcp.kept', figure: 'TCP sessions kept under sharing churn', unit: `of ${TCP}`, value: t.tcp.kept },
    { ...base, id: 'sharing-churn.udp.kept', figure: 'UDP flows kept under sharing churn', unit: `of ${UDP}`, value: t.udp.kept },
    { ...base, id: 'sharing-churn.stall', figure: 'worst TCP stall under sharing churn', unit: 'ms', value: num(t.worstStallMs), resolution: 50 },
    { ...base, id: 'sharing-churn.udp.lost', figure: 'UDP datagrams never answered under sharing churn', unit: 'datagrams', value: t.udp.lost },
  );
  if (!peer) figures.push({ ...base, id: 'sharing-churn.move', figure: 'slowest move of a failed node\'s buckets (polled from outside)', unit: 'ms', value: t.slowestMoveMs, resolution: 100 });
}

function summary(label: string, res: Result[], kinds: Record<string, KindCost>): string[][] {
  const t = totals(res, kinds);
  const rows = Object.entries(kinds)
    .filter(([, v]) => v.count > 0)
    .map(([k, v]) => [label, k, String(v.count), `${v.worstStallMs} (${v.rejoin.worstStallMs})`, `${v.datagramsLost} (${v.rejoin.datagramsLost})`, v.worstMoveMs ? String(v.worstMoveMs) : '-']);
  rows.push([label, 'all', String(t.failures), String(t.worstStallMs), `${t.udp.lost} of ${t.udp.sent}`, `TCP kept ${t.tcp.kept}/${t.tcp.sessions}, UDP kept ${t.udp.kept}/${t.udp.sessions}`]);
  return rows;
}

async function runFwlb(): Promise<string[][]> {
  const lab = await labUp({ prefix: PREFIX, topology: 'trio' });
  try {
    const cfg = await writeSyncedCluster(lab, await readFile(`${REPO_ROOT}/examples/active-active.yaml`, 'utf8'));
    const FWS = ['fw1', 'fw2', 'fw3'];
    const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
    const start = (fw: string) => void lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'info']);
    for (const fw of FWS) start(fw);
    const converged = async (live: readonly string[]) => {
      for (const fw of live) {
        const s = ((await controlCall(control(fw), 'status', undefined, 2000).catch(() => null)) as NodeStatus | null)?.sharing;
        if (!s || s.members.join() !== [...live].sort().join()) return false;
      }
      const sets = await Promise.all(live.map((fw) => ownedBuckets(lab, fw)));
      return sets.reduce((n, s) => n + s.size, 0) === 4096 && new Set(sets.flatMap((s) => [...s])).size === 4096;
    };
    await waitFor('three members', async () => ((await converged(FWS)) ? true : undefined), 30_000);
    const done = churnClients(lab, { clients: ['client1', 'client2'], vip: VIP, tcp: TCP, udp: UDP }).end;
    await sleep(3000);
    const failures = await sharingTortureLoop(lab, { nodes: FWS, start: async (fw) => start(fw), stop: async (fw) => void (await lab.gracefulStop(fw, 30_000)), converged }, { seconds: SECONDS, seed: SEED, journal: `${lab.stateDir}/churn.journal` });
    await sleep(2000);
    const res = await done();
    const costs = attribute(failures, res.flatMap((r) => r.gaps ?? []), res.flatMap((r) => r.lostAt ?? []));
    const worst = failures.map((f, i) => ({ f, c: costs.perFailure[i]! })).sort((a, b) => b.c.worstStallMs - a.c.worstStallMs).slice(0, 3);
    for (const w of worst) process.stderr.write(`fwlb: a ${w.c.worstStallMs} ms stall at ${w.f.kind}${w.f.link ? ` ${w.f.link}` : ''} ${w.f.node}, ${new Date(w.f.atMs).toISOString()}\n`);
    const kinds = byKind(failures, costs.perFailure, SHARING_FAILURES);
    pushFigures('fwlb, 3 nodes sharing', false, res, kinds);
    return summary('fwlb, 3 nodes sharing', res, kinds);
  } finally {
    if (process.env.FWLB_KEEP_LAB) process.stderr.write(`lab ${PREFIX} kept: journal in ${lab.stateDir}/churn.journal\n`);
    else await labDown(PREFIX);
  }
}

async function runPeer(): Promise<string[][]> {
  const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  try {
    const cfg = await writeSyncedCluster(lab);
    // UDP flows are measured: the peer syncs them too (the peer reference syncs TCP alone).
    const sys = peerSystem(lab, cfg, { protocols: ['TCP', 'UDP'] });
    await sys.start('fw1');
    await waitFor('fw1 master', async () => ((await sys.master()) === 'fw1' ? true : undefined), 20_000);
    await sys.start('fw2');
    await waitFor('fw2 ready', async () => ((await sys.ready('fw2').catch(() => false)) ? true : undefined), 30_000);
    await sleep(2000);
    const done = churnClients(lab, { clients: ['client1'], vip: VIP, tcp: TCP, udp: UDP }).end;
    await sleep(3000);
    const failures: { kind: ChurnFailure; atMs: number }[] = [];
    await tortureLoop(lab, sys, { seconds: SECONDS, seed: SEED, journal: `${lab.stateDir}/churn.journal`, onFailure: (f) => failures.push({ kind: f.kind, atMs: f.atMs }) });
    await sleep(2000);
    const res = await done();
    const costs = attribute(failures, res.flatMap((r) => r.gaps ?? []), res.flatMap((r) => r.lostAt ?? []));
    const kinds = byKind(failures, costs.perFailure, ['crash', 'link', 'graceful'] as const);
    pushFigures('keepalived + conntrackd, active-standby', true, res, kinds);
    return summary('keepalived + conntrackd, active-standby', res, kinds);
  } finally {
    if (process.env.FWLB_KEEP_LAB) process.stderr.write(`lab ${PREFIX} kept: journal in ${lab.stateDir}/churn.journal\n`);
    else await labDown(PREFIX);
  }
}

const rows: string[][] = [];
for (const s of values.systems!.split(',')) rows.push(...(s === 'fwlb' ? await runFwlb() : await runPeer()));
process.stdout.write(
  `Churn under sharing: ${SECONDS} s of failures, one node at a time, seed ${SEED}; ${TCP} TCP sessions (every 50 ms) and ${UDP} UDP flows (every 200 ms) through the shared address (this 2-core VM)\n` +
    table(['system', 'failure', 'count', 'worst TCP stall ms (in the rejoins)', 'UDP datagrams lost (in the rejoins)', 'slowest bucket move ms / kept'], rows) +
    '\n',
);
await writeFigures(values.figures, 'sharing-churn', figures);
