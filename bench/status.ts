/**
 * What monitoring costs a master: `fwlb status` latency with a large conntrack table, and
 * whether the VRRP adverts still go out on time while it is polled (issue 12).
 *
 * A synced pair of the sandwich lab (cables on a switch: bridges), fwlb at its defaults
 * (0.1 s adverts). The master's table gets --flows established TCP entries of a load-balanced
 * service (ct-tool: DNAT to web1; the sync replicates them to the backup). Then, for
 * --seconds each, a listener on the client segment times every advert of the master (VRID
 * 51) while the master is: left alone; polled --rate times a second (`status`, a new control
 * connection each, as a monitoring system does); and hit by 500 concurrent status requests
 * once a second. Beside it, in the same lab and table: keepalived at 0.1 s adverts with
 * conntrackd (FTFW) and `conntrackd -s` (its status) polled at the same rate — the peer's
 * figures for the same monitoring load.
 *
 *   node dist/bench/status.js [--flows 100000] [--seconds 20] [--rate 20] [--systems fwlb,peer]
 *
 * Prints figures; never asserts.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { Keepalived, sandwichKeepalived } from '../src/lab/keepalived.js';
import { Conntrackd, sandwichConntrackd } from '../src/lab/conntrackd.js';
import { controlCall } from '../src/control/client.js';
import { CT_TOOL_JS, REPO_ROOT, VRRP_LISTEN_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { table } from './util.js';

const { values } = parseArgs({
  options: { flows: { type: 'string', default: '100000' }, seconds: { type: 'string', default: '20' }, rate: { type: 'string', default: '20' }, prefix: { type: 'string', default: 'bstat' }, systems: { type: 'string', default: 'fwlb,peer' } },
});
const FLOWS = Number(values.flows);
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const PREFIX = values.prefix!;

interface Jitter {
  count: number;
  nominalMs: number;
  intervalMs: { min: number | null; p50: number | null; p99: number | null; max: number | null };
  lateOver: { '10ms': number; '50ms': number };
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) : NaN;
};
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 0) : '-');

/** Runs `load` for SECONDS while listening to the master's adverts on the client segment. */
async function phase(lab: Lab, load: (until: number) => Promise<number[]>): Promise<{ lat: number[]; jitter: Jitter }> {
  const log = `${lab.stateDir}/listen-${Date.now()}.log`;
  const listener = lab.spawn('client1', [process.execPath, VRRP_LISTEN_JS, '--dev', 'eth0', '--src', '198.18.0.2', '--vrid', '51', '--seconds', String(SECONDS)], { log });
  await sleep(200);
  const lat = await load(performance.now() + (SECONDS - 0.5) * 1000);
  await listener.wait(SECONDS * 1000 + 10_000);
  const jitter = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as Jitter;
  return { lat, jitter };
}

/** Calls `one` RATE times a second (on schedule, overlapping if slow) until `until`; latencies in ms. */
async function poll(one: () => Promise<unknown>, until: number): Promise<number[]> {
  const lat: number[] = [];
  const pending: Promise<void>[] = [];
  for (let next = performance.now(); next < until; next += 1000 / RATE) {
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    const t0 = performance.now();
    pending.push(one().then(() => void lat.push(performance.now() - t0), () => void lat.push(Infinity)));
  }
  await Promise.all(pending);
  return lat;
}

/** 500 concurrent calls once a second until `until`; each burst's latencies. */
async function bursts(one: () => Promise<unknown>, until: number): Promise<number[]> {
  const lat: number[] = [];
  while (performance.now() < until - 1000) {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 500 }, () => one().then(() => void lat.push(performance.now() - t0), () => void lat.push(Infinity))));
    const rest = 1000 - (performance.now() - t0);
    if (rest > 0) await sleep(rest);
  }
  return lat;
}

function rows(system: string, r: Record<string, { lat: number[]; jitter: Jitter }>): string[][] {
  return Object.entries(r).map(([load, { lat, jitter }]) => [
    system,
    load,
    lat.length ? `${ms(q(lat, 0.5))} / ${ms(q(lat, 0.99))} / ${ms(Math.max(...lat))}` : '-',
    String(lat.filter((x) => !Number.isFinite(x)).length),
    `${jitter.count}`,
    `${ms(jitter.intervalMs.p50 ?? NaN)} / ${ms(jitter.intervalMs.p99 ?? NaN)} / ${ms(jitter.intervalMs.max ?? NaN)}`,
    `${jitter.lateOver['10ms']} / ${jitter.lateOver['50ms']}`,
  ]);
}

async function fillTable(lab: Lab): Promise<void> {
  const out = await lab.exec('fw1', [process.execPath, CT_TOOL_JS, 'create', '--count', String(FLOWS), '--quiet']);
  console.log(`# ${FLOWS} entries written into fw1's table: ${out.trim()}`);
}

