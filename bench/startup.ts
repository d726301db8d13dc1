/**
 * Start to ready, ruleset size and reload cost, beside the peer's start in the same run.
 *
 *  1. Start to ready: fw2 of the lab cluster started --starts times while fw1 runs (master),
 *     for the lab cluster and for 100 maglev services of 10 backends each, in two kinds:
 *     - warm restart: the daemon stopped and started again; the kernel keeps the ruleset of
 *       its last run (fwlb finds it and keeps it: `kept`), addresses and conntrack;
 *     - cold boot: the node reset as after a reboot first (src/lab/failures.ts `recover`: no
 *       nftables table, only its boot addresses, conntrack empty), then the daemon started.
 *     fwlb: from the spawn to its own "ready" (ruleset applied, VRRP running, bulk sync
 *     complete), polled every 5 ms.
 *     The peer beside it, the same starts on the same lab: keepalived (v3, 0.1 s) +
 *     conntrackd (FTFW) started together (as a boot's units), from the spawn to keepalived's
 *     "Entering BACKUP STATE" and conntrackd's control socket both there (polled every 2 ms);
 *     on a cold boot fwlb's ruleset is loaded first (`nft -f`, as nftables.service would), and
 *     counted. Neither keepalived nor conntrackd says when the state table is complete.
 *  2. Rulesets: compile time, bytes and apply time (the whole table, into an empty
 *     namespace) for 10, 100 and 500 maglev services of 10 backends; with --old, 20 services
 *     at the former fixed 65,537-slot tables.
 *  3. Reload after changing one rule, with 100 services: `fwlb reload` wall time (a delta),
 *     beside the whole table's apply.
 *
 *   node dist/bench/startup.js [--starts 10] [--sizes 10,100,500] [--old]
 *
 * Prints figures; never asserts.
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus, Readiness } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { Keepalived, sandwichKeepalived } from '../src/lab/keepalived.js';
import { Conntrackd } from '../src/lab/conntrackd.js';
import { parseConfig } from '../src/config/load.js';
import { nodeView } from '../src/config/node.js';
import { compileRulesetParts } from '../src/compiler/ruleset.js';
import { createNft } from '../src/adapters/nft.js';
import { run, runRaw } from '../src/lib/exec.js';
import { peerSystem } from '../src/lab/churn-systems.js';
import { applyRuleset, compiledRuleset, keepalivedSettled, logMark, peerConntrackd } from './peer.js';
import { manyServices, num, peerVersions, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({
  options: {
    starts: { type: 'string', default: '10' },
    sizes: { type: 'string', default: '10,100,500' },
    old: { type: 'boolean', default: false },
    prefix: { type: 'string', default: 'bst' },
    /** Write the figures as JSON here (bench/figures.ts). */
    figures: { type: 'string' },
  },
});
const STARTS = Number(values.starts);
const SIZES = values.sizes!.split(',').filter((x) => x !== '').map(Number);
const PREFIX = values.prefix!;
const FWLB_POLL_MS = 5;
const PEER_POLL_MS = 2;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

const control = (lab: Lab, fw: string) => `${lab.stateDir}/${fw}.sock`;
type Boot = 'warm' | 'cold';

function startFwlb(lab: Lab, cfg: string, fw: string): void {
  lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(lab, fw), '--log-level', 'warn']);
}

function fwlbReady(lab: Lab, fw: string, ms: number): Promise<Readiness> {
  return waitFor(`${fw} ready`, async () => {
    const r = (await controlCall(control(lab, fw), 'ready', undefined, 1000)) as Readiness;
    return r.ready ? r : undefined;
  }, ms, FWLB_POLL_MS);
}

/**
 * fw2 started STARTS times while fw1 runs: spawn to ready, as seen from outside and by the
 * daemon. Warm: one start first, not counted, so that the kernel holds this config's
 * ruleset; cold: the node reset before each start.
 */
