/**
 * State sync, fwlb beside conntrackd (Debian's package, FTFW) in one run, on the same lab
 * (two firewalls, the sync over their direct cable) and the same load. Entries are written
 * straight into the master's table over ctnetlink (as a busy firewall's conntrack fills:
 * established TCP with DNAT), and counted where each system puts them: in the backup's
 * kernel. conntrackd runs with DisableExternalCache On, so it too writes what it receives
 * into the kernel at once (with its default external cache the entries would sit in its
 * memory until a commit, and arrival could not be timed per entry).
 *
 *   node dist/bench/sync.js [--rates 1000,10000,50000,0] [--seconds 3]
 *                           [--bulk 100000,1000000] [--systems fwlb,conntrackd]
 *
 * Each system first carries `--warmup` entries (not measured), then, per system: for each offered rate (0: as fast as one writer process gets the
 * master's kernel to take them), the rate achieved, the entries in the backup's kernel
 * (none lost means all), lag p50/p99 (entry created on the master to the backup's kernel
 * event); the highest rate with none lost; bulk sync of N entries to a node that starts
 * (from its daemon's start to its table complete: fwlb `ready`; conntrackd with
 * StartupResync, the backup's kernel counting N); RSS of both daemons after the largest
 * bulk. Prints figures; never asserts.
 *
 * The host's nf_conntrack_max and hash size are raised for the run (a million entries in
 * two namespaces) and put back after.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { controlCall } from '../src/control/client.js';
import { CT_TOOL_JS, REPO_ROOT } from '../src/lab/paths.js';
import { Conntrackd, sandwichConntrackd } from '../src/lab/conntrackd.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { num, peerVersions, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '1000,10000,50000,0' },
    seconds: { type: 'string', default: '3' },
    bulk: { type: 'string', default: '100000,1000000' },
    systems: { type: 'string', default: 'fwlb,conntrackd' },
    /** Entries sent through each system before the measured runs (JIT and caches warm). */
    warmup: { type: 'string', default: '20000' },
    'bulk-timeout': { type: 'string', default: '180' },
    prefix: { type: 'string', default: 'bsync' },
    /** Print fwlb's sync counters (both nodes, non-zero) after the rate runs. */
    counters: { type: 'boolean', default: false },
    /** Write the figures as JSON here (bench/figures.ts). */
    figures: { type: 'string' },
  },
});
const PREFIX = values.prefix!;
const RATES = values.rates!.split(',').map(Number);
const SECONDS = Number(values.seconds);
const BULKS = values.bulk!.split(',').filter((x) => x !== '').map(Number);
const SYSTEMS = values.systems!.split(',') as ('fwlb' | 'conntrackd')[];

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const fmtN = (n: number) => n.toLocaleString('en-US');

/**
 * The host's conntrack limits, raised for the run and restored after. Only when the run needs
 * more than the host allows: both are the whole machine's (a resize of the hash table touches
 * every namespace's traffic, other labs' included), so a small run leaves them alone.
 */
async function raiseLimits(): Promise<() => Promise<void>> {
  const files = ['/proc/sys/net/netfilter/nf_conntrack_max', '/sys/module/nf_conntrack/parameters/hashsize'];
  const old = await Promise.all(files.map((f) => readFile(f, 'utf8').then((s) => s.trim())));
  // Entries a namespace may hold at once (they outlive a run: 600 s timeouts): every rate
  // run's, or the largest bulk (the tables are flushed before each), with room to spare.
  const rateEntries = Number(values.warmup) + RATES.reduce((n, r) => n + (r > 0 ? Math.max(1000, r * SECONDS) : 50_000 * SECONDS) + PRIME, PRIME);
  const need = Math.max(rateEntries, ...BULKS) * 1.2;
  if (Number(old[0]) >= need) return async () => undefined;
  const want = Math.max(...BULKS, 0) * 2 + 500_000;
  if (Number(old[0]) < want) await writeFile(files[0]!, String(want));
  if (Number(old[1]) < 1_048_576) await writeFile(files[1]!, '1048576');
  return async () => {
    for (const [i, f] of files.entries()) await writeFile(f, old[i]!).catch(() => undefined);
  };
}

interface System {
  name: string;
  /** Non-zero sync counters of both nodes, for --counters. */
  counters?(): Promise<string>;
  /** Both nodes running and in sync (fw1 the one that speaks). */
  up(): Promise<void>;
  stopBackup(): Promise<void>;
  /** Starts the backup; resolves when its table is complete. */
  startBackup(expect: number): Promise<void>;
  pids(): { fw1?: number; fw2?: number };
  down(): Promise<void>;
}

