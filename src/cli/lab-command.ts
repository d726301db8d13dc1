/**
 * `fwlb lab up|down|status`: the namespace lab from the command line (src/lab/ does the work).
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { LabStatus } from '../lab/lab.js';
/** The lab's machinery, loaded by the lab commands only. */
const labModule = () => import('../lab/lab.js');
import { DEFAULT_PREFIX, DEFAULT_TOPOLOGY, TOPOLOGIES, isTopologyName, type LabSpec } from '../lab/topology.js';

/** Where the command writes; tests pass their own. */
export interface LabCliIO {
  out(text: string): void;
  err(text: string): void;
}

const STD_IO: LabCliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

function intOption(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a positive integer');
  return Number(v);
}

interface UpFlags { prefix: string; vipsOn?: string; nodes?: number; clients?: number; backends?: number }

export function registerLabCommand(program: Command, io: LabCliIO = STD_IO): void {
  /** Runs an action; an error goes to stderr with exit status 1. */
  const guarded = <A extends unknown[]>(fn: (...a: A) => Promise<void>) => async (...a: A): Promise<void> => {
    try {
      await fn(...a);
    } catch (e) {
      io.err(`fwlb lab: ${(e as Error).message}\nnext: \`fwlb lab status --prefix P\` shows what stands; \`fwlb lab down --prefix P\` removes a lab; the lab needs root\n`);
      process.exitCode = 1;
    }
  };

  const lab = program.command('lab').description('build a cluster lab from network namespaces (needs root)');

  lab
    .command('up')
    .description(`build a lab (idempotent): ${Object.entries(TOPOLOGIES).map(([n, c]) => `${n} = ${c.fws} fw, ${c.clients} client, ${c.backends} web`).join('; ')}`)
    .argument('[topology]', 'single | sandwich | trio | active-active (the trio with examples/active-active.yaml written into the lab) | bgp (four firewalls behind a BIRD router, BIRD on each)', DEFAULT_TOPOLOGY)
    .option('--prefix <prefix>', 'prefix of every namespace name', DEFAULT_PREFIX)
    .option('--vips-on <node>', 'pin both VIPs statically on this firewall node (before VRRP runs)')
    .option('--nodes <n>', 'number of firewall nodes', intOption)
    .option('--clients <n>', 'number of client hosts', intOption)
    .option('--backends <n>', 'number of web servers', intOption)
    .action(guarded(async (topology: string, o: UpFlags) => {
      if (!isTopologyName(topology)) throw new Error(`unknown topology "${topology}": expected ${Object.keys(TOPOLOGIES).join(', ')}`);
      const t0 = performance.now();
      const { labUp } = await labModule();
      const l = await labUp({
        topology, prefix: o.prefix,
        ...(o.vipsOn !== undefined && { vipsOn: o.vipsOn }),
        ...(o.nodes !== undefined && { nodes: o.nodes }),
        ...(o.clients !== undefined && { clients: o.clients }),
        ...(o.backends !== undefined && { backends: o.backends }),
        onProgress: (line) => io.out(`${line}\n`),
      });
      io.out(describe(l.spec));
      io.out(`lab ${l.prefix} up in ${Math.round(performance.now() - t0)} ms; state in ${l.stateDir}\n`);
      if (topology === 'active-active' || topology === 'bgp') {
        // The cluster file of the topology, with a fresh key (and the lab's BIRD paths), and how to run it.
        const [{ writeSyncedCluster }, { readFile }, { REPO_ROOT, CLI_MAIN_JS }] = await Promise.all([import('../lab/cluster-file.js'), import('node:fs/promises'), import('../lab/paths.js')]);
        const example = `examples/${topology}.yaml`;
        const cfg = await writeSyncedCluster(l, (await readFile(`${REPO_ROOT}/${example}`, 'utf8')).replaceAll('/run/fwlb-lab/fwlb/', `${l.stateDir}/`));
        io.out(`cluster file ${cfg} (${example}, key ${l.stateDir}/cluster.key); run each node with:\n`);
        for (const fw of l.spec.hosts.filter((h) => h.role === 'fw')) io.out(`  ip netns exec ${fw.ns} node ${CLI_MAIN_JS} run -c ${cfg} --node ${fw.name} --control ${l.stateDir}/${fw.name}.sock\n`);
      }
    }));

  lab
    .command('down')
    .description('kill every process in the lab\'s namespaces and delete them (works without state)')
    .option('--prefix <prefix>', 'prefix of every namespace name', DEFAULT_PREFIX)
    .action(guarded(async (o: { prefix: string }) => {
      const t0 = performance.now();
      const { labDown } = await labModule();
      const r = await labDown(o.prefix);
      io.out(r.namespaces.length === 0
        ? `lab ${o.prefix}: nothing to remove\n`
        : `lab ${o.prefix} down: ${r.namespaces.length} namespaces deleted, ${r.killed.length} processes killed, in ${Math.round(performance.now() - t0)} ms\n`);
    }));

  lab
    .command('status')
    .description('namespaces, interfaces, addresses and processes of a lab')
    .option('--prefix <prefix>', 'prefix of every namespace name', DEFAULT_PREFIX)
    .option('--json', 'machine-readable output')
    .action(guarded(async (o: { prefix: string; json?: boolean }) => {
      const { labStatus } = await labModule();
      const st = await labStatus(o.prefix);
      io.out(o.json ? JSON.stringify(st, null, 2) + '\n' : formatLabStatus(st));
    }));
}

