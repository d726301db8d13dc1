/**
 * One config, every node (issue 24): how long from `fwlb config push` to every node running
 * the new version, for clusters of 2 and 3 nodes (the trio lab; each node its own copy of the
 * cluster file, as on separate machines) and a config of --services maglev services of 10
 * backends; and how long after a missed confirm every node is back on the version before.
 *
 *  - push: `fwlb config push FILE` from the last node, alternating two configs (one rule
 *    added, then removed). Two ends: the command returned (it waits for every node's answer),
 *    and the last node's log line saying it applied the version (config_version_applied,
 *    its own time; the logs are read, not the status: a status polled every few ms while
 *    500 services reload would load the very nodes being timed).
 *  - the direct path beside it, as an operator's script does it without fwlb's push: the
 *    file copied to each node's path and `fwlb reload` on each node, one after the other.
 *  - rollback: a push with `--confirm C` and no confirm; from the command's return to every
 *    node on the rollback version, less C (the target: under 2 s).
 *
 *   node dist/bench/config-push.js [--nodes 2,3] [--services 500] [--pushes 5] [--confirm 3s]
 *
 * (--services 0: the lab cluster's own file, examples/lab.yaml, three services.)
 *
 * Prints figures; never asserts.
 */
import { execFile } from 'node:child_process';
import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus, Readiness } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { parseDuration } from '../src/lib/duration.js';
import { manyServices, num, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '2,3' },
    services: { type: 'string', default: '500' },
    pushes: { type: 'string', default: '5' },
    confirm: { type: 'string', default: '3s' },
    prefix: { type: 'string', default: 'bcp' },
    figures: { type: 'string' },
  },
});
const NODES = values.nodes!.split(',').map(Number);
const SERVICES = Number(values.services);
const PUSHES = Number(values.pushes);
const CONFIRM_MS = parseDuration(values.confirm!) ?? 3000;
const POLL_MS = 20;
const RULE = '    - allow: { proto: tcp, port: 8081, from: outside, to: 198.18.1.0/24, comment: pushed rule }\n';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const control = (lab: Lab, fw: string) => `${lab.stateDir}/${fw}.sock`;
const fwlb = (args: string[]) => promisify(execFile)(process.execPath, [CLI_MAIN_JS, ...args], { timeout: 120_000 });

/** The lab cluster with `nodes` firewalls and `n` maglev services of 10 backends. */
function clusterText(base: string, nodes: number, n: number): string {
  // 0 services: the lab cluster's own services, as examples/lab.yaml has them.
  const text = nodes !== 3 ? base : base.replace('\ninterfaces:', '\n  fw3:\n    priority: 50\n    addresses: { outside: 198.18.0.4/24, inside: 198.18.1.4/24, sync: 198.18.2.3/24 }\ninterfaces:');
  return n === 0 ? text : manyServices(text, n);
}

async function versionOf(lab: Lab, fw: string): Promise<number | undefined> {
  const st = (await controlCall(control(lab, fw), 'status', undefined, 2000).catch(() => undefined)) as NodeStatus | undefined;
  return st?.config.version ?? undefined;
}

const daemonLog = (lab: Lab, fw: string) => `${lab.stateDir}/${fw}.daemon.log`;

/**
 * When `fw` logged `version` applied (its daemon's own time, ms since the epoch), reading its
 * log from `from` bytes on; undefined while it has not. The log, not the status: a status
 * polled every few ms while 500 services reload would load the nodes being measured.
 */
async function appliedAt(lab: Lab, fw: string, version: number, from: number): Promise<number | undefined> {
  const text = (await readFile(daemonLog(lab, fw)).catch(() => Buffer.alloc(0))).subarray(from).toString('utf8');
  for (const line of text.split('\n')) {
    if (!line.includes('"config_version_applied"')) continue;
    try {
      const j = JSON.parse(line) as { event?: string; version?: number; time?: string };
      if (j.event === 'config_version_applied' && j.version === version && j.time) return Date.parse(j.time);
    } catch {
      // A line being written: read again at the next poll.
    }
  }
  return undefined;
}

/** Milliseconds from `t0` (wall clock) until every node has logged `version` applied. */
async function allOn(lab: Lab, fws: string[], version: number, t0: number, from: Record<string, number>): Promise<number> {
  const at = await Promise.all(fws.map((fw) => waitFor(`${fw} on version ${version}`, () => appliedAt(lab, fw, version, from[fw]!), 30_000, POLL_MS)));
  return Math.max(...at) - t0;
}

interface Run {
  nodes: number;
  cli: number[];
  applied: number[];
  direct: number[];
  rollback: number | null;
  bytes: number;
}

