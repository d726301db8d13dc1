/**
 * Start to ready, ruleset size and reload cost, beside keepalived's start in the same run.
 *
 *  1. Start to ready: fw2 of the lab cluster restarted 10 times while fw1 runs (master): from
 *     the spawn to fwlb's own "ready" (ruleset applied, VRRP running, bulk sync complete),
 *     for the lab cluster and for 100 maglev services of 10 backends each. The first start
 *     applies the whole ruleset; a restart finds it in the kernel and keeps it.
 *     keepalived beside it: spawn to "Entering BACKUP STATE" (VRRP only; it has no ruleset
 *     and no state table to wait for).
 *  2. Rulesets: compile time, bytes and apply time (the whole table, into an empty
 *     namespace) for 10, 100 and 500 maglev services of 10 backends; with --old, 20 services
 *     at the former fixed 65,537-slot tables.
 *  3. Reload after changing one rule, with 100 services: `fwlb reload` wall time (a delta),
 *     beside the whole table's apply.
 *
 *   node dist/bench/startup.js [--starts 10] [--old]
 *
 * Prints figures; never asserts.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus, Readiness } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { Keepalived } from '../src/lab/keepalived.js';
import { parseConfig } from '../src/config/load.js';
import { nodeView } from '../src/config/node.js';
import { compileRulesetParts } from '../src/compiler/ruleset.js';
import { createNft } from '../src/adapters/nft.js';
import { run, runRaw } from '../src/lib/exec.js';
import { table } from './util.js';

const { values } = parseArgs({ options: { starts: { type: 'string', default: '10' }, old: { type: 'boolean', default: false }, prefix: { type: 'string', default: 'bst' } } });
const STARTS = Number(values.starts);
const PREFIX = values.prefix!;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

/** The lab cluster with `n` maglev services of 10 backends each on the outside VIP. */
function manyServices(base: string, n: number, tableSize?: number): string {
  const lines = [base.replace(/\nservices:\n[\s\S]*$/, '\n'), 'services:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  s${i}:`, `    listen: 198.18.0.100:${10000 + i}/tcp`, '    scheduler: maglev', ...(tableSize ? [`    table_size: ${tableSize}`] : []), '    backends:');
    for (let b = 0; b < 10; b++) lines.push(`      b${b}: { address: 198.18.1.${11 + b}:${8000 + i} }`);
  }
  return lines.join('\n') + '\n';
}

const control = (lab: Lab, fw: string) => `${lab.stateDir}/${fw}.sock`;

/** fw2 started `STARTS` times while fw1 runs: spawn to ready, as seen from outside and by the daemon. */
async function startToReady(lab: Lab, cfg: string): Promise<{ wall: number[]; own: number[]; modes: string[] }> {
  const start = (fw: string) => lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(lab, fw), '--log-level', 'warn']);
  const ready = (fw: string, ms: number) =>
    waitFor(`${fw} ready`, async () => {
      const r = (await controlCall(control(lab, fw), 'ready', undefined, 1000)) as Readiness;
      return r.ready ? r : undefined;
    }, ms, 5);
  start('fw1');
  await ready('fw1', 60_000);
  const wall: number[] = [];
  const own: number[] = [];
  const modes: string[] = [];
  for (let i = 0; i < STARTS; i++) {
    const t0 = performance.now();
    start('fw2');
    const r = await ready('fw2', 60_000);
    wall.push(performance.now() - t0);
    own.push(r.startToReadyMs ?? NaN);
    modes.push(((await controlCall(control(lab, 'fw2'), 'status')) as NodeStatus).ruleset.applyMode);
    await lab.gracefulStop('fw2', 30_000);
    await sleep(300);
  }
  return { wall, own, modes };
}

async function keepalivedStarts(lab: Lab): Promise<number[]> {
  const out: number[] = [];
  const log = `${lab.stateDir}/fw2.keepalived.log`;
  for (let i = 0; i < STARTS; i++) {
    const mark = (await readFile(log, 'utf8').catch(() => '')).length;
    const t0 = performance.now();
    const k = await Keepalived.start(lab, 'fw2', {
      routerId: 'fw2',
      version: 3,
      syncGroup: 'edge',
      instances: [
        { name: 'ext', iface: 'eth0', vrid: 51, priority: 100, advertInt: 0.1, vips: ['198.18.0.100/24'] },
        { name: 'int', iface: 'eth1', vrid: 52, priority: 100, advertInt: 0.1, vips: ['198.18.1.1/24'] },
      ],
    });
    await waitFor('keepalived backup', async () => ((await readFile(log, 'utf8')).slice(mark).includes('Entering BACKUP STATE') ? true : undefined), 10_000, 2);
    out.push(performance.now() - t0);
    await k.stop();
    await sleep(300);
  }
  return out;
}

