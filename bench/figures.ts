/**
 * Figures anyone can reproduce (issue 20): one command runs every benchmark that feeds the
 * README's measured figures, each with `--figures FILE` (the figures it prints, as data), and
 * writes one dated markdown table: the commit (and whether the tree was dirty), the machine,
 * each figure with its conditions, fwlb's value and the peer's from the same run, and the
 * noise: every benchmark is run --runs times (rounds one after the other, so that a slow
 * stretch of the machine spreads over all of them), a figure is the median of its runs and its
 * noise is their spread, never less than the method's own resolution.
 *
 *   node dist/bench/figures.js [--quick] [--runs 2] [--out bench/figures] [--only startup,status,...] [--soak-minutes 10] [--between A.md,B.md]
 *   node dist/bench/figures.js --compare FILE_A FILE_B [--between A.md,B.md]
 *
 * --quick: each benchmark at its smallest durations and sizes, a smoke test of the whole chain
 * (its figures are not the README's). The soak (bench/failover.ts --soak-minutes) runs once, in
 * the first round, and not with --quick. Labs use the prefixes fig*; each is taken down after
 * its benchmark, whatever happened.
 *
 * --compare: per figure, both files' values, the difference and whether it is within the noise
 * both state (their values differ by no more than the sum of their noises).
 *
 * --between A.md,B.md: two earlier tables of one commit on this machine, some hours apart.
 * The spread of two rounds back to back is the noise within a run; between runs the machine
 * itself drifts (a shared VM: 21 of 213 figures of a second run on one commit fell outside
 * the first's within-run noise). With --between, a figure's noise is also never less than
 * the relative difference of its values in A and B times its value (for a figure measured
 * in only one of them or in neither: the median of those relative differences for its unit).
 * Stated in the table; with --compare it widens both files' noises the same way.
 *
 * Writes bench/figures/YYYY-MM-DD-<commit>.md (with -2, -3... when it exists) and beside it a
 * .log of everything the benchmarks printed. Prints figures; never asserts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { isAbsolute, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { labDown } from '../src/lab/lab.js';
import { REPO_ROOT } from '../src/lab/paths.js';
import { runRaw } from '../src/lib/exec.js';
import { peerVersions, table, type Figure } from './util.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string', default: '2' },
    out: { type: 'string', default: `${REPO_ROOT}/bench/figures` },
    only: { type: 'string' },
    'soak-minutes': { type: 'string', default: '10' },
    compare: { type: 'boolean', default: false },
    between: { type: 'string' },
  },
});

/** A benchmark as this command runs it. */
interface Bench {
  name: string;
  /** The benchmark's script (dist/bench/SCRIPT.js) when it is not `name` (one script at other settings). */
  script?: string;
  /** Its lab prefix here (fig*: apart from the suite's and the other benchmarks' labs). */
  prefix: string;
  /** Which of the README's figures it produces. */
  feeds: string;
  /** The README's conditions. */
  full: string[];
  /** The smallest durations and sizes that still run every part. */
  quick: string[];
  /** One run's wall time, seconds, full and quick (estimates from the benchmarks' own durations; the plan and the timeout). */
  seconds: { full: number; quick: number };
}

const SOAK_MINUTES = Number(values['soak-minutes']);