async function fwlb(lab: Lab): Promise<string[][]> {
  const base = await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8');
  // The entries ct-tool writes (198.18.0.100:9 DNAT to 198.18.1.11:9) are this service's flows.
  const cfg = await writeSyncedCluster(lab, base.replace('services:\n', 'services:\n  discard:\n    listen: 198.18.0.100:9/tcp\n    backends:\n      web1: { address: 198.18.1.11:9 }\n'));
  const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
  const status = (fw: string) => controlCall(control(fw), 'status', undefined, 30_000) as Promise<NodeStatus>;
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1')]);
  await waitFor('fw1 master', async () => ((await status('fw1').catch(() => undefined))?.vrrp.groups[0]?.state === 'master' ? true : undefined), 30_000);
  lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', control('fw2')]);
  await waitFor('fw2 ready', async () => ((await status('fw2').catch(() => undefined))?.ready.ready ? true : undefined), 30_000);
  await fillTable(lab);
  const flows = await waitFor('the flows counted', async () => {
    const n = (await status('fw1')).services.find((s) => s.name === 'discard')?.backends[0]?.activeConnections ?? 0;
    return n >= FLOWS ? n : undefined;
  }, 60_000, 1000);
  const onBackup = Number((await lab.exec('fw2', ['conntrack', '-C'])).trim());
  console.log(`# fwlb: status counts ${flows} established flows of the service on fw1; fw2's table holds ${onBackup} entries`);
  await sleep(2000);
  const transitions = async () => (await status('fw2')).vrrp.groups[0]?.transitions ?? 0;
  const t0 = await transitions();
  const loop: string[] = [];
  const noteLoop = async (name: string) => {
    const d = (await status('fw1')).process.loopDelayMs;
    loop.push(`${name}: p99 ${d.p99} max ${d.max}`);
  };
  await noteLoop('before');
  const idle = await phase(lab, async (until) => (await sleep(until - performance.now()), []));
  await noteLoop('idle');
  const polled = await phase(lab, (until) => poll(() => status('fw1'), until));
  await noteLoop('polled');
  const burst = await phase(lab, (until) => bursts(() => status('fw1'), until));
  await noteLoop('bursts');
  console.log(`# fwlb: fw1's event loop delay in ms since its start, after each run: ${loop.join('; ')}`);
  const r = { idle, [`status ${RATE}/s`]: polled, '500 concurrent status, each second': burst };
  const moved = (await transitions()) - t0;
  console.log(`# fwlb: the backup's VRRP transitions during the runs: ${moved}`);
  for (const fw of ['fw2', 'fw1']) await lab.gracefulStop(fw).catch(() => undefined);
  return rows('fwlb (defaults: 0.1 s adverts)', r);
}

async function peer(lab: Lab): Promise<string[][]> {
  const d: Conntrackd[] = [];
  for (const fw of ['fw1', 'fw2'] as const) d.push(await Conntrackd.start(lab, fw, sandwichConntrackd(fw, { externalCache: false, hashLimit: FLOWS * 2 + 100_000 })));
  const kas: Keepalived[] = [];
  for (const fw of ['fw1', 'fw2'] as const) kas.push(await Keepalived.start(lab, fw, sandwichKeepalived(fw, { notify: Conntrackd.notifyPath(lab, fw) })));
  await sleep(3000);
  await fillTable(lab);
  await sleep(3000);
  const stats = () => lab.exec('fw1', ['conntrackd', '-C', `${lab.stateDir}/fw1.conntrackd.conf`, '-s']);
  const r = {
    idle: await phase(lab, async (until) => (await sleep(until - performance.now()), [])),
    [`conntrackd -s ${RATE}/s`]: await phase(lab, (until) => poll(stats, until)),
  };
  for (const k of kas.reverse()) await k.stop().catch(() => undefined);
  for (const c of d) await c.stop(lab).catch(() => undefined);
  return rows('keepalived 2.2.7 (0.1 s adverts) + conntrackd 1.4.7', r);
}

async function main(): Promise<void> {
  const out: string[][] = [];
  const systems = { fwlb, peer } as Record<string, (lab: Lab) => Promise<string[][]>>;
  for (const name of values.systems!.split(',')) {
    const run = systems[name];
    if (!run) throw new Error(`--systems: no system ${name} (fwlb, peer)`);
    const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
    try {
      out.push(...(await run(lab)));
    } finally {
      await labDown(PREFIX);
    }
  }
  console.log(`\nMonitoring a master with ${FLOWS} flows in its table, ${SECONDS} s per load (adverts timed on the client segment, a bridge)`);
  console.log(table(['system', 'load', 'answer ms p50 / p99 / max', 'failed', 'adverts', 'advert interval ms p50 / p99 / max', 'late >10 / >50 ms'], out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
