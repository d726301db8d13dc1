#!/usr/bin/env -S node --single-threaded-gc
/** The `fwlb` command. */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { controlCall, defaultControlPath } from '../control/client.js';
import { registerLabCommand } from './lab-command.js';
import { registerImportCommand } from './import-command.js';
import { formatStatus } from './format-status.js';
import { parseAddressPort } from '../control/backend-args.js';
import type { NodeStatus, Readiness, StartingStatus } from '../services/node-daemon.js';
import { parseDuration } from '../lib/duration.js';
import { CONFIG_NEXT_STEP, controlNextStep, HOST_NEXT_STEP, NODE_NEXT_STEP, RELOAD_NEXT_STEP, withNextStep } from '../lib/next-step.js';

// A reader that goes away (`fwlb lab status | head`) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command();
program.name('fwlb').description('A redundant, load-balancing, stateful firewall cluster for Linux').version('0.1.0');
// A mistyped command or option: say so, and how to see the usage (inherited by the commands).
program.showHelpAfterError('next: add --help to the command for its usage');

/** An error, what to do next, and exit status 1. */
const fail = (msg: string, next: string): never => {
  process.stderr.write(withNextStep(msg, next));
  process.exit(1);
};
/** An error from a running node's control socket. */
const failControl = (e: unknown): never => fail((e as Error).message, controlNextStep((e as { code?: string }).code));

program
  .command('check')
  .description('validate a cluster config; with --node, also against this host (interfaces, addresses, routes)')
  .requiredOption('-c, --config <file>', 'cluster config (YAML)')
  .option('-n, --node <name>', 'check as this node, on this host')
  .option('--no-host', 'with --node: skip the checks against this host')
  .action(async (o: { config: string; node?: string; host: boolean }) => {
    // The heavy modules are loaded by the commands that need them: `fwlb status` or
    // `fwlb reload` must not pay for the YAML parser, the compiler or the daemon.
    const [{ loadConfigFile }, { nodeView }, { hostCheck, routedAddresses }, { formatIssue }, { readHostState }] = await Promise.all([
      import('../config/load.js'),
      import('../config/node.js'),
      import('../config/host-check.js'),
      import('../config/issues.js'),
      import('../adapters/host.js'),
    ]);
    const r = await loadConfigFile(o.config);
    if (!r.ok) return fail(r.error.message, CONFIG_NEXT_STEP);
    if (o.node) {
      let view;
      try {
        view = nodeView(r.value.config, o.node);
      } catch (e) {
        return fail((e as Error).message, NODE_NEXT_STEP);
      }
      if (o.host) {
        const issues = hostCheck(r.value.config, view, await readHostState(routedAddresses(r.value.config))).map(r.value.locate);
        if (issues.length) return fail(`${o.config}: ${issues.length} error(s) on this host as node ${o.node}\n` + issues.map((i) => '  ' + formatIssue(i, o.config)).join('\n'), HOST_NEXT_STEP);
      }
    }
    process.stdout.write(`${o.config}: ok${o.node ? ` (node ${o.node}${o.host ? ', checked against this host' : ''})` : ''}\n`);
  });

program
  .command('ruleset')
  .description("print the nftables ruleset a node would apply (nothing is applied)")
  .requiredOption('-c, --config <file>', 'cluster config (YAML)')
  .option('-n, --node <name>', 'node name (default: the hostname)', hostname())
  .action(async (o: { config: string; node: string }) => {
    const [{ loadConfigFile }, { nodeView }, { compileRuleset }] = await Promise.all([import('../config/load.js'), import('../config/node.js'), import('../compiler/ruleset.js')]);
    const r = await loadConfigFile(o.config);
    if (!r.ok) return fail(r.error.message, CONFIG_NEXT_STEP);
    try {
      process.stdout.write(compileRuleset({ config: r.value.config, node: nodeView(r.value.config, o.node), blocklist: r.value.blocklist }));
    } catch (e) {
      fail((e as Error).message, NODE_NEXT_STEP);
    }
  });