const BENCHES: Bench[] = [
  {
    name: 'startup',
    prefix: 'figst',
    feeds: 'README "Readiness, restarts and stops": start to ready (warm and cold), whole rulesets, a one-rule reload',
    full: ['--starts', '10', '--sizes', '10,100,500'],
    quick: ['--starts', '2', '--sizes', '10,100'],
    seconds: { full: 180, quick: 70 },
  },
  {
    name: 'status',
    prefix: 'figstat',
    feeds: 'README "Load balancing": what status costs, beside keepalived + conntrackd',
    full: ['--flows', '100000', '--seconds', '20', '--rate', '20', '--idle', '1000'],
    quick: ['--flows', '2000', '--seconds', '3', '--rate', '20', '--idle', '1000'],
    seconds: { full: 200, quick: 50 },
  },
  {
    name: 'sessions',
    prefix: 'figse',
    feeds: 'README "Failover (VRRP)" and "Connection-state sync": sessions kept when the master fails',
    full: ['--sessions', '200', '--modes', 'switched,crash,graceful', '--systems', 'fwlb,nosync,peer', '--seconds', '10'],
    quick: ['--sessions', '20', '--modes', 'switched', '--systems', 'fwlb,nosync,peer', '--seconds', '6'],
    seconds: { full: 160, quick: 40 },
  },
  {
    name: 'failover',
    prefix: 'figfo',
    feeds: 'README "Failover (VRRP)": the failover table, and the soak of "Timing under load"',
    full: ['--systems', 'fwlb,ka01,ka01bfd', '--modes', 'switched,crash,link,graceful'],
    quick: ['--systems', 'fwlb,ka01,ka01bfd', '--modes', 'switched'],
    seconds: { full: 150, quick: 40 },
  },
  {
    name: 'failover6',
    script: 'failover',
    prefix: 'figfo6',
    feeds: 'README "Failover (VRRP)", IPv6: the same failures with an IPv6 virtual router beside each IPv4 one, the client on the IPv6 VIP',
    full: ['--systems', 'fwlb,ka01', '--modes', 'switched,crash,link,graceful', '--family', '6'],
    quick: ['--systems', 'fwlb,ka01', '--modes', 'switched', '--family', '6'],
    seconds: { full: 110, quick: 30 },
  },
  {
    name: 'sharing',
    prefix: 'figsh',
    feeds: 'README "Active-active sharing": division of work, a node failing',
    full: ['--udp', '1500', '--tcp', '200', '--window', '8', '--modes', 'crash,kill,graceful'],
    quick: ['--udp', '100', '--tcp', '20', '--window', '2', '--modes', 'crash,kill,graceful'],
    seconds: { full: 240, quick: 130 },
  },
  {
    name: 'sync',
    prefix: 'figsy',
    feeds: 'README "Connection-state sync": lag, loss, bulk sync, RSS beside conntrackd',
    full: ['--rates', '1000,10000,50000,0', '--seconds', '3', '--bulk', '100000,1000000', '--warmup', '20000', '--bulk-timeout', '120'],
    quick: ['--rates', '1000', '--seconds', '1', '--bulk', '5000', '--warmup', '1000', '--bulk-timeout', '30'],
    seconds: { full: 420, quick: 25 },
  },
  {
    name: 'cost',
    prefix: 'figco',
    feeds: 'README "Connection-state sync" (issue 25): an idle node\'s memory, CPU and wakeups per thread, beside keepalived + conntrackd',
    full: ['--seconds', '30'],
    quick: ['--seconds', '5'],
    seconds: { full: 150, quick: 60 },
  },
  {
    name: 'churn',
    prefix: 'figch',
    feeds: 'README "Readiness, restarts and stops": sessions under churn beside keepalived + conntrackd',
    full: ['--seconds', '300', '--seed', '4242'],
    quick: ['--seconds', '10', '--seed', '4242'],
    seconds: { full: 720, quick: 90 },
  },
  {
    name: 'sharing-churn',
    prefix: 'figshc',
    feeds: 'README "Active-active sharing": sessions and flows under churn, three nodes sharing, beside keepalived + conntrackd active-standby',
    full: ['--seconds', '180', '--seed', '4242'],
    quick: ['--seconds', '20', '--seed', '4242'],
    seconds: { full: 480, quick: 120 },
  },
  {
    name: 'config-push',
    prefix: 'figcp',
    feeds: 'README "One config, every node": a push to every node applied (2 and 3 nodes, 500 services), the direct path beside, the rollback after a missed confirm',
    full: ['--nodes', '2,3', '--services', '500', '--pushes', '5', '--confirm', '3s'],
    quick: ['--nodes', '2', '--services', '20', '--pushes', '2', '--confirm', '1s'],
    seconds: { full: 150, quick: 40 },
  },
  {
    name: 'bgp',
    prefix: 'figbgp',
    feeds: 'README "Beyond one segment: BGP through BIRD": per change of the router\'s ECMP set, the time to the change, the worst stall and the datagrams lost, beside plain BIRD',
    full: ['--tcp', '250', '--udp', '500'],
    quick: ['--tcp', '20', '--udp', '40'],
    seconds: { full: 200, quick: 160 },
  },
  {
    name: 'config-push-lab',
    script: 'config-push',
    prefix: 'figcpl',
    feeds: 'README "One config, every node": the same for the lab cluster file itself',
    full: ['--nodes', '2,3', '--services', '0', '--pushes', '5', '--confirm', '3s'],
    quick: ['--nodes', '2', '--services', '0', '--pushes', '2', '--confirm', '1s'],
    seconds: { full: 40, quick: 25 },
  },
];

