/**
 * Control-plane cost: resident memory and CPU time of one node, idle and under churn, for
 * fwlb (VRRP at its defaults, a load-balanced service with health checks) and for
 * keepalived (VRRP only, the same two VIPs in a sync group, 0.1 s adverts), in the same lab.
 * Churn: a new connection through the VIP every 5 ms and a backend drained and enabled
 * every second (fwlb; keepalived has no load balancer here: its figure stays idle).
 *
 *   node dist/bench/cost.js [--seconds 30]
 *
 * Prints figures; never asserts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { Keepalived, sandwichKeepalived } from '../src/lab/keepalived.js';
import { controlCall } from '../src/control/client.js';
import { PROBER_JS } from '../src/lab/paths.js';
import { waitFor } from '../src/lib/wait.js';
import { benchClusterYaml, table } from './util.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '30' }, prefix: { type: 'string', default: 'bcost' } } });
const seconds = Number(values.seconds);
const PREFIX = values.prefix!;
const TICK = 100; // clock ticks per second (USER_HZ)


/** RSS (KiB) and CPU seconds (user + system) of a set of processes. */
function sample(pids: number[]): { rssKiB: number; cpuS: number } {
  let rssKiB = 0;
  let ticks = 0;
  for (const pid of pids) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    rssKiB += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return { rssKiB, cpuS: ticks / TICK };
}

async function measure(pids: () => number[], during: () => Promise<void>): Promise<{ rssMiB: string; cpuPct: string }> {
  const a = sample(pids());
  const t0 = Date.now();
  await during();
  const b = sample(pids());
  const wall = (Date.now() - t0) / 1000;
  return { rssMiB: (b.rssKiB / 1024).toFixed(1), cpuPct: ((100 * (b.cpuS - a.cpuS)) / wall).toFixed(2) };
}

async function fwlbRun(lab: Lab): Promise<string[][]> {
  const cfg = `${lab.stateDir}/cluster.yaml`;
  writeFileSync(cfg, benchClusterYaml({ name: 'cost', health: true }));
  const control = `${lab.stateDir}/fw1.sock`;
  const d1 = lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control, '--log-level', 'warn']);
  lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', `${lab.stateDir}/fw2.sock`, '--log-level', 'warn']);
  await waitFor('fw1 master', async () => (((await controlCall(control, 'status')) as { vrrp: { groups: { state: string }[] } }).vrrp.groups[0]?.state === 'master' ? true : undefined), 15_000);
  await sleep(2000);
  const idle = await measure(() => [d1.pid], () => sleep(seconds * 1000));
  const churn = await measure(() => [d1.pid], async () => {
    const prober = lab.spawn('client1', [process.execPath, PROBER_JS, '198.18.0.100', '80', '--every', '5', '--seconds', String(seconds), '--mode', 'http']);
    const end = Date.now() + seconds * 1000;
    let drained = false;
    while (Date.now() < end) {
      await controlCall(control, 'backend', { op: drained ? 'enable' : 'drain', service: 'web', backend: 'web2' });
      drained = !drained;
      await sleep(1000);
    }
    await prober.wait(30_000);
  });
  return [
    ['fwlb run (master): VRRP + balancer + health checks', 'idle', idle.rssMiB, idle.cpuPct],
    ['fwlb run (master)', 'churn: a connection every 5 ms, a drain/enable every 1 s', churn.rssMiB, churn.cpuPct],
  ];
}

async function keepalivedRun(lab: Lab): Promise<string[][]> {
  const kas: Keepalived[] = [];
  for (const fw of ['fw1', 'fw2'] as const) kas.push(await Keepalived.start(lab, fw, sandwichKeepalived(fw)));
  await sleep(3000);
  const k = kas[0]!;
  const idle = await measure(() => [k.parent.pid, k.childPid()!], () => sleep(seconds * 1000));
  return [['keepalived 2.2.7 (master): parent + VRRP child, 0.1 s adverts', 'idle', idle.rssMiB, idle.cpuPct]];
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const run of [fwlbRun, keepalivedRun]) {
    const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
    try {
      rows.push(...(await run(lab)));
    } finally {
      await labDown(PREFIX);
    }
  }
  console.log(`\nControl-plane cost of the master node over ${seconds} s (RSS at the end; CPU as % of one core)`);
  console.log(table(['daemon', 'load', 'RSS MiB', 'CPU %'], rows));
}

await main();
