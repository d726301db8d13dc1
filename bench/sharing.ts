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
 *    killed with -9; graceful: SIGTERM): the time from the failure to its buckets owned by the
 *    survivors in their kernels (each survivor's last write of its owned set, wall clock), and
 *    the stall the moved TCP sessions saw (each session echoes a line every 50 ms).
 *
 *   node dist/bench/sharing.js [--udp 1500] [--tcp 200] [--window 8] [--modes crash,kill,graceful]
 *
 * The peer, in the same run: keepalived 2.2.7 (VRRP v3, 0.1 s adverts) + conntrackd 1.4.7
 * (FTFW) as an active-standby pair on the lab's sandwich, the same ruleset (fwlb's compiler,
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
import { table } from './util.js';
import { Keepalived, sandwichKeepalived } from '../src/lab/keepalived.js';
import { Conntrackd } from '../src/lab/conntrackd.js';
import { CLI_MAIN_JS } from '../src/lab/paths.js';

const { values } = parseArgs({
  options: {
    udp: { type: 'string', default: '1500' },
    tcp: { type: 'string', default: '200' },
    window: { type: 'string', default: '8' },
    modes: { type: 'string', default: 'crash,kill,graceful' },
    'skip-work': { type: 'boolean', default: false },
    'skip-peer': { type: 'boolean', default: false },
    prefix: { type: 'string', default: 'bsh' },
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

async function divisionOfWork(): Promise<string> {
  const rows: string[][] = [];
  const done = load('work', 3 * (WINDOW_S + 12) + 10, { udp: UDP * 2, tcp: TCP * 2, udpEvery: 100, tcpEvery: 100 });
  for (let n = 1; n <= 3; n++) {
    const live = FWS.slice(0, n);
    start(live.at(-1)!);
    await waitFor(`${n} member(s)`, () => members(live), 30_000);
    await sleep(3000);
    const pids = await Promise.all(live.map(async (fw) => (await status(fw)).pid));
    const before = await Promise.all(live.map(async (fw, i) => ({ p: (await status(fw)).sharing!.packets.carried, cpu: await cpuOf(pids[i]!) })));
    const k0 = await kernelCpu();
    const t0 = performance.now();
    await sleep(WINDOW_S * 1000);
    const after = await Promise.all(live.map(async (fw, i) => ({ p: (await status(fw)).sharing!.packets.carried, cpu: await cpuOf(pids[i]!) })));
    const secs = (performance.now() - t0) / 1000;
    const k = (await kernelCpu()) - k0;
    const pk = live.map((_, i) => after[i]!.p - before[i]!.p);
    const total = pk.reduce((a, b) => a + b, 0);
    live.forEach((fw, i) => {
      rows.push([
        String(n),
        fw,
        String(Math.round(pk[i]! / secs)),
        `${((100 * pk[i]!) / total).toFixed(1)}%`,
        `${(Math.abs((pk[i]! / total) * n - 1) * 100).toFixed(1)}%`,
        `${(((after[i]!.cpu - before[i]!.cpu) / secs) * 100).toFixed(1)}%`,
        i === 0 ? `${((k / secs) * 100).toFixed(0)}% of a core` : '',
      ]);
    });
  }
  const res = await done();
  const lost = res.reduce((a, r) => a + r.lost, 0);
  return [
    `Division of work: ${UDP * 2} UDP flows and ${TCP * 2} TCP sessions from two clients, each a message every 100 ms (the same offered load throughout), ${WINDOW_S} s per row; nodes start one by one under the load (${lost} flows lost while they joined)`,
    table(['nodes', 'node', 'packets/s', 'share', 'off equal', 'daemon CPU', 'kernel CPU (whole machine)'], rows),
  ].join('\n');
}

async function failure(mode: 'crash' | 'kill' | 'graceful', victim: string): Promise<string[]> {
  const live = FWS.filter((f) => f !== victim);
  await waitFor('three members', () => members(FWS), 30_000);
  const done = load(`fail-${mode}`, 14, { udp: UDP * 2, tcp: TCP * 2, udpEvery: 500, tcpEvery: 50 });
  await sleep(5000);
  const owned0 = await Promise.all(FWS.map(async (fw) => (await status(fw)).sharing!.owned));
  const t0 = Date.now();
  if (mode === 'crash') await lab.crash(victim);
  else if (mode === 'kill') await lab.daemonKill(victim);
  else await lab.gracefulStop(victim);
  // Each survivor's last write of its owned set after the failure, in the kernel.
  const applied = await waitFor(
    'buckets moved',
    async () => {
      const st = await Promise.all(live.map((fw) => status(fw)));
      if (!st.every((s) => s.sharing!.members.join() === live.join() && s.sharing!.lastApply && Date.parse(s.sharing!.lastApply.at) >= t0)) return undefined;
      return st.map((s) => ({ node: s.node, at: Date.parse(s.sharing!.lastApply!.at), ms: s.sharing!.lastApply!.ms, owned: s.sharing!.owned }));
    },
    5000,
    20,
  );
  const movedMs = Math.max(...applied.map((a) => a.at - t0));
  const res = await done();
  if (mode === 'crash') await lab.recover(victim);
  start(victim);
  await waitFor('rejoined', () => members(FWS), 30_000);
  const tcp = res.filter((r) => !r.udp);
  const udp = res.filter((r) => r.udp);
  return [
    mode,
    victim,
    `${movedMs} ms`,
    applied.map((a) => `${a.node} +${a.owned - owned0[FWS.indexOf(a.node)]!}`).join(', '),
    `${sum(tcp, (r) => r.kept)}/${sum(tcp, (r) => r.sessions)}`,
    `${Math.max(...tcp.map((r) => r.worstStallMs ?? 0))} ms`,
    `${sum(udp, (r) => r.kept)}/${sum(udp, (r) => r.sessions)}`,
    `${sum(udp, (r) => r.datagramsLost ?? 0)}`,
  ];
}

type Results = Awaited<ReturnType<ReturnType<typeof load>>>;
const sum = (rs: Results, f: (r: Results[number]) => number) => rs.reduce((a, r) => a + f(r), 0);

/** keepalived + conntrackd, active-standby on the sandwich: its master crashes under the same sessions. */
async function peer(): Promise<string[]> {
  await labDown(PREFIX);
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  const pcfg = await writeSyncedCluster(lab);
  const addr = { fw1: { sync: '198.18.2.1', peer: '198.18.2.2' }, fw2: { sync: '198.18.2.2', peer: '198.18.2.1' } } as const;
  for (const fw of ['fw1', 'fw2'] as const) {
    await lab.exec(fw, ['nft', '-f', '-'], await lab.exec(fw, [process.execPath, CLI_MAIN_JS, 'ruleset', '-c', pcfg, '--node', fw]));
    await Conntrackd.start(lab, fw, { self: addr[fw].sync, peer: addr[fw].peer, iface: 'eth2', port: 3780, ignore: ['198.18.0.2', '198.18.0.3', '198.18.1.2', '198.18.1.3', '198.18.2.1', '198.18.2.2', '198.18.1.1'] });
    await Keepalived.start(lab, fw, sandwichKeepalived(fw, { version: 3, advertInt: 0.1, notify: Conntrackd.notifyPath(lab, fw) }));
  }
  const holds = async (fw: string) => (await lab.execRaw(fw, ['ip', '-j', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(`"${VIP}"`);
  await waitFor('fw1 master', async () => ((await holds('fw1')) ? true : undefined), 20_000);
  await sleep(3000);
  const done = load('peer', 14, { udp: UDP * 2, tcp: TCP * 2, udpEvery: 500, tcpEvery: 50, clients: ['client1'] });
  await sleep(5000);
  const t0 = Date.now();
  await lab.crash('fw1');
  await waitFor('fw2 holds the VIP', async () => ((await holds('fw2')) ? true : undefined), 10_000, 5);
  const movedMs = Date.now() - t0;
  const res = await done();
  const tcp = res.filter((r) => !r.udp);
  const udp = res.filter((r) => r.udp);
  return [
    'crash (peer)',
    'fw1 (master)',
    `${movedMs} ms (VIP on fw2)`,
    'fw2 all',
    `${sum(tcp, (r) => r.kept)}/${sum(tcp, (r) => r.sessions)}`,
    `${Math.max(...tcp.map((r) => r.worstStallMs ?? 0))} ms`,
    `${sum(udp, (r) => r.kept)}/${sum(udp, (r) => r.sessions)}`,
    `${sum(udp, (r) => r.datagramsLost ?? 0)}`,
  ];
}

async function main(): Promise<void> {
  await labDown(PREFIX);
  lab = await labUp({ prefix: PREFIX, topology: 'active-active' });
  try {
    cfg = await writeSyncedCluster(lab, await readFile(`${REPO_ROOT}/examples/active-active.yaml`, 'utf8'));
    const out: string[] = [];
    if (!values['skip-work']) out.push(await divisionOfWork());
    else for (const fw of FWS) start(fw);
    const rows: string[][] = [];
    const modes = values.modes!.split(',').filter(Boolean) as ('crash' | 'kill' | 'graceful')[];
    for (const [i, m] of modes.entries()) rows.push(await failure(m, FWS[(i + 2) % 3]!));
    if (!values['skip-peer']) rows.push(await peer());
    out.push(
      '',
      `A node fails (fwlb: three nodes sharing; peer: keepalived + conntrackd, active-standby, its master) under ${UDP * 2} UDP flows (a datagram every 500 ms each) and ${TCP * 2} TCP sessions (a line every 50 ms each: the stall's resolution); liveness BEATs every 15 ms, gone after 5 missed, on the sync and both shared links`,
      table(['failure', 'node', 'buckets moved (kernel)', 'buckets gained', 'TCP kept', 'worst TCP stall', 'UDP flows kept', 'UDP datagrams lost'], rows),
    );
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await labDown(PREFIX);
  }
}

await main();