/** What a figures file holds for --compare (in an HTML comment at its end). */
interface Series {
  id: string;
  bench: string;
  figure: string;
  conditions: string;
  unit: string;
  system: string;
  peer: boolean;
  /** One per run (null: not measured in that run). */
  runs: (number | null)[];
  value: number | null;
  noise: number | null;
  resolution: number | null;
}

interface Data {
  version: 1;
  date: string;
  commit: string;
  dirty: boolean;
  /** Digest of dist/'s .js files at the start (the code run). */
  dist: string;
  quick: boolean;
  runs: number;
  machine: string;
  series: Series[];
  /** The between-run term's source (--between): the two tables and their commit. */
  between?: { files: [string, string]; commit: string };
  /** The machine's speed: the calibration workload's time (ms) before each benchmark run. */
  calibrationMs?: number[];
}

/**
 * The machine's speed, measured: a fixed single-thread workload (sha256 of 32 MiB, then
 * 20,000 small objects through JSON 5 times), the best of three, in ms. This VM's speed moves
 * between hours (two runs of one commit 4.5 hours apart: the peers' CPU-bound figures
 * differed by a factor of 1.7); a table that states it says which hour was the slower one.
 */
function calibrate(): number {
  const best: number[] = [];
  const buf = Buffer.alloc(1 << 20, 7);
  const objects = Array.from({ length: 20_000 }, (_, i) => ({ i, s: `entry ${i}`, a: [i, i * 2] }));
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    const h = createHash('sha256');
    for (let i = 0; i < 32; i++) h.update(buf);
    h.digest();
    for (let j = 0; j < 5; j++) JSON.parse(JSON.stringify(objects));
    best.push(performance.now() - t0);
  }
  return Math.min(...best);
}


function speedLine(ms: readonly number[] | undefined): string {
  if (!ms?.length) return 'not measured (a table from before the calibration)';
  return `the calibration workload (sha256 of 32 MiB, 20,000 objects through JSON 5 times, best of 3) took ${median(ms).toFixed(0)} ms (median; ${Math.min(...ms).toFixed(0)}-${Math.max(...ms).toFixed(0)} over the ${ms.length} times it ran, before each benchmark): a table whose calibration took longer ran on a slower machine`;
}

const DATA_OPEN = '<!-- figures-data';
const DATA_CLOSE = '-->';

// ---------------------------------------------------------------------------------------
// Numbers as the tables show them.

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function fmt(x: number | null): string {
  if (x === null) return '-';
  const a = Math.abs(x);
  const digits = a >= 100 || Number.isInteger(x) ? 0 : a >= 10 ? 1 : 2;
  return x.toLocaleString('en-US', { minimumFractionDigits: 0, maximumFractionDigits: digits });
}

function withUnit(x: number | null, unit: string): string {
  if (x === null) return 'none';
  if (unit === '%') return `${fmt(x)}%`;
  return `${fmt(x)} ${unit}`;
}

/** value ± noise, the runs' values; the system's label where it says more than "fwlb". */
function cell(s: Series, showSystem: boolean): string {
  const measured = s.runs.filter((v): v is number => v !== null);
  const noise = s.noise === null ? '' : ` ±${fmt(s.noise)}`;
  const runs = s.runs.length > 1 ? `<br>runs: ${s.runs.map(fmt).join(', ')}` : '';
  const missing = measured.length < s.runs.length && measured.length > 0 ? ` (not measured in ${s.runs.length - measured.length} of ${s.runs.length} runs)` : '';
  return `${showSystem ? `${s.system}: ` : ''}**${withUnit(s.value, s.unit)}**${noise}${runs}${missing}`;
}

// ---------------------------------------------------------------------------------------
// Running the benchmarks.

const sh = async (cmd: string, args: string[]) => (await runRaw(cmd, args).catch(() => ({ status: 1, stdout: '', stderr: '' }))).stdout.trimEnd();