async function fwlbStarts(lab: Lab, cfg: string, boot: Boot): Promise<{ wall: number[]; own: number[]; modes: string[] }> {
  if (boot === 'warm') {
    startFwlb(lab, cfg, 'fw2');
    await fwlbReady(lab, 'fw2', 60_000);
    await lab.gracefulStop('fw2', 30_000);
  }
  const wall: number[] = [];
  const own: number[] = [];
  const modes: string[] = [];
  for (let i = 0; i < STARTS; i++) {
    if (boot === 'cold') await lab.recover('fw2');
    const t0 = performance.now();
    startFwlb(lab, cfg, 'fw2');
    const r = await fwlbReady(lab, 'fw2', 60_000);
    wall.push(performance.now() - t0);
    own.push(r.startToReadyMs ?? NaN);
    modes.push(((await controlCall(control(lab, 'fw2'), 'status')) as NodeStatus).ruleset.applyMode);
    await lab.gracefulStop('fw2', 30_000);
    await sleep(300);
  }
  return { wall, own, modes };
}

/**
 * The peer's fw2 started STARTS times while the peer's fw1 runs (master): conntrackd and
 * keepalived spawned together; on a cold boot the node reset first and the ruleset loaded
 * (counted). Ready: keepalived has entered BACKUP and conntrackd's control socket is there.
 */
async function peerStarts(lab: Lab, cfg: string, boot: Boot): Promise<number[]> {
  const ruleset = await compiledRuleset(lab, cfg, 'fw2');
  if (boot === 'warm') await applyRuleset(lab, 'fw2', ruleset);
  const ctl = `${lab.stateDir}/fw2.conntrackd.ctl`;
  const out: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    if (boot === 'cold') await lab.recover('fw2');
    const mark = await logMark(lab, 'fw2');
    const t0 = performance.now();
    if (boot === 'cold') await applyRuleset(lab, 'fw2', ruleset);
    // Conntrackd.start removes the old socket before it spawns (synchronously), so the
    // socket seen below is this start's.
    const ct = Conntrackd.start(lab, 'fw2', peerConntrackd('fw2'));
    const ka = Keepalived.start(lab, 'fw2', sandwichKeepalived('fw2', { version: 3, advertInt: 0.1, notify: Conntrackd.notifyPath(lab, 'fw2') }));
    const [ctAt, kaAt] = await Promise.all([
      waitFor('conntrackd listening', async () => (existsSync(ctl) ? performance.now() : undefined), 10_000, PEER_POLL_MS),
      waitFor('keepalived backup', async () => ((await keepalivedSettled(lab, 'fw2', mark)) ? performance.now() : undefined), 10_000, PEER_POLL_MS),
    ]);
    out.push(Math.max(ctAt, kaAt) - t0);
    await (await ka).stop();
    await (await ct).stop(lab);
    await sleep(300);
  }
  return out;
}

/** The peer on fw1 (master) under the config's ruleset; returns its stop. */
async function peerMaster(lab: Lab, cfg: string): Promise<() => Promise<void>> {
  await applyRuleset(lab, 'fw1', await compiledRuleset(lab, cfg, 'fw1'));
  const sys = peerSystem(lab, cfg);
  await sys.start('fw1');
  await waitFor('the peer\'s fw1 master', async () => ((await sys.master()) === 'fw1' ? true : undefined), 20_000);
  return () => sys.stop('fw1');
}

interface RulesetCase {
  label: string;
  services: number;
  tables: string;
  mib: number;
  compileMs: number;
  applyMs: number;
}

async function rulesets(base: string): Promise<RulesetCase[]> {
  const NS = `${PREFIX}-nft`;
  const nft = createNft(['ip', 'netns', 'exec', NS, 'nft']);
  const out: RulesetCase[] = [];
  const cases: [string, number, number | undefined][] = SIZES.map((n) => [String(n), n, undefined]);
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
      out.push({ label, services: n, tables: `${elements} x ${slots} slots`, mib: c.script.length / 1024 / 1024, compileMs, applyMs });
    } finally {
      await runRaw('ip', ['netns', 'del', NS]);
    }
  }
  return out;
}

interface Reload {
  /** `fwlb reload` as a user runs it, wall time. */
  cliMs: number;
  /** The node's own: file read to kernel updated. */
  nodeMs: number;
  applyMs: number;
  mode: string;
  answer: string;
}

