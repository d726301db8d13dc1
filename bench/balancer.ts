/**
 * Load balancer figures, fwlb beside the direct path, in one lab and one run:
 *  1. requests/s (wrk) through the VIP to one backend and to two, versus straight to one
 *     backend: routed through the firewall without DNAT, and from the firewall itself;
 *  2. the time from a backend going down (its server killed) to the last new connection
 *     it receives, with fast health checks (200 ms x fall 2) and the defaults (1 s x 3).
 *
 *   node dist/bench/balancer.js [--seconds 5] [--rounds 2]
 *
 * Prints figures; never asserts. Needs root and wrk. (The peers for health reaction,
 * keepalived's checkers, drive IPVS, which this kernel lacks: no peer figure there.)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { controlCall } from '../src/control/client.js';
import { PROBER_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { table, wrk } from './util.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    prefix: { type: 'string', default: 'blb' },
  },
});
const seconds = Number(values.seconds);
const VIP = '198.18.0.100';

const config = (interval: string, fall: number) => `cluster: { name: bench }
nodes:
  fw1: { priority: 200, addresses: { outside: 198.18.0.2/24, inside: 198.18.1.2/24, sync: 198.18.2.1/24 } }
interfaces: { outside: eth0, inside: eth1, sync: eth2 }
firewall:
  rules:
    - allow: { proto: tcp, port: 80, from: outside, to: inside }
services:
  two:
    listen: ${VIP}:80/tcp
    scheduler: rr
    backends: { web1: { address: 198.18.1.11 }, web2: { address: 198.18.1.12 } }
    health: { http: { path: /healthz }, interval: ${interval}, timeout: ${interval === '1s' ? '500ms' : '150ms'}, rise: 2, fall: ${fall} }
  one:
    listen: ${VIP}:8080/tcp
    backends: { web1: { address: 198.18.1.11:80 } }
`;

async function startNode(lab: Lab, text: string): Promise<string> {
  const cfg = `${lab.stateDir}/cluster.yaml`;
  const control = `${lab.stateDir}/fw1.sock`;
  await writeFile(cfg, text);
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control, '--log-level', 'warn']);
  for (let i = 0; i < 200; i++) {
    const st = (await controlCall(control, 'status').catch(() => null)) as NodeStatus | null;
    if (st) return control;
    await sleep(50);
  }
  throw new Error('the node did not start');
}

async function throughput(lab: Lab): Promise<void> {
  const paths: [string, string, string][] = [
    ['fwlb VIP -> 1 backend (DNAT, rr)', 'client1', `http://${VIP}:8080/`],
    ['fwlb VIP -> 2 backends (DNAT, rr)', 'client1', `http://${VIP}/`],
    ['direct: routed to web1, no DNAT', 'client1', 'http://198.18.1.11/'],
    ['direct: from fw1 to web1, no forwarding', 'fw1', 'http://198.18.1.11/'],
  ];
  const runs: number[][] = paths.map(() => []);
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const [i, [, from, url]] of paths.entries()) runs[i]!.push(await wrk(lab, from, url, seconds));
  }
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const ref = mean(runs[2]!);
  console.log(`\nRequests/s, wrk -t1 -c50 -d${seconds}s from client1 (fw1 for the last row), ${values.rounds} rounds, interleaved`);
  console.log(table(['path', 'req/s (mean)', 'runs', 'ratio to routed direct'], paths.map(([name], i) => [name, mean(runs[i]!).toFixed(0), runs[i]!.map((v) => v.toFixed(0)).join(' '), (mean(runs[i]!) / ref).toFixed(2)])));
}

/**
 * Kills web2's server under a steady stream of new connections (one every 10 ms, round
 * robin) and measures, on the prober's clock, the window from web2's last answer (just
 * before the kill) to the last new connection still sent to it (failed: nobody listens).
 */
async function reaction(lab: Lab, label: string): Promise<string[]> {
  const log = `${lab.stateDir}/prober.log`;
  const prober = lab.spawn('client1', [process.execPath, PROBER_JS, VIP, '80', '--every', '10', '--seconds', '7', '--mode', 'http', '--timeout', '300'], { log });
  await sleep(1500);
  const server = lab.processes('web2').find((p) => p.kind === 'server');
  if (!server) throw new Error('no server on web2');
  await lab.stop(server.pid, 'SIGKILL');
  await prober.wait(20_000);
  const { probes } = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { probes: [number, string | null, number][] };
  const lastAnswer = Math.max(...probes.filter((p) => p[1] === 'web2').map((p) => p[0]));
  const failed = probes.filter((p) => p[1] === null && p[0] > lastAnswer);
  const lastSent = failed.length ? Math.max(...failed.map((p) => p[0])) : lastAnswer;
  await lab.startServers([lab.host('web2')]);
  return [label, String(probes.length), String(failed.length), (lastSent - lastAnswer).toFixed(0)];
}

async function main(): Promise<void> {
  let lab: Lab | undefined;
  try {
    lab = await labUp({ prefix: values.prefix!, topology: 'single', vipsOn: 'fw1' });
    await startNode(lab, config('200ms', 2));
    await throughput(lab);
    const rows = [await reaction(lab, 'health http 200 ms x fall 2')];
    await lab.gracefulStop('fw1');
    await startNode(lab, config('1s', 3));
    await sleep(1500);
    rows.push(await reaction(lab, 'health http 1 s x fall 3 (defaults)'));
    console.log('\nBackend down (server killed) under a new connection every 10 ms: the window in which new connections still went to it');
    console.log(table(['health check', 'probes', 'failed', 'window ms (last answer -> last new connection sent to it)'], rows));
  } finally {
    await labDown(values.prefix!);
  }
}

await main();