/** The node table printed after `lab up`. */
function describe(spec: LabSpec): string {
  const rows = spec.hosts.map((h) => [
    h.ns,
    h.ifaces.map((i) => `${i.name} ${[i.address, ...i.vips].join('+')}`).join(', '),
    h.gateway ? `via ${h.gateway}` : '',
  ]);
  return table(rows, ['namespace', 'interfaces', 'default route']);
}

/** Human output of `lab status`. */
export function formatLabStatus(st: LabStatus): string {
  const lines: string[] = [];
  const spec = st.spec;
  if (st.condition === 'down') return `lab ${st.prefix}: down (no namespace ${st.prefix}-*)\n`;
  const what = spec
    ? `${spec.topology}: ${spec.counts.fws} fw, ${spec.counts.clients} clients, ${spec.counts.backends} web${spec.vipsOn ? `, VIPs on ${spec.vipsOn}` : ''}`
    : `no state (${st.stateProblem ?? 'unknown'})`;
  lines.push(`lab ${st.prefix}: ${st.condition} (${what}; state in ${st.stateDir})`);
  if (st.namespaces.length === 0) return lines.join('\n') + '\n';
  const rows: string[][] = [];
  for (const n of st.namespaces) {
    const links = n.links.filter((l) => l.name !== 'lo' || l.state !== 'UP');
    links.forEach((l, k) => rows.push([k === 0 ? n.ns : '', l.name, l.state, l.master ?? '', l.addresses.join(' ')]));
    if (links.length === 0) rows.push([n.ns, '', '', '', '']);
  }
  lines.push('', table(rows, ['namespace', 'link', 'state', 'bridge', 'addresses']).trimEnd());
  const procs = st.namespaces.flatMap((n) => n.processes.map((p) => [n.ns, String(p.pid), p.cmdline]));
  lines.push('', procs.length === 0 ? 'no processes' : table(procs, ['namespace', 'pid', 'command']).trimEnd());
  if (st.crashed.length > 0) lines.push('', `crashed: ${st.crashed.join(', ')}`);
  if (st.problems.length > 0) lines.push('', 'problems:', ...st.problems.map((p) => `  - ${p}`));
  return lines.join('\n') + '\n';
}

function table(rows: string[][], head: string[]): string {
  const all = [head, ...rows];
  const widths = head.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}