/** fwlb reload after adding one rule, 100 services; the node's own apply figure beside. */
async function reloadOneRule(lab: Lab, cfg: string): Promise<Reload[]> {
  startFwlb(lab, cfg, 'fw2');
  await fwlbReady(lab, 'fw2', 60_000);
  const out: Reload[] = [];
  const text = await readFile(cfg, 'utf8');
  for (let i = 0; i < 5; i++) {
    const rule = (port: number) => text.replace('  rules:\n', `  rules:\n    - allow: { proto: tcp, port: ${port}, from: inside, to: outside }\n`);
    // As a user does it: the CLI, wall time.
    await writeFile(cfg, rule(9000 + i));
    const t0 = performance.now();
    const answer = await run(process.execPath, [CLI_MAIN_JS, 'reload', '--control', control(lab, 'fw2')]).catch((e: Error) => e.message);
    const cliMs = performance.now() - t0;
    // The node's own time for the same kind of change: file read to kernel updated.
    await writeFile(cfg, rule(9100 + i));
    await controlCall(control(lab, 'fw2'), 'reload', undefined, 30_000);
    const st = (await controlCall(control(lab, 'fw2'), 'status')) as NodeStatus;
    out.push({ cliMs, nodeMs: st.reloads.lastMs ?? NaN, applyMs: st.ruleset.applyMs, mode: st.ruleset.applyMode, answer: answer.trim().split('\n')[0] ?? '' });
  }
  await writeFile(cfg, text);
  await lab.gracefulStop('fw2', 30_000);
  return out;
}

interface Starts {
  fwlb: { warm: Awaited<ReturnType<typeof fwlbStarts>>; cold: Awaited<ReturnType<typeof fwlbStarts>> };
  peer: { warm: number[]; cold: number[] };
}

/** Every start of one config: fwlb warm and cold, then the peer warm and cold, fw1 running each. */
async function allStarts(lab: Lab, cfg: string): Promise<Starts> {
  startFwlb(lab, cfg, 'fw1');
  await fwlbReady(lab, 'fw1', 60_000);
  const fwlb = { warm: await fwlbStarts(lab, cfg, 'warm'), cold: await fwlbStarts(lab, cfg, 'cold') };
  await lab.gracefulStop('fw1', 30_000);
  const stopPeer = await peerMaster(lab, cfg);
  const peer = { warm: await peerStarts(lab, cfg, 'warm'), cold: await peerStarts(lab, cfg, 'cold') };
  await stopPeer();
  return { fwlb, peer };
}