function fwlbSystem(lab: Lab, cfg: string): System {
  const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
  const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
  const start = async (fw: string) => {
    lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'warn']);
    await waitFor(`${fw} to run`, () => controlCall(control(fw), 'ready').catch(() => undefined), 10_000);
  };
  // `ready`, not `status`: status reads every flow of the services (issue 12).
  const ready = async (fw: string) => ((await controlCall(control(fw), 'ready').catch(() => ({ ready: false }))) as { ready: boolean }).ready || undefined;
  return {
    name: 'fwlb',
    async up() {
      await start('fw1');
      await waitFor('fw1 master', async () => ((await status('fw1')).vrrp.groups[0]?.state === 'master' ? true : undefined), 20_000);
      await start('fw2');
      await waitFor('fw2 ready', () => ready('fw2'), 20_000);
    },
    async stopBackup() {
      await lab.gracefulStop('fw2');
    },
    async startBackup() {
      lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', control('fw2'), '--log-level', 'warn']);
      try {
        await waitFor('fw2 bulk sync', () => ready('fw2'), Number(values['bulk-timeout']) * 1000, 100);
      } catch (e) {
        const y = (await status('fw2').catch(() => null))?.sync;
        if (y) process.stderr.write(`fw2: bulk ${JSON.stringify(y.bulk)}\n  peers ${JSON.stringify(y.peers)}\n`);
        throw e;
      }
    },
    pids: () => ({ fw1: lab.daemon('fw1')?.pid, fw2: lab.daemon('fw2')?.pid }),
    async counters() {
      const nonzero = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).filter(([, n]) => n > 0));
      const lines = [];
      for (const fw of ['fw1', 'fw2']) {
        const y = (await status(fw)).sync;
        if (y) lines.push(`${fw}: ${JSON.stringify(nonzero(y.counters))}\n  drops ${JSON.stringify(nonzero(y.drops))}`);
      }
      return lines.join('\n');
    },
    async down() {
      for (const fw of ['fw2', 'fw1']) if (lab.daemon(fw)) await lab.gracefulStop(fw).catch(() => undefined);
    },
  };
}

function conntrackdSystem(lab: Lab): System {
  const d: Partial<Record<'fw1' | 'fw2', Conntrackd>> = {};
  const opts = (fw: 'fw1' | 'fw2') => sandwichConntrackd(fw, { externalCache: false, startupResync: true, hashLimit: Math.max(...BULKS, 0) * 2 + 500_000 });
  return {
    name: 'conntrackd',
    async up() {
      d.fw1 = await Conntrackd.start(lab, 'fw1', opts('fw1'));
      d.fw2 = await Conntrackd.start(lab, 'fw2', opts('fw2'));
    },
    async stopBackup() {
      await d.fw2?.stop(lab);
      d.fw2 = undefined;
    },
    async startBackup(expect: number) {
      d.fw2 = await Conntrackd.start(lab, 'fw2', opts('fw2'));
      await waitFor('conntrackd resync on fw2', async () => (Number((await lab.exec('fw2', ['conntrack', '-C'])).trim()) >= expect ? true : undefined), Number(values['bulk-timeout']) * 1000, 100);
    },
    pids: () => ({ fw1: d.fw1?.handle.pid, fw2: d.fw2?.handle.pid }),
    async down() {
      for (const fw of ['fw2', 'fw1'] as const) await d[fw]?.stop(lab).catch(() => undefined);
    },
  };
}

async function rssMiB(pid: number | undefined): Promise<string> {
  if (pid === undefined) return '-';
  const s = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? NaN);
  return Number.isFinite(kb) ? `${(kb / 1024).toFixed(0)} MiB` : '-';
}

const count = async (lab: Lab, fw: string) => Number((await lab.exec(fw, ['conntrack', '-C'])).trim());

/** Creates `n` entries on fw1 at `rate`, watches them arrive in fw2's kernel. */
/** Entries sent through before each measured run, to the same watcher (not measured). */
const PRIME = 2000;