async function measure(lab: Lab, nodes: number): Promise<Run> {
  const fws = ['fw1', 'fw2', 'fw3'].slice(0, nodes);
  const cfg = await writeSyncedCluster(lab, clusterText(await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8'), nodes, SERVICES));
  const text = await readFile(cfg, 'utf8');
  const variants = [text.replace('    - allow: { proto: tcp, port: 7,', `${RULE}    - allow: { proto: tcp, port: 7,`), text];
  for (const [i, v] of variants.entries()) await writeFile(`${lab.stateDir}/variant${i}.yaml`, v);
  for (const fw of fws) {
    // A fresh node: no version kept from a run before.
    await rm(`${lab.stateDir}/${fw}-state`, { recursive: true, force: true });
    await copyFile(cfg, `${lab.stateDir}/${fw}.yaml`);
    lab.startDaemon(fw, ['run', '-c', `${lab.stateDir}/${fw}.yaml`, '--node', fw, '--control', control(lab, fw), '--log-level', 'info']);
  }
  for (const fw of fws) await waitFor(`${fw} ready`, async () => ((await controlCall(control(lab, fw), 'ready', undefined, 2000).catch(() => undefined)) as Readiness | undefined)?.ready || undefined, 60_000);
  const from = fws.at(-1)!;
  const run: Run = { nodes, cli: [], applied: [], direct: [], rollback: null, bytes: Buffer.byteLength(variants[0]!) };
  let version = (await versionOf(lab, from)) ?? 0;
  // Each node's log from here on (a node's log is appended to across runs).
  const logFrom: Record<string, number> = {};
  for (const fw of fws) logFrom[fw] = (await stat(daemonLog(lab, fw))).size;
  for (let i = 0; i < PUSHES; i++) {
    const t0 = performance.now();
    const wall0 = Date.now();
    await fwlb(['config', 'push', `${lab.stateDir}/variant${i % 2}.yaml`, '--control', control(lab, from)]);
    run.cli.push(performance.now() - t0);
    version++;
    run.applied.push(await allOn(lab, fws, version, wall0, logFrom));
  }
  // The direct path: copy, then `fwlb reload` on each node in turn.
  for (let i = 0; i < PUSHES; i++) {
    const t0 = performance.now();
    for (const fw of fws) {
      await copyFile(`${lab.stateDir}/variant${i % 2}.yaml`, `${lab.stateDir}/${fw}.yaml`);
      await fwlb(['reload', '--control', control(lab, fw)]);
    }
    run.direct.push(performance.now() - t0);
  }
  // A push with --confirm and no confirm: the rollback's time past the confirm time.
  await fwlb(['config', 'push', `${lab.stateDir}/variant${PUSHES % 2}.yaml`, '--confirm', `${CONFIRM_MS}ms`, '--control', control(lab, from)]);
  const wall0 = Date.now();
  version++;
  run.rollback = (await allOn(lab, fws, version + 1, wall0, logFrom)) - CONFIRM_MS;
  for (const fw of fws) await lab.gracefulStop(fw).catch(() => undefined);
  return run;
}

async function main(): Promise<void> {
  const lab = await labUp({ prefix: values.prefix!, topology: 'trio' });
  const runs: Run[] = [];
  try {
    for (const n of NODES) runs.push(await measure(lab, n));
  } finally {
    await labDown(values.prefix!);
  }
  const what = SERVICES === 0 ? 'the lab cluster (examples/lab.yaml)' : `${SERVICES} maglev services x 10 backends`;
  const conditions = (r: Run) => `${r.nodes} nodes (trio lab, sync link on one bridge), ${what} (${(r.bytes / 1024).toFixed(0)} KiB), ${PUSHES} pushes, one rule added or removed each`;
  console.log(
    table(
      ['nodes', 'push: command returned p50 / max ms', 'push: every node on it p50 / max ms', 'direct (copy + reload each) p50 / max ms', `rollback past a ${CONFIRM_MS} ms confirm ms`],
      runs.map((r) => [String(r.nodes), `${pct(r.cli, 50).toFixed(0)} / ${Math.max(...r.cli).toFixed(0)}`, `${pct(r.applied, 50).toFixed(0)} / ${Math.max(...r.applied).toFixed(0)}`, `${pct(r.direct, 50).toFixed(0)} / ${Math.max(...r.direct).toFixed(0)}`, r.rollback === null ? '-' : r.rollback.toFixed(0)]),
    ),
  );
  const figures: Figure[] = runs.flatMap((r) => [
    { id: `config.push${r.nodes}${SERVICES === 0 ? '.lab' : ''}.cli.p50`, figure: `config push, ${r.nodes} nodes: the command returned (every node answered), p50`, conditions: conditions(r), unit: 'ms', system: 'fwlb config push', peer: false, value: num(pct(r.cli, 50)) },
    { id: `config.push${r.nodes}${SERVICES === 0 ? '.lab' : ''}.applied.p50`, figure: `config push, ${r.nodes} nodes: every node logged the new version applied, p50`, conditions: conditions(r), unit: 'ms', system: 'fwlb config push', peer: false, value: num(pct(r.applied, 50)), resolution: 1 },
    { id: `config.push${r.nodes}${SERVICES === 0 ? '.lab' : ''}.applied.max`, figure: `config push, ${r.nodes} nodes: every node logged the new version applied, max`, conditions: conditions(r), unit: 'ms', system: 'fwlb config push', peer: false, value: num(Math.max(...r.applied)), resolution: 1 },
    { id: `config.push${r.nodes}${SERVICES === 0 ? '.lab' : ''}.direct.p50`, figure: `config push, ${r.nodes} nodes: the direct path (the file copied, fwlb reload on each node in turn), p50`, conditions: conditions(r), unit: 'ms', system: 'copy + fwlb reload per node', peer: true, value: num(pct(r.direct, 50)) },
    { id: `config.push${r.nodes}${SERVICES === 0 ? '.lab' : ''}.rollback`, figure: `config push --confirm, ${r.nodes} nodes, no confirm: every node back, past the confirm time`, conditions: `${conditions(r)}; confirm time ${CONFIRM_MS} ms`, unit: 'ms', system: 'fwlb config push', peer: false, value: num(r.rollback), resolution: 1 },
  ]);
  await writeFigures(values.figures, 'config-push', figures);
}

await main();