async function main(): Promise<void> {
  const base = await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8');
  const v = await peerVersions();
  const PEER = `keepalived ${v.keepalived} + conntrackd ${v.conntrackd}`;
  const out: string[] = [];
  const figures: Figure[] = [];
  const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  let reload: Reload[];
  const starts: Record<'lab' | 'svc100', Starts> = {} as Record<'lab' | 'svc100', Starts>;
  try {
    starts.lab = await allStarts(lab, await writeSyncedCluster(lab, base));
    const bigCfg = await writeSyncedCluster(lab, manyServices(base, 100));
    starts.svc100 = await allStarts(lab, bigCfg);
    startFwlb(lab, bigCfg, 'fw1');
    await fwlbReady(lab, 'fw1', 60_000);
    reload = await reloadOneRule(lab, bigCfg);
    await lab.gracefulStop('fw1', 30_000);
  } finally {
    await labDown(PREFIX);
  }
  const BOOT: Record<Boot, string> = {
    warm: 'warm restart (ruleset kept, conntrack empty)',
    cold: 'cold boot (reset: no nftables table, boot addresses only, conntrack empty)',
  };
  const CFG = { lab: 'lab cluster', svc100: '100 maglev services x 10 backends' } as const;
  const rows: string[][] = [];
  const row = (label: string, xs: number[], note: string) => [label, pct(xs, 50).toFixed(0), Math.max(...xs).toFixed(0), note];
  for (const c of ['lab', 'svc100'] as const) {
    for (const boot of ['warm', 'cold'] as const) {
      const f = starts[c].fwlb[boot];
      const p = starts[c].peer[boot];
      rows.push(
        row(`fwlb, ${CFG[c]}, ${boot}: spawn to ready`, f.wall, `ruleset: ${[...new Set(f.modes)].join(', ')}`),
        row('  the daemon\'s own count (process start to ready)', f.own, ''),
        row(`${PEER}, ${CFG[c]}, ${boot}: ${boot === 'cold' ? 'nft -f, then ' : ''}spawn to BACKUP and conntrackd listening`, p, 'no state table to wait for'),
      );
      const conditions = `fw2 started ${STARTS} times while fw1 runs (master), ${CFG[c]}, ${BOOT[boot]}`;
      for (const [stat, pick] of [['p50', (xs: number[]) => pct(xs, 50)], ['max', (xs: number[]) => Math.max(...xs)]] as const) {
        const id = `startup.${c}.${boot}.${stat}`;
        const figure = `start to ready, ${stat}, ${CFG[c]}, ${boot}`;
        figures.push(
          { id, figure, conditions, unit: 'ms', system: 'fwlb: spawn to ready (bulk sync done)', peer: false, value: num(pick(f.wall)), resolution: FWLB_POLL_MS },
          { id, figure, conditions, unit: 'ms', system: `${PEER}: ${boot === 'cold' ? 'nft -f, then ' : ''}spawn to BACKUP and conntrackd listening`, peer: true, value: num(pick(p)), resolution: PEER_POLL_MS },
        );
      }
      figures.push({ id: `startup.${c}.${boot}.own.p50`, figure: `start to ready, p50, ${CFG[c]}, ${boot}: the daemon's own count from its process start`, conditions, unit: 'ms', system: 'fwlb', peer: false, value: num(pct(f.own, 50)) });
    }
  }
  out.push(`Start to ready, ${STARTS} starts of fw2 while fw1 runs (ms; this machine, ${cpus().length} cores)`, table(['', 'p50', 'max', ''], rows), '');
  out.push(
    'Reload after one rule changed, 100 maglev services x 10 backends (ms)',
    table(['', 'fwlb reload (CLI, wall)', 'node: file to kernel', 'of which apply', 'how', 'answer'], reload.map((r, i) => [`reload ${i + 1}: one rule added`, r.cliMs.toFixed(0), String(r.nodeMs), String(r.applyMs), r.mode, r.answer])),
    '',
  );
  const reloadCond = `one rule added, 100 maglev services x 10 backends, ${reload.length} reloads (p50); applied as: ${[...new Set(reload.map((r) => r.mode))].join(', ')}`;
  figures.push(
    { id: 'startup.reload.cli.p50', figure: '`fwlb reload` as a user runs it (CLI, wall time)', conditions: reloadCond, unit: 'ms', system: 'fwlb', peer: false, value: num(pct(reload.map((r) => r.cliMs), 50)) },
    { id: 'startup.reload.node.p50', figure: 'reload, the node\'s own: file read to kernel updated', conditions: reloadCond, unit: 'ms', system: 'fwlb', peer: false, value: num(pct(reload.map((r) => r.nodeMs), 50)) },
    { id: 'startup.reload.apply.p50', figure: 'reload, of which the apply', conditions: reloadCond, unit: 'ms', system: 'fwlb', peer: false, value: num(pct(reload.map((r) => r.applyMs), 50)) },
  );
  const rs = await rulesets(base);
  out.push('Rulesets: maglev services of 10 backends, the whole table into an empty namespace', table(['services', 'tables', 'MiB', 'compile ms', 'apply ms'], rs.map((r) => [r.label, r.tables, r.mib.toFixed(2), r.compileMs.toFixed(0), r.applyMs.toFixed(0)])));
  for (const r of rs) {
    const conditions = `${r.label} maglev services of 10 backends (${r.tables}), the whole table into an empty namespace`;
    const id = `startup.ruleset.${r.label.split(' ')[0]}${r.label.includes('old') ? '.old' : ''}`;
    figures.push(
      { id: `${id}.mib`, figure: `whole ruleset size, ${r.label} services`, conditions, unit: 'MiB', system: 'fwlb', peer: false, value: Number(r.mib.toFixed(2)) },
      { id: `${id}.compile`, figure: `whole ruleset compile, ${r.label} services`, conditions, unit: 'ms', system: 'fwlb', peer: false, value: num(r.compileMs) },
      { id: `${id}.apply`, figure: `whole ruleset apply, ${r.label} services`, conditions, unit: 'ms', system: 'fwlb', peer: false, value: num(r.applyMs) },
    );
  }
  process.stdout.write(out.join('\n') + '\n');
  await writeFigures(values.figures, 'startup', figures);
}

await main();