/** Creates `n` entries on fw1 at `rate`, watches them arrive in fw2's kernel. Uses indexes from..from+n+PRIME. */
async function rateRun(lab: Lab, n: number, rate: number, from: number) {
  const log = `${lab.stateDir}/watch-${from}.log`;
  // The watcher timestamps arrivals: at a high priority, so that it is not the one starved
  // on two cores shared by the load, both daemons and itself (the same for both systems).
  const watcher = lab.spawn('fw2', ['nice', '-n', '-15', process.execPath, CT_TOOL_JS, 'watch', '--count', String(n + PRIME), '--timeout', String(Math.ceil(n / Math.max(rate, 20_000)) + 20)], { log });
  await waitFor('the watcher', async () => ((await readFile(log, 'utf8').catch(() => '')).startsWith('ready') ? true : undefined), 10_000);
  // A fresh watcher (and a writer, and a path idle since the last run) starts cold: the first
  // few hundred ms of every run showed lags of tens of ms that were the watcher's JIT.
  await lab.exec('fw1', [process.execPath, CT_TOOL_JS, 'create', '--count', String(PRIME), '--rate', '0', '--from', String(from + n), '--quiet']);
  await sleep(300);
  const before = await count(lab, 'fw2');
  const out = await lab.exec('fw1', [process.execPath, CT_TOOL_JS, 'create', '--count', String(n), '--rate', String(rate), '--from', String(from)]);
  await watcher.wait(120_000);
  const created = new Map((JSON.parse(out) as { created: [number, number][] }).created);
  const seen = new Map((JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { seen: [number, number][] }).seen);
  // Ground truth for loss is the backup's table (the watcher's own event socket can overflow).
  let arrived = 0;
  for (let i = 0; i < 20; i++) {
    arrived = (await count(lab, 'fw2')) - before;
    if (arrived >= created.size) break;
    await sleep(500);
  }
  let first = Infinity;
  let last = -Infinity;
  for (const t of created.values()) {
    if (t < first) first = t;
    if (t > last) last = t;
  }
  const offered = (created.size / (last - first)) * 1000;
  const lags = [...created].filter(([i]) => seen.has(i)).map(([i, t]) => seen.get(i)! - t).sort((a, b) => a - b);
  if (process.env.FWLB_BENCH_LAGS) await writeFile(process.env.FWLB_BENCH_LAGS, JSON.stringify([...created].filter(([i]) => seen.has(i)).map(([i, t]) => [t, seen.get(i)! - t])));
  return { created: created.size, offered, arrived, lags };
}

const figures: Figure[] = [];
let label: (name: string) => string = (name) => name;

