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
 * Then fwlb is polled at the same rate again while --idle connections are held open on its
 * control socket, connected one by one and never sending a request (a monitoring system that
 * keeps its connections, or a client that misbehaves): the daemon serves 64 and cuts the one
 * idle the longest when a new one needs room (`control.refused.evicted` in `fwlb status
 * --json`), so status must answer as on an idle daemon. Failed requests are printed by reason
 * after each load.
 *
 *   node dist/bench/status.js [--flows 100000] [--seconds 20] [--rate 20] [--idle 1000] [--systems fwlb,peer]
 *
 * Prints figures; never asserts.
 */
import { readFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
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
import { num, peerVersions, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({
  options: {
    flows: { type: 'string', default: '100000' },
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '20' },
    idle: { type: 'string', default: '1000' },
    prefix: { type: 'string', default: 'bstat' },
    systems: { type: 'string', default: 'fwlb,peer' },
    /** Write the figures as JSON here (bench/figures.ts). */
    figures: { type: 'string' },
  },
});
const FLOWS = Number(values.flows);
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const IDLE = Number(values.idle);
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
  failures.clear();
  const lat = await load(performance.now() + (SECONDS - 0.5) * 1000);
  if (failures.size) console.log(`# failed requests by reason: ${[...failures].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  await listener.wait(SECONDS * 1000 + 10_000);
  const jitter = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as Jitter;
  return { lat, jitter };
}

/** Why requests failed in the current load, by reason (printed after it); a failed request's latency is Infinity. */
const failures = new Map<string, number>();
function failed(e: unknown, lat: number[]): void {
  const code = `${(e as { code?: string }).code ?? ''} ${(e as Error).message ?? String(e)}`.slice(0, 160);
  failures.set(code, (failures.get(code) ?? 0) + 1);
  lat.push(Infinity);
}

/** Calls `one` RATE times a second (on schedule, overlapping if slow) until `until`; latencies in ms. */
async function poll(one: () => Promise<unknown>, until: number): Promise<number[]> {
  const lat: number[] = [];
  const pending: Promise<void>[] = [];
  for (let next = performance.now(); next < until; next += 1000 / RATE) {
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    const t0 = performance.now();
    pending.push(one().then(() => void lat.push(performance.now() - t0), (e: unknown) => failed(e, lat)));
  }
  await Promise.all(pending);
  return lat;
}

/** 500 concurrent calls once a second until `until`; each burst's latencies. */
async function bursts(one: () => Promise<unknown>, until: number): Promise<number[]> {
  const lat: number[] = [];
  while (performance.now() < until - 1000) {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 500 }, () => one().then(() => void lat.push(performance.now() - t0), (e: unknown) => failed(e, lat))));
    const rest = 1000 - (performance.now() - t0);
    if (rest > 0) await sleep(rest);
  }
  return lat;
}

/** One load of a run: its key (for the figures), its label, the answers' latencies and the adverts' timing. */
interface Run {
  key: 'idle' | 'polled' | 'bursts' | 'idleconns';
  load: string;
  lat: number[];
  jitter: Jitter;
}

function rows(system: string, runs: readonly Run[]): string[][] {
  return runs.map(({ load, lat, jitter }) => [
    system,
    load,
    lat.length ? `${ms(q(lat, 0.5))} / ${ms(q(lat, 0.99))} / ${ms(Math.max(...lat))}` : '-',
    String(lat.filter((x) => !Number.isFinite(x)).length),
    `${jitter.count}`,
    `${ms(jitter.intervalMs.p50 ?? NaN)} / ${ms(jitter.intervalMs.p99 ?? NaN)} / ${ms(jitter.intervalMs.max ?? NaN)}`,
    `${jitter.lateOver['10ms']} / ${jitter.lateOver['50ms']}`,
  ]);
}

/** The same runs as data: answer latency where there were requests, advert intervals always. */
function runFigures(system: string, peer: boolean, runs: readonly Run[]): Figure[] {
  const out: Figure[] = [];
  const what: Record<Run['key'], string> = {
    idle: 'left alone',
    polled: `status polled ${RATE}/s (fwlb: the control socket; the peer: \`conntrackd -s\`, its CLI's start included)`,
    bursts: '500 concurrent status requests each second',
    idleconns: `status polled ${RATE}/s while ${IDLE} idle connections are held on the control socket`,
  };
  for (const { key, lat, jitter } of runs) {
    const conditions = `master with ${FLOWS} flows in its table, ${SECONDS} s, ${what[key]}`;
    if (lat.length) {
      for (const [stat, p] of [['p50', 0.5], ['p99', 0.99]] as const) {
        out.push({ id: `status.${key}.answer.${stat}`, figure: `status answer ${stat}, ${what[key]}`, conditions, unit: 'ms', system, peer, value: num(q(lat, p)) });
      }
      out.push({ id: `status.${key}.failed`, figure: `status requests failed, ${what[key]}`, conditions, unit: `of ${lat.length}`, system, peer, value: lat.filter((x) => !Number.isFinite(x)).length });
    }
    for (const stat of ['p50', 'p99', 'max'] as const) {
      out.push({ id: `status.${key}.advert.${stat}`, figure: `the master's advert interval ${stat}, ${what[key]}`, conditions: `${conditions}; adverts timed on the client segment`, unit: 'ms', system, peer, value: num(jitter.intervalMs[stat]) });
    }
  }
  return out;
}

/**
 * Opens `n` connections to a control socket one by one and holds them, idle (no request
 * ever); counts those the daemon closes. `release` closes the rest.
 */
async function holdIdle(path: string, n: number): Promise<{ closed: () => number; release: () => void }> {
  const socks: Socket[] = [];
  let closed = 0;
  let released = false;
  for (let i = 0; i < n; i++) {
    const s = createConnection(path);
    await new Promise<void>((res, rej) => {
      s.once('connect', res);
      s.once('error', rej);
    });
    s.on('error', () => undefined);
    s.on('close', () => void (released || closed++));
    // Read what the daemon says as it cuts the connection (ERR_IDLE); never write.
    s.resume();
    socks.push(s);
  }
  return {
    closed: () => closed,
    release: () => {
      released = true;
      for (const s of socks) s.destroy();
    },
  };
}

async function fillTable(lab: Lab): Promise<void> {
  const out = await lab.exec('fw1', [process.execPath, CT_TOOL_JS, 'create', '--count', String(FLOWS), '--quiet']);
  console.log(`# ${FLOWS} entries written into fw1's table: ${out.trim()}`);
}

async function fwlb(lab: Lab): Promise<Result> {
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
  // Held idle connections: the same polling, the daemon cutting the idle longest for each.
  const evicted = async () => (await status('fw1')).control.refused.evicted ?? 0;
  const ev0 = await evicted();
  const held = await holdIdle(control('fw1'), IDLE);
  const setupCut = held.closed();
  const withIdle = await phase(lab, (until) => poll(() => status('fw1'), until));
  const cut = held.closed();
  const ev1 = await evicted();
  held.release();
  await noteLoop(`${IDLE} idle held`);
  await sleep(200);
  const open = (await status('fw1')).control.connections;
  console.log(`# fwlb: fw1's event loop delay in ms since its start, after each run: ${loop.join('; ')}`);
  const q50 = (xs: number[]) => ms(q(xs, 0.5));
  const q99 = (xs: number[]) => ms(q(xs, 0.99));
  console.log(
    `# fwlb: status ${RATE}/s with ${IDLE} idle connections held: ${q50(withIdle.lat)} / ${q99(withIdle.lat)} ms p50 / p99 (without them: ${q50(polled.lat)} / ${q99(polled.lat)} ms); ` +
      `control.refused.evicted +${ev1 - ev0} (the holder saw ${setupCut} of its ${IDLE} cut while it connected them, ${cut} by the end); served connections after release: ${open}`,
  );
  const runs: Run[] = [
    { key: 'idle', load: 'idle', ...idle },
    { key: 'polled', load: `status ${RATE}/s`, ...polled },
    { key: 'idleconns', load: `status ${RATE}/s, ${IDLE} idle connections held`, ...withIdle },
    { key: 'bursts', load: '500 concurrent status, each second', ...burst },
  ];
  const moved = (await transitions()) - t0;
  console.log(`# fwlb: the backup's VRRP transitions during the runs: ${moved}`);
  for (const fw of ['fw2', 'fw1']) await lab.gracefulStop(fw).catch(() => undefined);
  const system = 'fwlb (defaults: 0.1 s adverts)';
  const figures = runFigures(system, false, runs);
  figures.push(
    { id: 'status.idleconns.evicted', figure: `idle control connections cut to make room (control.refused.evicted), ${IDLE} held`, conditions: `${IDLE} idle connections connected one by one, then status polled ${RATE}/s for ${SECONDS} s; the daemon serves 64`, unit: 'connections', system, peer: false, value: ev1 - ev0 },
    { id: 'status.transitions', figure: 'the backup\'s VRRP transitions during every load', conditions: `master with ${FLOWS} flows, ${4 * SECONDS} s of loads`, unit: 'transitions', system, peer: false, value: moved },
  );
  return { rows: rows(system, runs), figures };
}

async function peer(lab: Lab): Promise<Result> {
  const d: Conntrackd[] = [];
  for (const fw of ['fw1', 'fw2'] as const) d.push(await Conntrackd.start(lab, fw, sandwichConntrackd(fw, { externalCache: false, hashLimit: FLOWS * 2 + 100_000 })));
  const kas: Keepalived[] = [];
  for (const fw of ['fw1', 'fw2'] as const) kas.push(await Keepalived.start(lab, fw, sandwichKeepalived(fw, { notify: Conntrackd.notifyPath(lab, fw) })));
  await sleep(3000);
  await fillTable(lab);
  await sleep(3000);
  const stats = () => lab.exec('fw1', ['conntrackd', '-C', `${lab.stateDir}/fw1.conntrackd.conf`, '-s']);
  const runs: Run[] = [
    { key: 'idle', load: 'idle', ...(await phase(lab, async (until) => (await sleep(until - performance.now()), []))) },
    { key: 'polled', load: `conntrackd -s ${RATE}/s`, ...(await phase(lab, (until) => poll(stats, until))) },
  ];
  for (const k of kas.reverse()) await k.stop().catch(() => undefined);
  for (const c of d) await c.stop(lab).catch(() => undefined);
  const v = await peerVersions();
  const system = `keepalived ${v.keepalived} (0.1 s adverts) + conntrackd ${v.conntrackd}`;
  return { rows: rows(system, runs), figures: runFigures(system, true, runs) };
}

interface Result {
  rows: string[][];
  figures: Figure[];
}

async function main(): Promise<void> {
  const out: string[][] = [];
  const figures: Figure[] = [];
  const systems = { fwlb, peer } as Record<string, (lab: Lab) => Promise<Result>>;
  for (const name of values.systems!.split(',')) {
    const run = systems[name];
    if (!run) throw new Error(`--systems: no system ${name} (fwlb, peer)`);
    const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
    try {
      const r = await run(lab);
      out.push(...r.rows);
      figures.push(...r.figures);
    } finally {
      await labDown(PREFIX);
    }
  }
  console.log(`\nMonitoring a master with ${FLOWS} flows in its table, ${SECONDS} s per load (adverts timed on the client segment, a bridge)`);
  console.log(table(['system', 'load', 'answer ms p50 / p99 / max', 'failed', 'adverts', 'advert interval ms p50 / p99 / max', 'late >10 / >50 ms'], out));
  await writeFigures(values.figures, 'status', figures);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
