/**
 * Active-active sharing (issue 14), three fwlb nodes on the lab's switches
 * (examples/active-active.yaml):
 *
 * 1. Division of work: the same offered load (UDP flows and TCP sessions through the shared
 *    address, a fixed rate) with 1, 2 and 3 nodes running; per node the packets it forwarded
 *    (its own counter), its daemon's CPU time, and the machine's kernel time. All nodes share
 *    this machine's 2 cores: this shows who does the work, not a speed-up. The 1-node row is
 *    also what an active-standby pair (keepalived + conntrackd, or fwlb with VRRP) does: its
 *    master carries everything.
 * 2. A node fails under live sessions (crash: links down, processes killed; kill: its daemon
 *    killed with -9; graceful: SIGTERM): the time from the failure until the survivors' kernels
 *    hold its buckets, and the stall the moved TCP sessions saw (each session echoes a line
 *    every 50 ms). The takeover is timed from outside, the same way for fwlb and the peer: from
 *    just before the failure is injected, the bench reads the survivors' kernel state back to
 *    back in their namespaces while the failure is injected (fwlb: `nft list set inet fwlb
 *    shared_owned` on each survivor, until together they own every bucket the failed node
 *    owned; the peer: `ip addr` on the backup, until it holds the VIP), and takes the end of
 *    the first read that shows it; the resolution is the time a read takes (printed). The daemons' own report of their last
 *    write (fwlb's `sharing.lastApply`) is printed beside it, not compared.
 *
 *   node dist/bench/sharing.js [--udp 1500] [--tcp 200] [--window 8] [--modes crash,kill,graceful]
 *
 * The peer, in the same run: keepalived (VRRP v3, 0.1 s adverts) + conntrackd (FTFW) as an
 * active-standby pair on the lab's sandwich (src/lab/churn-systems.ts), the same ruleset (fwlb's compiler,
 * examples/lab.yaml: TCP echo and UDP 7 as here) and the same sessions from its one
 * client: its master carries everything; its master crashes.
 *
 * Prints figures; never asserts.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { REPO_ROOT, SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { num, peerVersions, table, writeFigures, type Figure } from './util.js';
import { peerSystem } from '../src/lab/churn-systems.js';
import { sharesOf } from '../src/lab/shares.js';

const { values } = parseArgs({
  options: {
    udp: { type: 'string', default: '1500' },
    tcp: { type: 'string', default: '200' },
    window: { type: 'string', default: '8' },
    modes: { type: 'string', default: 'crash,kill,graceful' },
    'skip-work': { type: 'boolean', default: false },
    'skip-peer': { type: 'boolean', default: false },
    prefix: { type: 'string', default: 'bsh' },
    /** Write the figures as JSON here (bench/figures.ts). */
    figures: { type: 'string' },
  },
});
const PREFIX = values.prefix!;
const UDP = Number(values.udp);
const TCP = Number(values.tcp);
const WINDOW_S = Number(values.window);
const VIP = '198.18.0.100';
const FWS = ['fw1', 'fw2', 'fw3'];
const CLIENTS = ['client1', 'client2'];
const TICK_HZ = 100;

let lab: Lab;
let cfg: string;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
const start = (fw: string) => lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw)]);

async function members(live: string[]): Promise<true | undefined> {
  for (const fw of live) if ((await status(fw).catch(() => undefined))?.sharing?.members.join() !== live.join()) return undefined;
  return true;
}

/** utime + stime of a process, seconds. */
async function cpuOf(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK_HZ;
}

/** The machine's time in the kernel (system + irq + softirq), seconds: packet forwarding is there. */
async function kernelCpu(): Promise<number> {
  const f = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[2]! + f[5]! + f[6]!) / TICK_HZ;
}