program
  .command('run')
  .description('run one node in the foreground until SIGTERM or SIGINT; SIGHUP reloads the config')
  .requiredOption('-c, --config <file>', 'cluster config (YAML)')
  .option('-n, --node <name>', 'node name (default: the hostname)', hostname())
  .option('--control <path>', 'control socket (default: /run/fwlb/<node>.sock)')
  .option('--metrics <[address:]port>', 'serve Prometheus metrics at /metrics and the live status page at / over HTTP (a bare port: on 127.0.0.1)')
  .option('--state-dir <dir>', "where the node keeps its config versions (default: /var/lib/fwlb/<node>; with --control, NODE-state beside the control socket)")
  .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .action(async (o: { config: string; node: string; control?: string; logLevel: string; metrics?: string; stateDir?: string }) => {
    // First of all: the daemon's collector on its own threads (adapters/reexec.ts); this
    // replaces the process when the flag is missing and returns only when it cannot.
    const { ensureNodeFlags } = await import('../adapters/reexec.js');
    const concurrentGc = ensureNodeFlags();
    const { runNode } = await import('../main.js');
    const stateDir = o.stateDir ?? (o.control ? join(dirname(resolve(o.control)), `${o.node}-state`) : `/var/lib/fwlb/${o.node}`);
    const code = await runNode({ concurrentGc, configFile: o.config, node: o.node, controlPath: o.control ?? defaultControlPath(o.node), logLevel: o.logLevel, stateDir, ...(o.metrics ? { metrics: o.metrics } : {}) });
    process.exit(code);
  });

program
  .command('status')
  .description("show a running node's state (ready or not, and why)")
  .option('-n, --node <name>', 'node name (default: the hostname)', hostname())
  .option('--control <path>', 'control socket (default: /run/fwlb/<node>.sock)')
  .option('--json', 'machine-readable output')
  .option('--wait-ready', 'wait until the node is ready (ruleset applied, VRRP running, bulk sync complete or alone); exit 0 when ready, 1 on timeout')
  .option('--timeout <duration>', 'with --wait-ready: how long to wait (e.g. 30s)', '30s')
  .action(async (o: { node: string; control?: string; json?: boolean; waitReady?: boolean; timeout: string }) => {
    const path = o.control ?? defaultControlPath(o.node);
    if (o.waitReady) {
      const timeoutMs = parseDuration(o.timeout);
      if (timeoutMs === undefined) return fail(`--timeout: "${o.timeout}" is not a duration`, 'give one such as 30s, 500ms or 2m');
      const r = await waitReady(path, timeoutMs);
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else process.stdout.write(r.ready ? `ready (${r.startToReadyMs ?? '?'} ms after start)\n` : `not ready after ${o.timeout}: ${r.reason}\n`);
      process.exitCode = r.ready ? 0 : 1;
      return;
    }
    try {
      const st = (await controlCall(path, 'status')) as NodeStatus;
      process.stdout.write(o.json ? JSON.stringify(st, null, 2) + '\n' : formatStatus(st));
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_STARTING') return failControl(e);
      // Still starting: where it stands, and exit 1 (no full status yet).
      const ready = (await controlCall(path, 'ready').catch(() => null)) as Readiness | null;
      const st: StartingStatus = { node: o.node, starting: true, ready: ready ?? { ready: false, reason: (e as Error).message, startToReadyMs: null, steps: {} } };
      process.stdout.write(o.json ? JSON.stringify(st, null, 2) + '\n' : formatStatus(st));
      process.exitCode = 1;
    }
  });

/**
 * Polls the node's readiness until it is ready or `timeoutMs` passes. A node not reachable
 * yet (its socket not open: still loading) counts as not ready, not as an error.
 */
