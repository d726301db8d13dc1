/**
 * Control-plane cost of a node (issue 25): resident memory, CPU and wakeups of the master of
 * the sandwich pair, per thread, for fwlb (the lab cluster: two VRRP instances in a group,
 * three services with health checks, the state sync and its liveness at their defaults)
 * beside keepalived + conntrackd (the peer reference: VRRPv3 0.1 s in a sync group with the
 * primary-backup notify, conntrackd FTFW on the sync cable), in the same lab, one after the
 * other, each pair started fresh.
 *
 *  - idle: --seconds with nothing passing through;
 *  - churn (fwlb only: the peer has no load balancer): a new connection through the VIP every
 *    5 ms and a backend drained and enabled every second.
 *
 * CPU: utime + stime from /proc (the kernel's work on a thread's behalf, such as its sends,
 * counts too), as % of one core. Wakeups: the thread's context switches per second
 * (voluntary + involuntary): each is a time it slept and was woken, or was preempted. RSS:
 * VmRSS of each process at the end. fwlb's threads are named (`fwlb-timing`: the adverts and the liveness;
 * `fwlb-flows`, while it runs); the others are Node's own (V8's, libuv's).
 *
 *   node dist/bench/cost.js [--seconds 30] [--figures FILE]
 *
 * Prints figures; never asserts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { Keepalived, sandwichKeepalived } from '../src/lab/keepalived.js';
import { Conntrackd } from '../src/lab/conntrackd.js';
import { peerConntrackd } from '../src/lab/churn-systems.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, PROBER_JS } from '../src/lab/paths.js';
import type { NodeStatus, Readiness } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { num, peerVersions, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '30' }, prefix: { type: 'string', default: 'bcost' }, figures: { type: 'string' } } });
const SECONDS = Number(values.seconds);
const PREFIX = values.prefix!;
const TICK = 100; // clock ticks per second (USER_HZ)

interface ThreadSample {
  comm: string;
  ticks: number;
  /** Of which in the kernel (stime). */
  sysTicks: number;
  switches: number;
}