/** Offered load: UDP flows and TCP sessions from both clients for `seconds`. */
function load(tag: string, seconds: number, o: { udp: number; tcp: number; udpEvery: number; tcpEvery: number; clients?: string[] }) {
  const clients = o.clients ?? CLIENTS;
  const runs = clients.flatMap((c) => [
    ...(o.udp ? [{ log: `${lab.stateDir}/${tag}-${c}-udp.log`, args: ['--udp', '--count', String(o.udp / clients.length), '--every', String(o.udpEvery)] }] : []),
    ...(o.tcp ? [{ log: `${lab.stateDir}/${tag}-${c}-tcp.log`, args: ['--count', String(o.tcp / clients.length), '--every', String(o.tcpEvery)] }] : []),
  ].map((r) => ({ ...r, h: lab.spawn(c, [process.execPath, SESSIONS_JS, VIP, '7', ...r.args, '--seconds', String(seconds)], { log: r.log }) })));
  return async () => {
    const out: { udp: boolean; kept: number; lost: number; sessions: number; worstStallMs: number | null; stalls: number[]; datagramsLost?: number }[] = [];
    for (const r of runs) {
      await r.h.wait((seconds + 60) * 1000);
      out.push({ udp: r.args.includes('--udp'), ...JSON.parse((await readFile(r.log, 'utf8')).trim().split('\n').pop()!) });
    }
    return out;
  };
}

async function divisionOfWork(figures: Figure[]): Promise<string> {
  const rows: string[][] = [];
  const done = load('work', 3 * (WINDOW_S + 12) + 10, { udp: UDP * 2, tcp: TCP * 2, udpEvery: 100, tcpEvery: 100 });
  const conditions = `${UDP * 2} UDP flows and ${TCP * 2} TCP sessions from two clients, a message every 100 ms each, ${WINDOW_S} s window`;
  for (let n = 1; n <= 3; n++) {
    const live = FWS.slice(0, n);
    start(live.at(-1)!);
    await waitFor(`${n} member(s)`, () => members(live), 30_000);
    await sleep(3000);
    const pids = await Promise.all(live.map(async (fw) => (await status(fw)).pid));
    // Packets over each node's own stamps (lab/shares.ts): a busy daemon answers a status call late.
    const before = await Promise.all(live.map(async (fw, i) => ({ ...(await status(fw)).sharing!.packets, cpu: await cpuOf(pids[i]!) })));
    const k0 = await kernelCpu();
    const t0 = performance.now();
    await sleep(WINDOW_S * 1000);
    const after = await Promise.all(live.map(async (fw, i) => ({ ...(await status(fw)).sharing!.packets, cpu: await cpuOf(pids[i]!) })));
    const secs = (performance.now() - t0) / 1000;
    const k = (await kernelCpu()) - k0;
    const sh = sharesOf(Object.fromEntries(live.map((fw, i) => [fw, before[i]!])), Object.fromEntries(live.map((fw, i) => [fw, after[i]!])));
    const pk = live.map((fw) => sh.packets[fw]!);
    const pps = live.map((_, i) => pk[i]! / ((after[i]!.at - before[i]!.at) / 1000));
    const off = live.map((fw) => Math.abs(sh.share[fw]! * n - 1) * 100);
    live.forEach((fw, i) => {
      const cpu = ((after[i]!.cpu - before[i]!.cpu) / secs) * 100;
      rows.push([
        String(n),
        fw,
        String(Math.round(pps[i]!)),
        `${(100 * sh.share[fw]!).toFixed(1)}%`,
        `${off[i]!.toFixed(1)}%`,
        `${cpu.toFixed(1)}%`,
        i === 0 ? `${((k / secs) * 100).toFixed(0)}% of a core` : '',
      ]);
      const c = `${conditions}, ${n} node${n > 1 ? 's' : ''} running`;
      figures.push(
        { id: `sharing.work.${n}.pps.${fw}`, figure: `packets/s carried by ${fw}, ${n} node(s)`, conditions: c, unit: 'packets/s', system: 'fwlb', peer: false, value: Math.round(pps[i]!) },
        { id: `sharing.work.${n}.cpu.${fw}`, figure: `daemon CPU of ${fw}, ${n} node(s)`, conditions: c, unit: '% of a core', system: 'fwlb', peer: false, value: Number(cpu.toFixed(1)), resolution: 100 / TICK_HZ / secs },
      );
    });
    const c = `${conditions}, ${n} node${n > 1 ? 's' : ''} running`;
    if (n > 1) figures.push({ id: `sharing.work.${n}.off_equal`, figure: `furthest from an equal share, ${n} nodes`, conditions: c, unit: '%', system: 'fwlb', peer: false, value: Number(Math.max(...off).toFixed(1)) });
    figures.push({ id: `sharing.work.${n}.kernel_cpu`, figure: `kernel CPU of the whole machine, ${n} node(s)`, conditions: c, unit: '% of a core', system: 'fwlb', peer: false, value: Math.round((k / secs) * 100), resolution: 1 });
  }
  const res = await done();
  const lost = res.reduce((a, r) => a + r.lost, 0);
  return [
    `Division of work: ${UDP * 2} UDP flows and ${TCP * 2} TCP sessions from two clients, each a message every 100 ms (the same offered load throughout), ${WINDOW_S} s per row; nodes start one by one under the load (${lost} flows lost while they joined)`,
    table(['nodes', 'node', 'packets/s', 'share', 'off equal', 'daemon CPU', 'kernel CPU (whole machine)'], rows),
  ].join('\n');
}