async function gitState(outDir: string): Promise<{ commit: string; short: string; dirty: string[]; diffDigest: string }> {
  const git = (args: string[]) => sh('git', ['-C', REPO_ROOT, '--no-optional-locks', ...args]);
  const commit = await git(['rev-parse', 'HEAD']);
  const short = await git(['rev-parse', '--short', 'HEAD']);
  // What this command writes (here or in the default place) is not a change of the code measured.
  const ours = [relative(REPO_ROOT, outDir), 'bench/figures'].filter((d) => d !== '' && !d.startsWith('..'));
  const dirty = (await git(['status', '--porcelain'])).split('\n').filter((l) => l.trim() !== '' && !ours.some((d) => `${l.slice(3)}/`.startsWith(`${d}/`)));
  const diffDigest = createHash('sha256').update(await git(['diff', 'HEAD'])).digest('hex').slice(0, 12);
  return { commit, short, dirty, diffDigest };
}

/**
 * A digest of the compiled code the benchmarks run (dist/): the working tree is shared, and a
 * rebuild during the run (someone else's, or a branch switch) would mix two versions of it.
 */
async function distDigest(): Promise<string> {
  const root = `${REPO_ROOT}/dist`;
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.js')).sort();
  const h = createHash('sha256');
  for (const f of files) h.update(f).update(await readFile(`${root}/${f}`).catch(() => Buffer.alloc(0)));
  return h.digest('hex').slice(0, 12);
}

async function machine(): Promise<string> {
  const c = cpus();
  const v = await peerVersions();
  const nft = /v[\d.]+/.exec(await sh('nft', ['--version']))?.[0] ?? '?';
  return `${c.length} cores (${c[0]?.model ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB; Linux ${release()}; node ${process.version}; nftables ${nft}; keepalived ${v.keepalived}; conntrackd ${v.conntrackd}`;
}

/** The benchmark running now (our child: stopped by its PID on ^C). */
let running: ChildProcess | undefined;

/** Runs one benchmark once; its output appended to the log; its figures, or why there are none. */
async function runBench(b: Bench, args: string[], log: NodeJS.WritableStream, tmp: string, round: number): Promise<{ figures: Figure[]; error?: string; seconds: number }> {
  const file = `${tmp}/${b.name}-${round}.json`;
  const argv = [`${REPO_ROOT}/dist/bench/${b.script ?? b.name}.js`, ...args, '--prefix', b.prefix, '--figures', file];
  log.write(`\n===== ${new Date().toISOString()} round ${round}: node dist/bench/${b.script ?? b.name}.js ${args.join(' ')} --prefix ${b.prefix}\n`);
  const t0 = performance.now();
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  running = child;
  child.stdout.on('data', (d: Buffer) => log.write(d));
  child.stderr.on('data', (d: Buffer) => log.write(d));
  // A benchmark that hangs is stopped (its own process, by PID), and its lab taken down below.
  const limitMs = ((values.quick ? b.seconds.quick : b.seconds.full) * 4 + (args.includes('--soak-minutes') ? SOAK_MINUTES * 60 : 0) + 300) * 1000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  }, limitMs);
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  clearTimeout(timer);
  running = undefined;
  const seconds = (performance.now() - t0) / 1000;
  await labDown(b.prefix).catch((e: Error) => log.write(`lab down ${b.prefix}: ${e.message}\n`));
  if (code !== 0) return { figures: [], error: timedOut ? `stopped after ${Math.round(limitMs / 1000)} s` : `exit code ${code}`, seconds };
  try {
    return { figures: (JSON.parse(await readFile(file, 'utf8')) as { figures: Figure[] }).figures, seconds };
  } catch (e) {
    return { figures: [], error: `no figures written (${(e as Error).message})`, seconds };
  }
}