async function waitReady(path: string, timeoutMs: number): Promise<Readiness & { ready: boolean }> {
  const deadline = Date.now() + timeoutMs;
  let last: Readiness = { ready: false, reason: 'no answer from the node yet', startToReadyMs: null, steps: {} };
  for (;;) {
    try {
      last = (await controlCall(path, 'ready', undefined, Math.max(200, Math.min(2000, deadline - Date.now())))) as Readiness;
      if (last.ready) return last;
    } catch (e) {
      last = { ...last, reason: (e as Error).message };
    }
    if (Date.now() >= deadline) return last;
    await new Promise((r) => setTimeout(r, 20));
  }
}

program
  .command('reload')
  .description('ask a running node to reload its config (as SIGHUP does) and report the outcome')
  .option('-n, --node <name>', 'node name (default: the hostname)', hostname())
  .option('--control <path>', 'control socket (default: /run/fwlb/<node>.sock)')
  .option('--confirm <duration>', 'roll back to the config before unless `fwlb config confirm` comes within this time (e.g. 2m)')
  .action(async (o: { node: string; control?: string; confirm?: string }) => {
    const confirmMs = o.confirm === undefined ? undefined : confirmDuration(o.confirm);
    try {
      const r = (await controlCall(o.control ?? defaultControlPath(o.node), 'reload', confirmMs === undefined ? undefined : { confirmMs }, 30_000)) as { ok: boolean; changed?: boolean; error?: string };
      if (!r.ok) fail(`reload failed, the node keeps its running config:\n${r.error}`, RELOAD_NEXT_STEP);
      process.stdout.write(r.changed ? 'reloaded: ruleset updated\n' : 'reloaded: ruleset unchanged\n');
      if (confirmMs !== undefined) process.stdout.write(`not confirmed yet: \`fwlb config confirm\` within ${o.confirm}, or the config before comes back\n`);
    } catch (e) {
      failControl(e);
    }
  });

program
  .command('keygen')
  .description('make a cluster key (32 random bytes, in hex) for cluster.key_file: into FILE with mode 0600, never over an existing file; without -o, to stdout')
  .option('-o, --out <file>', 'write the key into this file (refused if it exists)')
  .action(async (o: { out?: string }) => {
    const key = `${randomBytes(32).toString('hex')}\n`;
    if (o.out === undefined) {
      process.stdout.write(key);
      return;
    }
    try {
      // 'wx': created here or not at all, whatever races it; 0600 before a byte is written.
      await writeFile(o.out, key, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EEXIST') fail(`${o.out} exists: fwlb keygen never overwrites a key (nodes with the old one would no longer trust the others)`, 'keep it, or remove it first if you mean to replace the key on every node');
      fail(`cannot write ${o.out}: ${err.message}`, 'choose a file in a directory you can write (-o FILE), or print the key to stdout (no -o)');
    }
    process.stderr.write(`cluster key written to ${o.out} (mode 0600): copy it to every node (keep it secret) and name it in cluster.key_file\n`);
  });

program
  .command('demo')
  .description('the main job: a lab cluster, live traffic through it, and a report of what held (needs root)')
  .option('--prefix <prefix>', 'lab prefix', 'demo')
  .option('--keep', 'leave the lab up afterwards')
  .option('--active-active', 'three firewalls sharing the traffic by flow hash (examples/active-active.yaml), one crashed under live sessions')
  .option('--bgp', 'four firewalls behind a BIRD router that spreads the flows by ECMP (examples/bgp.yaml): a node added, drained, crashed, its backends failing')
  .option('--report <file>', 'where the HTML report goes (default: fwlb-demo-PREFIX.html in the temporary directory)')
  .action(async (o: { prefix: string; keep?: boolean; activeActive?: boolean; bgp?: boolean; report?: string }) => {
    if (o.activeActive && o.bgp) fail('--active-active and --bgp are two demos', 'run one, then the other');
    // Loaded on demand: `fwlb run` must not pay for the demo's modules at every start.
    const opts = { prefix: o.prefix, keep: !!o.keep, out: (l: string) => process.stdout.write(l + '\n'), ...(o.report ? { report: o.report } : {}) };
    const ok = o.bgp
      ? await (await import('../demo/bgp.js')).runBgpDemo(opts)
      : o.activeActive
        ? await (await import('../demo/active-active.js')).runActiveActiveDemo(opts)
        : await (await import('../demo/demo.js')).runDemo(opts);
    process.exit(ok ? 0 : 1);
  });

const controlOpts = (c: Command) =>
  c.option('-n, --node <name>', 'node name (default: the hostname)', hostname()).option('--control <path>', 'control socket (default: /run/fwlb/<node>.sock)');

/** `--cluster`: a runtime change run on every node of the cluster, and kept by each. */
const clusterOpt = (c: Command) => c.option('--cluster', 'on every node of the cluster (each keeps it across restarts; a node that is down gets it when it is back)');

/** A commit-confirm time: a duration from 1 s to a day, or exit with what to give. */
function confirmDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 1000 || ms > 24 * 3600_000) return fail(`--confirm: "${text}" is not a duration from 1s to 24h`, 'give one such as 90s or 2m');
  return ms;
}