/** The buckets in a node's kernel owned set, read from outside its daemon (nft, in its namespace). */
async function ownedInKernel(fw: string): Promise<Set<number>> {
  const r = await lab.execRaw(fw, ['nft', '-j', 'list', 'set', 'inet', 'fwlb', 'shared_owned']);
  const out = new Set<number>();
  if (r.status !== 0) return out;
  const items = (JSON.parse(r.stdout) as { nftables: { set?: { elem?: (number | { range: [number, number] })[] } }[] }).nftables;
  for (const e of items.find((i) => i.set)?.set?.elem ?? []) {
    if (typeof e === 'number') out.add(e);
    else for (let m = e.range[0]; m <= e.range[1]; m++) out.add(m);
  }
  return out;
}

/**
 * Reads `seen` back to back until it holds; returns the time from `t0` to the end of the
 * first read that showed it, and the mean time a read took (the resolution).
 */
async function outsidePoll(t0: number, seen: () => Promise<boolean>, timeoutMs = 10_000): Promise<{ ms: number; readMs: number }> {
  let reads = 0;
  const first = performance.now();
  for (;;) {
    const ok = await seen().catch(() => false);
    reads++;
    const now = performance.now();
    if (ok) return { ms: now - t0, readMs: (now - first) / reads };
    if (now - t0 > timeoutMs) throw new Error(`not seen within ${timeoutMs} ms`);
  }
}

/** What a failure cost, for the table and the figures. */
interface Failure {
  label: string;
  node: string;
  takeover: { ms: number; readMs: number };
  /** The daemons' own report (fwlb: the survivors' last write of their owned set). */
  ownMs: number | null;
  gained: string;
  tcp: Results;
  udp: Results;
}