/** Figures of every run of a benchmark -> one series per figure and system. */
function collect(bench: string, perRun: Figure[][]): Series[] {
  const out = new Map<string, Series>();
  perRun.forEach((figs, r) => {
    for (const f of figs) {
      const key = `${f.id}\u0000${f.system}`;
      let s = out.get(key);
      if (!s) {
        s = { id: f.id, bench, figure: f.figure, conditions: f.conditions, unit: f.unit, system: f.system, peer: f.peer, runs: perRun.map(() => null), value: null, noise: null, resolution: f.resolution ?? null };
        out.set(key, s);
      }
      s.runs[r] = f.value;
      if (f.resolution !== undefined) s.resolution = Math.max(s.resolution ?? 0, f.resolution);
    }
  });
  const spreads = new Map<Series, number>();
  for (const s of out.values()) {
    const xs = s.runs.filter((v): v is number => v !== null);
    if (xs.length === 0) continue;
    s.value = median(xs);
    // With one run there is no spread to state.
    if (xs.length > 1) spreads.set(s, Math.max(...xs) - Math.min(...xs));
  }
  // Two runs can agree by chance: a figure's noise is never less than the typical relative
  // spread of the benchmark's figures in the same unit (the median over them), nor than its
  // method's resolution.
  const typical = new Map<string, number>();
  for (const unit of new Set([...spreads.keys()].map((s) => s.unit))) {
    const rel = [...spreads].filter(([s]) => s.unit === unit && s.value !== 0).map(([s, d]) => d / Math.abs(s.value!));
    if (rel.length) typical.set(unit, median(rel));
  }
  for (const s of out.values()) {
    if (s.value === null) continue;
    s.noise = Math.max(spreads.get(s) ?? 0, s.resolution ?? 0, (typical.get(s.unit) ?? 0) * Math.abs(s.value));
  }
  return [...out.values()];
}

function markdownSection(b: Bench, commands: string[], series: Series[], errors: string[], seconds: number[]): string {
  const cmds = [...new Set(commands)];
  const lines = [
    `## ${b.name} (bench/${b.script ?? b.name}.ts)`,
    '',
    `${b.feeds}.`,
    '',
    `${cmds.map((c) => `\`${c}\``).join(' (round 1), then ')}; ${seconds.length} run${seconds.length === 1 ? '' : 's'}: ${seconds.map((s) => `${Math.round(s)} s`).join(', ')}.`,
    '',
  ];
  for (const e of errors) lines.push(`**Failed:** ${e} (see the log).`, '');
  if (series.length === 0) return lines.join('\n');
  lines.push('| figure | conditions | fwlb | the peer, same run |', '|---|---|---|---|');
  const ids = [...new Set(series.map((s) => s.id))];
  const esc = (t: string) => t.replace(/\|/g, '\\|');
  for (const id of ids) {
    const of = series.filter((s) => s.id === id);
    const own = of.filter((s) => !s.peer);
    const peers = of.filter((s) => s.peer);
    const first = of[0]!;
    const conditions = [...new Set(of.map((s) => s.conditions))].join('; ');
    lines.push(
      `| ${esc(first.figure)} | ${esc(conditions)} | ${own.map((s) => esc(cell(s, s.system !== 'fwlb'))).join('<br>') || '–'} | ${peers.map((s) => esc(cell(s, true))).join('<br>') || '–'} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