interface NodeOutcomeView {
  outcome: string;
  reason?: string;
  message?: string;
  changed?: boolean;
}
/** One line per node: what the push or the confirm did there; exit status 1 when one refused it. */
function printOutcomes(nodes: Record<string, NodeOutcomeView>): void {
  for (const [name, r] of Object.entries(nodes)) {
    const what = r.outcome === 'applied' ? `applied${r.changed === false ? ' (ruleset unchanged)' : ''}` : r.outcome === 'refused' ? `refused (${r.reason}): ${r.message}` : r.outcome === 'unreachable' ? `unreachable, pending: ${r.message}` : r.outcome;
    process.stdout.write(`  ${name}: ${what}\n`);
    if (r.outcome === 'refused') process.exitCode = 1;
  }
}

const config = program.command('config').description('one config for the whole cluster: push it to every node, confirm it');
controlOpts(
  config
    .command('push <file>')
    .description("check FILE for every node, give it the next version, sign it and apply it on this node and every peer (over the sync link); a peer that is down gets it when it is back")
    .option('--confirm <duration>', 'roll it back on every node unless `fwlb config confirm` comes within this time (e.g. 2m)'),
).action(async (file: string, o: { node: string; control?: string; confirm?: string }) => {
  const confirmMs = o.confirm === undefined ? undefined : confirmDuration(o.confirm);
  try {
    const r = (await controlCall(o.control ?? defaultControlPath(o.node), 'config_push', { file: resolve(file), ...(confirmMs === undefined ? {} : { confirmMs }) }, 60_000)) as { version: number; hash: string; nodes: Record<string, NodeOutcomeView> };
    process.stdout.write(`config version ${r.version} (${r.hash.slice(0, 12)})${confirmMs === undefined ? '' : `, to be confirmed within ${o.confirm}`}:\n`);
    printOutcomes(r.nodes);
    if (confirmMs !== undefined) process.stdout.write(`next: \`fwlb config confirm\` within ${o.confirm}, or every node goes back to the config before\n`);
  } catch (e) {
    failControl(e);
  }
});
controlOpts(config.command('confirm').description('confirm the version pushed (or reloaded) with --confirm, on this node and every peer')).action(async (o: { node: string; control?: string }) => {
  try {
    const r = (await controlCall(o.control ?? defaultControlPath(o.node), 'config_confirm', undefined, 30_000)) as { version: number; nodes: Record<string, NodeOutcomeView> };
    process.stdout.write(`config version ${r.version}:\n`);
    printOutcomes(r.nodes);
  } catch (e) {
    failControl(e);
  }
});