async function failure(mode: 'crash' | 'kill' | 'graceful', victim: string): Promise<Failure> {
  const live = FWS.filter((f) => f !== victim);
  await waitFor('three members', () => members(FWS), 30_000);
  const done = load(`fail-${mode}`, 14, { udp: UDP * 2, tcp: TCP * 2, udpEvery: 500, tcpEvery: 50 });
  await sleep(5000);
  const owned0 = await Promise.all(FWS.map(async (fw) => (await status(fw)).sharing!.owned));
  const victims = await ownedInKernel(victim);
  if (victims.size === 0) throw new Error(`${victim} owns no bucket in its kernel before the failure`);
  const t0 = performance.now();
  const wall0 = Date.now();
  // The reads start with the failure, not once its injection returns (a graceful stop returns
  // when the daemon has exited, after the survivors took over).
  const polled = outsidePoll(t0, async () => {
    const sets = await Promise.all(live.map((fw) => ownedInKernel(fw)));
    for (const b of victims) if (!sets.some((s) => s.has(b))) return false;
    return true;
  });
  if (mode === 'crash') await lab.crash(victim);
  else if (mode === 'kill') await lab.daemonKill(victim);
  else await lab.gracefulStop(victim);
  const takeover = await polled;
  // Each survivor's own report of its last write of the owned set after the failure.
  const applied = await waitFor(
    'buckets moved',
    async () => {
      const st = await Promise.all(live.map((fw) => status(fw)));
      if (!st.every((s) => s.sharing!.members.join() === live.join() && s.sharing!.lastApply && Date.parse(s.sharing!.lastApply.at) >= wall0)) return undefined;
      return st.map((s) => ({ node: s.node, at: Date.parse(s.sharing!.lastApply!.at), owned: s.sharing!.owned }));
    },
    5000,
    20,
  ).catch(() => undefined);
  const res = await done();
  if (mode === 'crash') await lab.recover(victim);
  start(victim);
  await waitFor('rejoined', () => members(FWS), 30_000);
  return {
    label: `fwlb, ${mode}`,
    node: victim,
    takeover,
    ownMs: applied ? Math.max(...applied.map((a) => a.at - wall0)) : null,
    gained: applied ? applied.map((a) => `${a.node} +${a.owned - owned0[FWS.indexOf(a.node)]!}`).join(', ') : '?',
    tcp: res.filter((r) => !r.udp),
    udp: res.filter((r) => r.udp),
  };
}

type Results = Awaited<ReturnType<ReturnType<typeof load>>>;
const sum = (rs: Results, f: (r: Results[number]) => number) => rs.reduce((a, r) => a + f(r), 0);