/** A duration for people: minutes past two of them, else seconds. */
const duration = (seconds: number) => (seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`);

/** A path as the table names it: from the repository's root when inside it. */
const shown = (path: string) => (relative(REPO_ROOT, path).startsWith('..') ? path : relative(REPO_ROOT, path));

/** The between-run term (--between): per figure, and per unit for the figures the pair lacks. */
interface Between {
  files: [string, string];
  commit: string;
  rel: Map<string, number>;
  typical: Map<string, number>;
}

const seriesKey = (s: Series) => `${s.id}\u0000${s.system}`;

async function readBetween(arg: string | undefined): Promise<Between | undefined> {
  if (!arg) return undefined;
  const files = arg.split(',');
  if (files.length !== 2) throw new Error('--between A.md,B.md: two tables of one commit');
  const [a, b] = [await readData(files[0]!), await readData(files[1]!)];
  if (a.commit !== b.commit) throw new Error(`--between: ${files[0]} is commit ${a.commit.slice(0, 12)}, ${files[1]} ${b.commit.slice(0, 12)}: the between-run spread needs two runs of one commit`);
  const inB = new Map(b.series.map((s) => [seriesKey(s), s]));
  const rel = new Map<string, number>();
  const perUnit = new Map<string, number[]>();
  for (const sa of a.series) {
    const sb = inB.get(seriesKey(sa));
    if (!sb || sa.value === null || sb.value === null) continue;
    const top = Math.max(Math.abs(sa.value), Math.abs(sb.value));
    const r = top === 0 ? 0 : Math.abs(sa.value - sb.value) / top;
    rel.set(seriesKey(sa), r);
    perUnit.set(sa.unit, [...(perUnit.get(sa.unit) ?? []), r]);
  }
  const typical = new Map([...perUnit].map(([u, xs]) => [u, median(xs)] as const));
  return { files: [files[0]!, files[1]!], commit: a.commit, rel, typical };
}

/** A series' noise with the between-run term. */
function withBetween(s: Series, bt: Between | undefined): number | null {
  if (!bt || s.value === null) return s.noise;
  const r = bt.rel.get(seriesKey(s)) ?? bt.typical.get(s.unit) ?? 0;
  return Math.max(s.noise ?? 0, r * Math.abs(s.value));
}

async function figures(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmarks build network namespaces');
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs: a whole number, 1 or more');
  const only = values.only?.split(',').filter(Boolean);
  for (const n of only ?? []) if (!BENCHES.some((b) => b.name === n)) throw new Error(`--only: no benchmark ${n} (${BENCHES.map((b) => b.name).join(', ')})`);
  const benches = BENCHES.filter((b) => !only || only.includes(b.name));
  const outDir = isAbsolute(values.out!) ? values.out! : resolve(process.cwd(), values.out!);
  await mkdir(outDir, { recursive: true });
  const started = new Date();
  const date = started.toISOString().slice(0, 10);
  const git = await gitState(outDir);
  const dist0 = await distDigest();
  const bt = await readBetween(values.between);
  let base = `${outDir}/${date}-${git.short}`;
  for (let i = 2; existsSync(`${base}.md`); i++) base = `${outDir}/${date}-${git.short}-${i}`;
  const argsOf = (b: Bench, round: number) => [
    ...(values.quick ? b.quick : b.full),
    ...(b.name === 'failover' && !values.quick && round === 1 && SOAK_MINUTES > 0 ? ['--soak-minutes', String(SOAK_MINUTES)] : []),
  ];
  const plan = benches.reduce((n, b) => n + (values.quick ? b.seconds.quick : b.seconds.full), 0) * runs + (!values.quick && benches.some((b) => b.name === 'failover') ? SOAK_MINUTES * 60 : 0);
  process.stderr.write(`figures: ${benches.map((b) => b.name).join(', ')}; ${runs} round${runs === 1 ? '' : 's'}${values.quick ? ', quick' : ''}; about ${duration(plan)}; output ${base}.md\n`);
  const log = createWriteStream(`${base}.log`);
  const tmp = `${tmpdir()}/fwlb-figures-${process.pid}`;
  await mkdir(tmp, { recursive: true });
  const load0 = loadavg();
  // On ^C: the running benchmark stopped (our child, by its PID) and its lab taken down (its
  // processes by namespace), then out.
  process.once('SIGINT', () => {
    process.stderr.write('\nfigures: interrupted; taking the labs down\n');
    running?.kill('SIGKILL');
    void Promise.all(benches.map((b) => labDown(b.prefix).catch(() => undefined))).then(() => process.exit(130));
  });
  const results = new Map<string, { figures: Figure[][]; errors: string[]; seconds: number[]; commands: string[] }>(benches.map((b) => [b.name, { figures: [], errors: [], seconds: [], commands: [] }]));
  const calibrationMs: number[] = [];
  for (let round = 1; round <= runs; round++) {
    for (const b of benches) {
      calibrationMs.push(calibrate());
      const args = argsOf(b, round);
      process.stderr.write(`figures: round ${round}/${runs}, ${b.name} ${args.join(' ')} ... `);
      const r = await runBench(b, args, log, tmp, round);
      const res = results.get(b.name)!;
      res.figures.push(r.figures);
      res.seconds.push(r.seconds);
      res.commands.push(`node dist/bench/${b.script ?? b.name}.js ${args.join(' ')} --prefix ${b.prefix}`);
      if (r.error) res.errors.push(`round ${round}: ${r.error}`);
      process.stderr.write(`${r.error ?? `${r.figures.length} figures`} (${Math.round(r.seconds)} s)\n`);
    }
  }
  await new Promise<void>((res) => log.end(() => res()));
  await rm(tmp, { recursive: true, force: true });
  const load1 = loadavg();
  const gitAfter = await gitState(outDir);
  const dist1 = await distDigest();
  const changed = [
    ...(gitAfter.commit !== git.commit ? [`HEAD moved to \`${gitAfter.short}\``] : []),
    ...(gitAfter.diffDigest !== git.diffDigest ? [`the uncommitted changes changed (\`git diff HEAD\` sha256 ${gitAfter.diffDigest})`] : []),
    ...(dist1 !== dist0 ? [`dist/ was rebuilt (digest ${dist1})`] : []),
  ];
  const took = (Date.now() - started.getTime()) / 1000;
  const mach = await machine();
  const series: Series[] = [];
  const sections: string[] = [];
  for (const b of benches) {
    const res = results.get(b.name)!;
    const s = collect(b.name, res.figures);
    for (const x of s) x.noise = withBetween(x, bt);
    series.push(...s);
    sections.push(markdownSection(b, res.commands, s, res.errors, res.seconds));
  }
  const dirty = git.dirty.length > 0;
  const cmd = `node dist/bench/figures.js${values.quick ? ' --quick' : ''} --runs ${runs}${only ? ` --only ${only.join(',')}` : ''}${bt ? ` --between ${bt.files.join(',')}` : ''}`;
  const md = [
    `# fwlb figures, ${date}, commit ${git.short}${dirty ? ' (dirty tree)' : ''}${values.quick ? ', quick smoke run' : ''}`,
    '',
    `- Commit: \`${git.commit}\` (\`git rev-parse HEAD\`); working tree ${dirty ? `**dirty**: ${git.dirty.length} path${git.dirty.length === 1 ? '' : 's'} changed (${git.dirty.slice(0, 12).map((l) => `\`${l.slice(3)}\``).join(', ')}${git.dirty.length > 12 ? ', ...' : ''}), \`git diff HEAD\` sha256 ${git.diffDigest}` : 'clean'}.`,
    `- Code run: dist/ digest ${dist0} (sha256 of its .js files) at the start; ${changed.length ? `**changed during the run**: ${changed.join('; ')}: later benchmarks may have run other code than the commit named above` : 'the same at the end, and HEAD and the uncommitted changes too'}.`,
    `- Machine: ${mach}.`,
    `- Load average (1 min) ${load0[0]!.toFixed(2)} at the start, ${load1[0]!.toFixed(2)} at the end: whatever else ran on the machine shares its cores with the labs.`,
    `- Machine speed: ${speedLine(calibrationMs)}.`,
    `- Command: \`${cmd}\`, started ${started.toISOString()}, took ${duration(took)}. What the benchmarks printed: \`${shown(`${base}.log`)}\`.`,
    `- Noise: ${runs === 1 ? 'every benchmark ran once' : `every benchmark ran ${runs} times, in rounds (all of them once, then again)`}. A figure is the median of its runs; ± is its noise: the spread of its runs (largest minus smallest), never less than the method's own resolution (the probe, poll or echo interval), nor than the benchmark's typical relative spread for figures of that unit (the median of spread / value over them: two runs can agree by chance)${runs === 1 ? '; with one run no spread is measured and ± is the resolution alone' : ''}${bt ? `; and, between runs, never less than the relative difference of the figure in two earlier runs of commit ${bt.commit.slice(0, 12)} on this machine (\`${bt.files.map((f) => shown(f)).join('`, `')}\`; for a figure they lack, the median of those for its unit) times its value` : ''}. Two tables agree on a figure when their values differ by no more than the sum of their noises (\`node dist/bench/figures.js --compare A B\`).`,
    '- "none": no value in that run: not measured (did not complete), or no sample (a latency percentile that fell on failed requests: see the failed count beside it; a worst stall with no session kept).',
    values.quick ? '- Quick: the smallest durations and sizes, a smoke test of the chain; these are not the README\'s conditions.' : '- The README\'s conditions (each section gives the command).',
    '',
    ...sections,
    DATA_OPEN,
    JSON.stringify({ version: 1, date, commit: git.commit, dirty, dist: dist0, quick: values.quick!, runs, machine: mach, series, ...(bt ? { between: { files: bt.files, commit: bt.commit } } : {}), calibrationMs } satisfies Data),
    DATA_CLOSE,
    '',
  ].join('\n');
  await writeFile(`${base}.md`, md);
  const failed = benches.filter((b) => results.get(b.name)!.errors.length > 0).map((b) => b.name);
  process.stderr.write(`figures: ${series.length} figures in ${base}.md (${duration(took)})${failed.length ? `; failed: ${failed.join(', ')}` : ''}\n`);
}