async function main(): Promise<void> {
  const v = await peerVersions();
  label = (name) => (name === 'conntrackd' ? `conntrackd ${v.conntrackd} (FTFW, DisableExternalCache On)` : name);
  const restore = await raiseLimits();
  const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  const results: Record<string, { rates: string[][]; best: number; bulk: string[][]; rss: string[] }> = {};
  try {
    await writeFile(`${lab.stateDir}/cluster.key`, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    const cfg = `${lab.stateDir}/cluster.yaml`;
    await writeFile(cfg, (await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8')).replace('  name: lab\n', '  name: lab\n  key_file: cluster.key\n'));
    for (const name of SYSTEMS) {
      for (const fw of ['fw1', 'fw2']) await lab.exec(fw, ['conntrack', '-F']).catch(() => '');
      const sys = name === 'fwlb' ? fwlbSystem(lab, cfg) : conntrackdSystem(lab);
      const r = (results[name] = { rates: [] as string[][], best: 0, bulk: [] as string[][], rss: [] as string[] });
      process.stderr.write(`${name}: starting\n`);
      await sys.up();
      let from = 0;
      // Both systems warm (a daemon that just started runs its first thousands of records
      // through the interpreter: fwlb's first second at 10,000/s showed lag up to 280 ms).
      const warm = Number(values.warmup);
      if (warm > 0) {
        process.stderr.write(`${name}: warm-up, ${fmtN(warm)} entries\n`);
        await rateRun(lab, warm, 0, from);
        from += warm + PRIME;
      }
      for (const rate of RATES) {
        const n = rate > 0 ? Math.max(1000, rate * SECONDS) : 50_000 * SECONDS;
        process.stderr.write(`${name}: ${fmtN(n)} entries at ${rate || 'full speed'}/s\n`);
        const x = await rateRun(lab, n, rate, from);
        from += n + PRIME;
        const lost = x.created - x.arrived;
        if (lost <= 0) r.best = Math.max(r.best, x.offered);
        const offered = rate > 0 ? `${fmtN(rate)}/s offered` : 'as fast as one writer goes';
        const base = { conditions: `${fmtN(x.created)} established TCP entries (DNAT) written into the master's kernel, ${offered}; counted in the backup's kernel`, system: label(name), peer: name !== 'fwlb' };
        const key = `sync.rate.${rate > 0 ? rate : 'full'}`;
        figures.push(
          { ...base, id: `${key}.achieved`, figure: `entries/s the writer achieved, ${offered}`, unit: 'entries/s', value: Math.round(x.offered) },
          { ...base, id: `${key}.lost`, figure: `entries lost, ${offered}`, unit: `of ${fmtN(x.created)}`, value: Math.max(0, lost) },
          { ...base, id: `${key}.lag_p50`, figure: `lag master -> backup kernel p50, ${offered}`, unit: 'ms', value: num(pct(x.lags, 50)) },
          { ...base, id: `${key}.lag_p99`, figure: `lag master -> backup kernel p99, ${offered}`, unit: 'ms', value: num(pct(x.lags, 99)) },
        );
        r.rates.push([
          `${name}`,
          rate > 0 ? `${fmtN(rate)}/s` : 'full speed',
          `${fmtN(Math.round(x.offered))}/s`,
          `${fmtN(Math.min(x.arrived, x.created))}/${fmtN(x.created)}`,
          `${pct(x.lags, 50).toFixed(2)} ms`,
          `${pct(x.lags, 99).toFixed(2)} ms`,
        ]);
      }
      if (values.counters && sys.counters) process.stderr.write(`${await sys.counters()}\n`);
      for (const n of BULKS) {
        process.stderr.write(`${name}: bulk of ${fmtN(n)}\n`);
        await sys.stopBackup();
        for (const fw of ['fw1', 'fw2']) await lab.exec(fw, ['conntrack', '-F']).catch(() => '');
        const made = JSON.parse(await lab.exec('fw1', [process.execPath, CT_TOOL_JS, 'create', '--count', String(n), '--rate', '0', '--from', String(from), '--quiet'])) as { created: number };
        from += n;
        const onMaster = await count(lab, 'fw1');
        const t0 = performance.now();
        let took = NaN;
        try {
          await sys.startBackup(made.created);
          took = performance.now() - t0;
        } catch (e) {
          process.stderr.write(`${name}: bulk of ${n} did not complete: ${(e as Error).message}\n`);
        }
        await sleep(500);
        const onBackup = await count(lab, 'fw2');
        r.bulk.push([name, fmtN(n), Number.isNaN(took) ? 'did not complete' : `${(took / 1000).toFixed(2)} s`, `${fmtN(onBackup)}/${fmtN(onMaster)}`]);
        const p = sys.pids();
        r.rss = [name, fmtN(onMaster), await rssMiB(p.fw1), await rssMiB(p.fw2)];
        const base = { conditions: `${fmtN(n)} entries created in the master's kernel, then the backup's daemon started (timeout ${values['bulk-timeout']} s)`, system: label(name), peer: name !== 'fwlb' };
        figures.push(
          { ...base, id: `sync.bulk.${n}.seconds`, figure: `bulk sync of ${fmtN(n)} entries, daemon start to table complete`, unit: 's', value: Number.isNaN(took) ? null : Number((took / 1000).toFixed(2)), resolution: 0.1 },
          { ...base, id: `sync.bulk.${n}.rss.master`, figure: `RSS of the master's daemon holding ${fmtN(n)} entries`, unit: 'MiB', value: num(parseFloat(await rssMiB(p.fw1))), resolution: 1 },
          { ...base, id: `sync.bulk.${n}.rss.backup`, figure: `RSS of the backup's daemon holding ${fmtN(n)} entries`, unit: 'MiB', value: num(parseFloat(await rssMiB(p.fw2))), resolution: 1 },
        );
      }
      await sys.down();
      // fwlb's ruleset stays in the kernel after its daemon stops (the data plane runs on):
      // it would drop the next system's sync port.
      for (const fw of ['fw1', 'fw2']) await lab.exec(fw, ['nft', 'flush', 'ruleset']).catch(() => '');
    }
  } finally {
    await labDown(PREFIX);
    await restore();
  }

  const rows = SYSTEMS.map((s) => results[s]!);
  console.log('\nState sync: two firewalls, the sync over their direct cable (veth), entries written into the master\'s kernel (TCP, DNAT)');
  console.log(`fwlb: UDP 3780, HMAC-SHA256, binary records; conntrackd ${v.conntrackd}: FTFW, UDP 3781, DisableExternalCache On (writes into the kernel as it receives)`);
  console.log('\nLag and loss at offered rates (arrived: entries in the backup\'s kernel)');
  console.log(table(['system', 'offered', 'achieved', 'arrived', 'lag p50', 'lag p99'], rows.flatMap((r) => r.rates)));
  console.log('\nHighest rate with no entry lost');
  console.log(table(['system', 'rate'], SYSTEMS.map((s) => [s, `${fmtN(Math.round(results[s]!.best))} entries/s`])));
  console.log('\nBulk sync to a node that starts (its daemon\'s start to its table complete)');
  console.log(table(['system', 'entries', 'time', 'backup / master table'], rows.flatMap((r) => r.bulk)));
  console.log('\nRSS after the largest bulk sync');
  console.log(table(['system', 'entries', 'master (fw1)', 'backup (fw2)'], rows.map((r) => r.rss)));
  for (const name of SYSTEMS) {
    figures.push({ id: 'sync.best_rate', figure: 'highest rate with no entry lost (limited by the writer)', conditions: `rates offered: ${RATES.map((r) => r || 'full speed').join(', ')}`, unit: 'entries/s', system: label(name), peer: name !== 'fwlb', value: Math.round(results[name]!.best) });
  }
  await writeFigures(values.figures, 'sync', figures);
}

await main();