/** keepalived + conntrackd, active-standby on the sandwich: its master crashes under the same sessions. */
async function peer(): Promise<Failure> {
  await labDown(PREFIX);
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  const sys = peerSystem(lab, await writeSyncedCluster(lab));
  for (const fw of ['fw1', 'fw2'] as const) await sys.start(fw);
  const holds = async (fw: string) => (await lab.execRaw(fw, ['ip', '-j', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(`"${VIP}"`);
  await waitFor('fw1 master', async () => ((await holds('fw1')) ? true : undefined), 20_000);
  await sleep(3000);
  const done = load('peer', 14, { udp: UDP * 2, tcp: TCP * 2, udpEvery: 500, tcpEvery: 50, clients: ['client1'] });
  await sleep(5000);
  const t0 = performance.now();
  const polled = outsidePoll(t0, () => holds('fw2'));
  await lab.crash('fw1');
  const takeover = await polled;
  const res = await done();
  const v = await peerVersions();
  return {
    label: `keepalived ${v.keepalived} + conntrackd ${v.conntrackd}, crash of the master`,
    node: 'fw1 (master)',
    takeover,
    ownMs: null,
    gained: 'fw2 all (VIP)',
    tcp: res.filter((r) => !r.udp),
    udp: res.filter((r) => r.udp),
  };
}

async function main(): Promise<void> {
  await labDown(PREFIX);
  lab = await labUp({ prefix: PREFIX, topology: 'active-active' });
  const figures: Figure[] = [];
  try {
    cfg = await writeSyncedCluster(lab, await readFile(`${REPO_ROOT}/examples/active-active.yaml`, 'utf8'));
    const out: string[] = [];
    if (!values['skip-work']) out.push(await divisionOfWork(figures));
    else for (const fw of FWS) start(fw);
    const fails: { mode: string; f: Failure; peer: boolean }[] = [];
    const modes = values.modes!.split(',').filter(Boolean) as ('crash' | 'kill' | 'graceful')[];
    for (const [i, m] of modes.entries()) fails.push({ mode: m, f: await failure(m, FWS[(i + 2) % 3]!), peer: false });
    if (!values['skip-peer']) fails.push({ mode: 'crash', f: await peer(), peer: true });
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    out.push(
      '',
      `A node fails (fwlb: three nodes sharing; peer: keepalived + conntrackd, active-standby, its master) under ${UDP * 2} UDP flows (a datagram every 500 ms each) and ${TCP * 2} TCP sessions (a line every 50 ms each: the stall's resolution); liveness BEATs every 15 ms, gone after 5 missed, on the sync and both shared links. ` +
        'Takeover: from the failure to the survivors\' kernels holding the failed node\'s traffic (fwlb: its buckets in their owned sets; the peer: the VIP on the backup), read from outside back to back (resolution: one read)',
      table(
        ['failure', 'node', 'takeover (kernel, outside)', 'one read', 'daemons\' own report', 'buckets gained', 'TCP kept', 'worst TCP stall', 'UDP flows kept', 'UDP datagrams lost'],
        fails.map(({ f }) => [
          f.label,
          f.node,
          ms(f.takeover.ms),
          ms(f.takeover.readMs),
          f.ownMs === null ? '-' : ms(f.ownMs),
          f.gained,
          `${sum(f.tcp, (r) => r.kept)}/${sum(f.tcp, (r) => r.sessions)}`,
          `${Math.max(...f.tcp.map((r) => r.worstStallMs ?? 0))} ms`,
          `${sum(f.udp, (r) => r.kept)}/${sum(f.udp, (r) => r.sessions)}`,
          `${sum(f.udp, (r) => r.datagramsLost ?? 0)}`,
        ]),
      ),
    );
    const MODE = { crash: 'crash (links down, processes killed)', kill: 'daemon killed with -9', graceful: 'graceful stop' } as const;
    for (const { mode, f, peer: isPeer } of fails) {
      const what = isPeer ? 'crash (links down, processes killed); the peer: its master' : MODE[mode as keyof typeof MODE];
      const conditions = `${UDP * 2} UDP flows (every 500 ms) and ${TCP * 2} TCP sessions (every 50 ms); fwlb: three nodes sharing, the peer: active-standby`;
      const system = isPeer ? f.label.replace(', crash of the master', '') : 'fwlb (three nodes sharing)';
      const base = { conditions, system, peer: isPeer };
      const tcpN = sum(f.tcp, (r) => r.sessions);
      const udpN = sum(f.udp, (r) => r.sessions);
      figures.push(
        { ...base, id: `sharing.${mode}.takeover`, figure: `takeover in the survivors' kernels, read from outside, ${what}`, unit: 'ms', value: num(f.takeover.ms), resolution: Number(f.takeover.readMs.toFixed(1)) },
        { ...base, id: `sharing.${mode}.tcp_kept`, figure: `TCP sessions kept, ${what}`, unit: `of ${tcpN}`, value: sum(f.tcp, (r) => r.kept) },
        { ...base, id: `sharing.${mode}.tcp_stall`, figure: `worst TCP stall, ${what}`, unit: 'ms', value: Math.max(...f.tcp.map((r) => r.worstStallMs ?? 0)), resolution: 50 },
        { ...base, id: `sharing.${mode}.udp_kept`, figure: `UDP flows kept, ${what}`, unit: `of ${udpN}`, value: sum(f.udp, (r) => r.kept) },
        { ...base, id: `sharing.${mode}.udp_lost`, figure: `UDP datagrams lost, ${what}`, unit: 'datagrams', value: sum(f.udp, (r) => r.datagramsLost ?? 0) },
      );
    }
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await labDown(PREFIX);
  }
  await writeFigures(values.figures, 'sharing', figures);
}

await main();