const backend = program.command('backend').description("change a running node's backends: no restart, established flows untouched (but by disable/remove)");
const sendBackend = async (o: { node: string; control?: string; cluster?: boolean }, args: Record<string, unknown>) => {
  try {
    const r = await controlCall(o.control ?? defaultControlPath(o.node), 'backend', { ...args, ...(o.cluster ? { cluster: true } : {}) }, 30_000);
    process.stdout.write(JSON.stringify(r) + '\n');
  } catch (e) {
    failControl(e);
  }
};
for (const [op, what] of [
  ['drain', 'no new flows; established ones run on to their end'],
  ['disable', 'no new flows, and its established flows are cut'],
  ['enable', 'takes new flows again'],
  ['remove', 'out of the service (as disable); a runtime-added backend is gone for good'],
] as const) {
  clusterOpt(controlOpts(backend.command(`${op} <service> <backend>`).description(what))).action((service: string, name: string, o: { node: string; control?: string; cluster?: boolean }) =>
    sendBackend(o, { op, service, backend: name }),
  );
}
clusterOpt(controlOpts(backend.command('weight <service> <backend> <weight>').description('set the weight (0-1000)'))).action(
  (service: string, name: string, weight: string, o: { node: string; control?: string; cluster?: boolean }) => sendBackend(o, { op: 'weight', service, backend: name, weight: Number(weight) }),
);
clusterOpt(controlOpts(backend.command('add <service> <backend> <address>').description('add a backend: ADDRESS[:PORT]').option('-w, --weight <n>', 'weight', '1'))).action(
  (service: string, name: string, address: string, o: { node: string; control?: string; weight: string; cluster?: boolean }) => {
    const a = parseAddressPort(address);
    if (!a) return fail(`"${address}" is not ADDRESS[:PORT]`, 'give the backend\'s address as 198.18.1.11:80 or [2001:2::11]:80 (without a port: the service\'s)');
    return sendBackend(o, { op: 'add', service, backend: name, ...a, weight: Number(o.weight) });
  },
);

clusterOpt(
  controlOpts(
    program
      .command('maintenance <on|off>')
      .description('demote this node by hand (on: it hands every VIP over and stays backup) or let it back into the election (off); kept across restarts'),
  ),
).action(async (mode: string, o: { node: string; control?: string; cluster?: boolean }) => {
  if (mode !== 'on' && mode !== 'off') return fail(`maintenance takes "on" or "off" (got "${mode}")`, '`fwlb maintenance on` to hand every VIP over, `fwlb maintenance off` to let the node back');
  try {
    const r = await controlCall(o.control ?? defaultControlPath(o.node), 'maintenance', { on: mode === 'on', ...(o.cluster ? { cluster: true } : {}) }, 30_000);
    if (o.cluster) printOutcomes((r as { nodes: Record<string, NodeOutcomeView> }).nodes);
    process.stdout.write(`maintenance ${mode}\n`);
  } catch (e) {
    failControl(e);
  }
});

controlOpts(
  program
    .command('stop')
    .description('stop the node gracefully (as SIGTERM): a master first waits for a ready peer, then hands over')
    .option('--force', 'do not wait for a ready peer'),
).action(async (o: { node: string; control?: string; force?: boolean }) => {
  try {
    await controlCall(o.control ?? defaultControlPath(o.node), 'stop', { force: !!o.force });
    process.stdout.write(`stopping${o.force ? ' (forced)' : ''}\n`);
  } catch (e) {
    failControl(e);
  }
});

controlOpts(program.command('metrics').description("print a running node's Prometheus metrics")).action(async (o: { node: string; control?: string }) => {
  try {
    process.stdout.write((await controlCall(o.control ?? defaultControlPath(o.node), 'metrics')) as string);
  } catch (e) {
    failControl(e);
  }
});

registerLabCommand(program);
registerImportCommand(program);

await program.parseAsync(process.argv);