async function rulesets(base: string): Promise<string[][]> {
  const NS = `${PREFIX}-nft`;
  const nft = createNft(['ip', 'netns', 'exec', NS, 'nft']);
  const rows: string[][] = [];
  const cases: [string, number, number | undefined][] = [[`10`, 10, undefined], [`100`, 100, undefined], [`500`, 500, undefined]];
  if (values.old) cases.unshift([`20 (old 65,537-slot tables)`, 20, 65537]);
  for (const [label, n, size] of cases) {
    await runRaw('ip', ['netns', 'del', NS]);
    await run('ip', ['netns', 'add', NS]);
    try {
      const r = await parseConfig(manyServices(base, n, size), 'bench.yaml');
      if (!r.ok) throw r.error;
      const t0 = performance.now();
      const c = compileRulesetParts({ config: r.value.config, node: nodeView(r.value.config, 'fw1'), blocklist: [] });
      const compileMs = performance.now() - t0;
      const t1 = performance.now();
      await nft.apply(c.script);
      const applyMs = performance.now() - t1;
      const elements = r.value.config.services ? Object.keys(r.value.config.services).length : 0;
      const slots = /mod (\d+) seed/.exec(c.script)?.[1] ?? '?';
      rows.push([label, `${elements} x ${slots} slots`, (c.script.length / 1024 / 1024).toFixed(2), compileMs.toFixed(0), applyMs.toFixed(0)]);
    } finally {
      await runRaw('ip', ['netns', 'del', NS]);
    }
  }
  return rows;
}

/** fwlb reload after adding one rule, 100 services; the node's own apply figure beside. */
async function reloadOneRule(lab: Lab, cfg: string): Promise<string[][]> {
  lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', control(lab, 'fw2'), '--log-level', 'warn']);
  await waitFor('fw2 ready', async () => (((await controlCall(control(lab, 'fw2'), 'ready')) as Readiness).ready ? true : undefined), 60_000);
  const rows: string[][] = [];
  const text = await readFile(cfg, 'utf8');
  for (let i = 0; i < 5; i++) {
    const rule = (port: number) => text.replace('  rules:\n', `  rules:\n    - allow: { proto: tcp, port: ${port}, from: inside, to: outside }\n`);
    // As a user does it: the CLI, wall time.
    await writeFile(cfg, rule(9000 + i));
    const t0 = performance.now();
    const out = await run(process.execPath, [CLI_MAIN_JS, 'reload', '--control', control(lab, 'fw2')]).catch((e: Error) => e.message);
    const wall = performance.now() - t0;
    // The node's own time for the same kind of change: file read to kernel updated.
    await writeFile(cfg, rule(9100 + i));
    await controlCall(control(lab, 'fw2'), 'reload', undefined, 30_000);
    const st = (await controlCall(control(lab, 'fw2'), 'status')) as NodeStatus;
    rows.push([`reload ${i + 1}: one rule added`, wall.toFixed(0), String(st.reloads.lastMs), String(st.ruleset.applyMs), st.ruleset.applyMode, out.trim().split('\n')[0] ?? '']);
  }
  await writeFile(cfg, text);
  await lab.gracefulStop('fw2', 30_000);
  return rows;
}

async function main(): Promise<void> {
  const base = await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8');
  const out: string[] = [];
  const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  try {
    const small = await startToReady(lab, await writeSyncedCluster(lab, base));
    await lab.gracefulStop('fw1', 30_000);
    const ka = await keepalivedStarts(lab);
    const bigCfg = await writeSyncedCluster(lab, manyServices(base, 100));
    const big = await startToReady(lab, bigCfg);
    const reload = await reloadOneRule(lab, bigCfg);
    await lab.gracefulStop('fw1', 30_000);
    const row = (label: string, xs: number[], note: string) => [label, pct(xs, 50).toFixed(0), Math.max(...xs).toFixed(0), note];
    out.push(
      `Start to ready, ${STARTS} starts of fw2 while fw1 runs (ms; this machine, 2 cores)`,
      table(['', 'p50', 'max', ''], [
        row('fwlb, lab cluster: spawn to ready', small.wall, `ruleset: ${[...new Set(small.modes)].join(', ')}`),
        row('  the daemon\'s own count (process start to ready)', small.own, ''),
        row('fwlb, 100 maglev services x 10 backends', big.wall, `ruleset: ${big.modes.join(' ')}`),
        row('  the daemon\'s own count', big.own, ''),
        row('keepalived 2.2.7: spawn to BACKUP', ka, 'VRRP only: no ruleset, no state table'),
      ]),
      '',
      'Reload after one rule changed, 100 maglev services x 10 backends (ms)',
      table(['', 'fwlb reload (CLI, wall)', 'node: file to kernel', 'of which apply', 'how', 'answer'], reload),
      '',
    );
  } finally {
    await labDown(PREFIX);
  }
  out.push('Rulesets: maglev services of 10 backends, the whole table into an empty namespace', table(['services', 'tables', 'MiB', 'compile ms', 'apply ms'], await rulesets(base)));
  process.stdout.write(out.join('\n') + '\n');
}

await main();