/** Every thread of a process: its name, CPU ticks (user + system, and system alone) and context switches. */
function threads(pid: number): Map<number, ThreadSample> {
  const out = new Map<number, ThreadSample>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const sw = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
      out.set(Number(tid), { comm, ticks: Number(f[11]) + Number(f[12]), sysTicks: Number(f[12]), switches: sw('voluntary_ctxt_switches') + sw('nonvoluntary_ctxt_switches') });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** VmRSS, and of it RssAnon (the process's own memory; the rest is file pages, such as the node binary's text, shared with every node process), MiB. */
function rssOf(pid: number): { rss: number; anon: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon') };
}

interface Row {
  process: string;
  thread: string;
  cpuPct: number;
  /** Of which in the kernel. */
  sysPct: number;
  wakeups: number;
}

/** Per-thread CPU % and wakeups/s of the processes over `during`; the RSS of each at the end. */
async function measure(procs: { name: string; pid: number }[], during: () => Promise<void>): Promise<{ rows: Row[]; rss: Record<string, number>; anon: Record<string, number>; cpuPct: number; wakeups: number }> {
  const before = procs.map((p) => threads(p.pid));
  const t0 = performance.now();
  await during();
  const wall = (performance.now() - t0) / 1000;
  const rows: Row[] = [];
  const rss: Record<string, number> = {};
  const anon: Record<string, number> = {};
  procs.forEach((p, i) => {
    ({ rss: rss[p.name], anon: anon[p.name] } = rssOf(p.pid));
    const byName = new Map<string, Row>();
    for (const [tid, b] of threads(p.pid)) {
      const a = before[i]!.get(tid) ?? { ticks: 0, sysTicks: 0, switches: 0 };
      // Node's unnamed pools share a name: one row per name (the main thread apart).
      const name = tid === p.pid ? `main (${b.comm})` : b.comm;
      const r = byName.get(name) ?? { process: p.name, thread: name, cpuPct: 0, sysPct: 0, wakeups: 0 };
      r.cpuPct += (100 * (b.ticks - a.ticks)) / TICK / wall;
      r.sysPct += (100 * (b.sysTicks - a.sysTicks)) / TICK / wall;
      r.wakeups += (b.switches - a.switches) / wall;
      byName.set(name, r);
    }
    rows.push(...[...byName.values()].sort((x, y) => y.cpuPct - x.cpuPct));
  });
  return { rows, rss, anon, cpuPct: rows.reduce((s, r) => s + r.cpuPct, 0), wakeups: rows.reduce((s, r) => s + r.wakeups, 0) };
}

type Measured = Awaited<ReturnType<typeof measure>>;

async function fwlbRun(lab: Lab): Promise<{ idle: Measured; churn: Measured }> {
  const cfg = await writeSyncedCluster(lab);
  const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
  const d1 = lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1'), '--log-level', 'warn']);
  await waitFor('fw1 master', async () => ((await controlCall(control('fw1'), 'status').catch(() => undefined)) as NodeStatus | undefined)?.vrrp.groups[0]?.state === 'master' || undefined, 20_000);
  lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', control('fw2'), '--log-level', 'warn']);
  await waitFor('fw2 ready', async () => ((await controlCall(control('fw2'), 'ready', undefined, 1000).catch(() => undefined)) as Readiness | undefined)?.ready || undefined, 30_000);
  // Settled: the bulk sync done, the first health checks made. No status asked from here on
  // (a status starts the flow-counting thread: it is in the churn figures, not the idle ones).
  await sleep(3000);
  const procs = [{ name: 'fwlb', pid: d1.pid }];
  const idle = await measure(procs, () => sleep(SECONDS * 1000));
  const churn = await measure(procs, async () => {
    const prober = lab.spawn('client1', [process.execPath, PROBER_JS, '198.18.0.100', '80', '--every', '5', '--seconds', String(SECONDS), '--mode', 'http']);
    const end = Date.now() + SECONDS * 1000;
    for (let drained = false; Date.now() < end; drained = !drained) {
      await controlCall(control('fw1'), 'backend', { op: drained ? 'enable' : 'drain', service: 'web', backend: 'web2' });
      await sleep(1000);
    }
    await controlCall(control('fw1'), 'status');
    await prober.wait(30_000);
  });
  for (const fw of ['fw2', 'fw1']) await lab.gracefulStop(fw, 30_000).catch(() => undefined);
  return { idle, churn };
}

async function peerRun(lab: Lab): Promise<Measured> {
  const cfg = await writeSyncedCluster(lab);
  const ct: Conntrackd[] = [];
  const ka: Keepalived[] = [];
  for (const fw of ['fw1', 'fw2'] as const) {
    // The same ruleset fwlb would apply (the sync port open for conntrackd).
    await lab.exec(fw, ['nft', '-f', '-'], await lab.exec(fw, [process.execPath, CLI_MAIN_JS, 'ruleset', '-c', cfg, '--node', fw]));
    ct.push(await Conntrackd.start(lab, fw, peerConntrackd(fw)));
    ka.push(await Keepalived.start(lab, fw, sandwichKeepalived(fw, { notify: Conntrackd.notifyPath(lab, fw) })));
  }
  await sleep(3000);
  const k = ka[0]!;
  const r = await measure(
    [
      { name: 'keepalived', pid: k.parent.pid },
      { name: 'keepalived VRRP child', pid: k.childPid()! },
      { name: 'conntrackd', pid: ct[0]!.handle.pid },
    ],
    () => sleep(SECONDS * 1000),
  );
  for (const x of ka) await x.stop();
  for (const x of ct) await x.stop(lab);
  return r;
}

async function main(): Promise<void> {
  const versions = await peerVersions();
  const peerName = `keepalived ${versions.keepalived} + conntrackd ${versions.conntrackd}`;
  const runs: { fwlb?: Awaited<ReturnType<typeof fwlbRun>>; peer?: Measured } = {};
  for (const which of ['fwlb', 'peer'] as const) {
    const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
    try {
      if (which === 'fwlb') runs.fwlb = await fwlbRun(lab);
      else runs.peer = await peerRun(lab);
    } finally {
      await labDown(PREFIX);
    }
  }
  const { fwlb, peer } = runs as Required<typeof runs>;
  const f1 = (x: number) => x.toFixed(1);
  const sum = (r: Record<string, number>) => Object.values(r).reduce((s, x) => s + x, 0);
  const f2 = (x: number) => x.toFixed(2);
  const rowsOf = (label: string, m: Measured) => [
    ...m.rows.filter((r) => r.cpuPct >= 0.005 || r.wakeups >= 0.5).map((r) => [label, `${r.process}: ${r.thread}`, '', f2(r.cpuPct), f2(r.sysPct), f1(r.wakeups)]),
    [label, 'all threads', `${f1(sum(m.rss))} (anon ${f1(sum(m.anon))})`, f2(m.cpuPct), f2(m.rows.reduce((s, r) => s + r.sysPct, 0)), f1(m.wakeups)],
  ];
  console.log(`\nCost of the master node over ${SECONDS} s, per thread (threads under 0.005% and 0.5 wakeups/s left out; RSS of the processes at the end)`);
  console.log(table(['system, load', 'thread', 'RSS MiB', 'CPU % of a core', 'of which kernel', 'wakeups/s'], [...rowsOf('fwlb, idle', fwlb.idle), ...rowsOf(`${peerName}, idle`, peer), ...rowsOf('fwlb, churn', fwlb.churn)]));
  const cond = `the master of the sandwich pair, ${SECONDS} s; fwlb: the lab cluster (2 VRRP instances, 3 services with health checks, state sync and liveness at their defaults); peer: VRRPv3 0.1 s sync group + conntrackd FTFW`;
  const fig = (id: string, figure: string, unit: string, system: string, isPeer: boolean, value: number, load = 'idle'): Figure => ({ id, figure, conditions: `${cond}; ${load}`, unit, system, peer: isPeer, value: num(value) });
  const total = (m: Measured, isPeer: boolean, system: string, load: string): Figure[] => [
    fig(`cost.${load}.rss`, `resident memory, ${load}`, 'MiB', system, isPeer, sum(m.rss), load),
    fig(`cost.${load}.rss_anon`, `resident memory of its own (RssAnon: without file pages such as the program's text), ${load}`, 'MiB', system, isPeer, sum(m.anon), load),
    fig(`cost.${load}.cpu`, `CPU, ${load}, all threads`, '% of a core', system, isPeer, m.cpuPct, load),
    fig(`cost.${load}.wakeups`, `wakeups, ${load}, all threads`, 'per s', system, isPeer, m.wakeups, load),
  ];
  const mainRow = fwlb.idle.rows.find((r) => r.thread.startsWith('main'));
  const threadFigs = ['fwlb-timing'].map((t) => fwlb.idle.rows.find((r) => r.thread === t)).filter((r): r is Row => !!r);
  await writeFigures(values.figures, 'cost', [
    ...total(fwlb.idle, false, 'fwlb', 'idle'),
    ...(mainRow ? [fig('cost.idle.cpu.main', 'CPU, idle, main thread', '% of a core', 'fwlb', false, mainRow.cpuPct), fig('cost.idle.wakeups.main', 'wakeups, idle, main thread', 'per s', 'fwlb', false, mainRow.wakeups)] : []),
    ...threadFigs.flatMap((r) => [fig(`cost.idle.cpu.${r.thread}`, `CPU, idle, thread ${r.thread}`, '% of a core', 'fwlb', false, r.cpuPct), fig(`cost.idle.wakeups.${r.thread}`, `wakeups, idle, thread ${r.thread}`, 'per s', 'fwlb', false, r.wakeups)]),
    ...total(peer, true, peerName, 'idle'),
    ...total(fwlb.churn, false, 'fwlb', 'churn'),
  ]);
}

await main();