// ---------------------------------------------------------------------------------------
// --compare

async function readData(file: string): Promise<Data> {
  const text = await readFile(file, 'utf8');
  const at = text.lastIndexOf(DATA_OPEN);
  if (at < 0) throw new Error(`${file}: no figures data (written by node dist/bench/figures.js?)`);
  const json = text.slice(at + DATA_OPEN.length, text.indexOf(DATA_CLOSE, at)).trim();
  return JSON.parse(json) as Data;
}

async function compare(fileA: string, fileB: string): Promise<void> {
  const [a, b] = [await readData(fileA), await readData(fileB)];
  const bt = await readBetween(values.between);
  if (bt) for (const s of [...a.series, ...b.series]) s.noise = withBetween(s, bt);
  const key = (s: Series) => `${s.id}\u0000${s.system}`;
  const inB = new Map(b.series.map((s) => [key(s), s]));
  const inA = new Map(a.series.map((s) => [key(s), s]));
  const rows: string[][] = [];
  const tally = { within: 0, outside: 0, unmeasured: 0, one: 0 };
  for (const sa of a.series) {
    const sb = inB.get(key(sa));
    const who = sa.peer ? sa.system : sa.system === 'fwlb' ? 'fwlb' : sa.system;
    if (!sb) {
      rows.push([sa.id, who, withUnit(sa.value, sa.unit), 'absent', '', '', 'only in A']);
      tally.one++;
      continue;
    }
    if (sa.value === null || sb.value === null) {
      rows.push([sa.id, who, withUnit(sa.value, sa.unit), withUnit(sb.value, sb.unit), '', '', 'not measured']);
      tally.unmeasured++;
      continue;
    }
    const diff = sb.value - sa.value;
    const noise = (sa.noise ?? 0) + (sb.noise ?? 0);
    const ok = Math.abs(diff) <= noise + 1e-9;
    ok ? tally.within++ : tally.outside++;
    const cond = sa.conditions !== sb.conditions ? ' (conditions differ)' : '';
    rows.push([sa.id, who, `${fmt(sa.value)} ±${fmt(sa.noise)}`, `${fmt(sb.value)} ±${fmt(sb.noise)}`, `${diff >= 0 ? '+' : ''}${fmt(diff)} ${sa.unit}`, fmt(noise), (ok ? 'within noise' : 'OUTSIDE noise') + cond]);
  }
  for (const sb of b.series) {
    if (inA.has(key(sb))) continue;
    rows.push([sb.id, sb.system, 'absent', withUnit(sb.value, sb.unit), '', '', 'only in B']);
    tally.one++;
  }
  const head = (d: Data, f: string) => `${f}: ${d.date}, commit ${d.commit.slice(0, 12)}${d.dirty ? ' (dirty)' : ''}, ${d.runs} run(s)${d.quick ? ', quick' : ''}; ${d.machine}`;
  const speed = a.calibrationMs?.length && b.calibrationMs?.length ? `; B's machine took ${(median(b.calibrationMs) / median(a.calibrationMs)).toFixed(2)} times A's calibration time` : '';
  if (a.machine !== b.machine) console.log('**The two tables ran on different machines** (see their machine lines: another kernel build is another VM): their noise does not cover that.');
  console.log(`A = ${head(a, fileA)}\n    machine speed: ${speedLine(a.calibrationMs)}\nB = ${head(b, fileB)}\n    machine speed: ${speedLine(b.calibrationMs)}${speed}\n${bt ? `noise widened by the between-run spread of ${bt.files.join(' and ')} (commit ${bt.commit.slice(0, 12)})\n` : ''}`);
  console.log(table(['figure', 'system', 'A ± noise', 'B ± noise', 'B - A', 'noise A + B', ''], rows));
  console.log(`\n${tally.within} within the noise, ${tally.outside} outside it, ${tally.unmeasured} not measured in one of them, ${tally.one} in one file only`);
}

if (values.compare) {
  if (positionals.length !== 2) throw new Error('--compare FILE_A FILE_B');
  await compare(positionals[0]!, positionals[1]!);
} else {
  if (positionals.length) throw new Error(`unexpected arguments: ${positionals.join(' ')}`);
  await figures();
}

