/**
 * The lab orchestrator: builds, verifies, reports on and tears down a "firewall sandwich"
 * of network namespaces, and gives tests a handle ({@link Lab}) to run commands and
 * processes in its nodes and to inject failures.
 *
 *   const lab = await labUp({ topology: 'sandwich', prefix: 'tlab', vipsOn: 'fw1' });
 *   await lab.exec('fw1', ['curl', '-s', 'http://198.18.1.11/']);
 *   await lab.crash('fw1'); await lab.recover('fw1');
 *   await lab.down();
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunResult } from '../lib/exec.js';
import { FwlbError } from '../lib/errors.js';
import * as failures from './failures.js';
import { startBirds } from './bird.js';
import {
  addNamespaces, deleteNamespaces, ipBatch, linkAddresses, listNamespaces, namespaceInode, namespacePids,
  nsExec, nsExecRaw, pidCmdline, pidNamespaceInode, routes, setSysctls,
} from './netns.js';
import { BACKEND_SERVER_JS, CLI_MAIN_JS, PING_JS, PROBE_JS } from './paths.js';
import type { PingResult } from './ping.js';
import { buildPlan } from './plan.js';
import { ProcessHandle, killNamespaceProcesses, type ExitInfo, type SpawnOptions } from './processes.js';
import { readState, updateState, writeState, STATE_VERSION, type LabState, type ProcessKind, type ProcessRecord } from './state.js';
import { GC_FLAG } from '../adapters/reexec.js';
import {
  DEFAULT_PREFIX, bootAddresses, describeLab, findHost, namespacesOf, sameLab, stateDirOf, validatePrefix,
  type HostSpec, type LabOptions, type LabSpec,
} from './topology.js';

export interface UpOptions extends LabOptions {
  /** How long to wait for the servers to listen (default 15 s). */
  readyTimeoutMs?: number;
  /** Progress lines for humans (the CLI prints them). */
  onProgress?: (line: string) => void;
}

export interface DownReport {
  /** Namespaces deleted. */
  namespaces: string[];
  /** PIDs killed in them. */
  killed: number[];
}

export interface PingOptions {
  count?: number;
  /** Per-probe reply timeout (default 1000 ms). */
  timeoutMs?: number;
  /** Time between probes (default 200 ms). */
  intervalMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 15_000;

/**
 * Builds the lab, or keeps it when an identical one is already up and healthy (idempotent).
 * A lab that differs or is broken is torn down and rebuilt. Resolves once every server
 * listens; on failure, tears down what it built and throws.
 */
export async function labUp(opts: UpOptions = {}): Promise<Lab> {
  const spec = describeLab(opts);
  const say = opts.onProgress ?? ((): void => {});
  const prior = readState(spec.stateDir);
  if (prior.ok && sameLab(prior.state.spec, spec)) {
    const problems = await verifyLab(spec, prior.state);
    if (problems.length === 0) {
      say(`lab ${spec.prefix} (${spec.topology}) already up and healthy`);
      return new Lab(spec);
    }
    say(`lab ${spec.prefix} is broken (${problems.join('; ')}): rebuilding`);
  } else if (prior.ok) {
    say(`lab ${spec.prefix} runs another layout: rebuilding`);
  }
  const gone = await labDown(spec.prefix);
  if (gone.namespaces.length > 0) say(`removed ${gone.namespaces.length} old namespaces`);

  const lab = new Lab(spec);
  try {
    mkdirSync(spec.stateDir, { recursive: true });
    writeState(spec.stateDir, { version: STATE_VERSION, spec, createdAt: new Date().toISOString(), processes: [], crashed: [] });
    await buildNetwork(spec);
    say(`built ${spec.hosts.length + 1} namespaces (${spec.counts.fws} fw, ${spec.counts.clients} clients, ${spec.counts.backends} web)`);
    const servers = spec.hosts.filter((h) => h.runsServer);
    await lab.startServers(servers, opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
    say(`${servers.length} servers listening`);
    if (spec.topology === 'bgp') {
      await startBirds(lab);
      say(`BIRD running on rt and ${spec.counts.fws} firewalls (sockets ${spec.stateDir}/NAME.bird.ctl)`);
    }
  } catch (e) {
    await labDown(spec.prefix).catch(() => undefined);
    throw new FwlbError('ERR_LAB_UP', `lab ${spec.prefix} up failed: ${(e as Error).message}`, { cause: e });
  }
  return lab;
}

/** Creates the namespaces, sysctls, bridges, veths, addresses and routes of a spec. */
async function buildNetwork(spec: LabSpec): Promise<void> {
  const plan = buildPlan(spec);
  await addNamespaces(plan.namespaces);
  await Promise.all(plan.sysctls.map((s) => setSysctls(s.ns, s.values)));
  await ipBatch(plan.switchBatch.ns, plan.switchBatch.lines);
  await Promise.all(plan.hostBatches.map((b) => ipBatch(b.ns, b.lines)));
}

/**
 * Tears a lab down by name alone, so it works after a crash or with a missing or corrupt
 * state file: SIGKILL every process in every `P-*` namespace, delete the namespaces (their
 * veths go with them), remove the state directory.
 */
export async function labDown(prefix: string = DEFAULT_PREFIX): Promise<DownReport> {
  validatePrefix(prefix);
  const mine = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
  const killed = (await Promise.all(mine.map((ns) => killNamespaceProcesses(ns)))).flat();
  await deleteNamespaces(mine);
  rmSync(stateDirOf(prefix), { recursive: true, force: true });
  const left = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
  if (left.length > 0) throw new FwlbError('ERR_LAB_DOWN', `namespaces still present after down: ${left.join(', ')}`);
  return { namespaces: mine, killed };
}

/** Attaches to a lab that is up (from its state file); throws ERR_LAB_NOT_UP otherwise. */
export function openLab(prefix: string = DEFAULT_PREFIX): Lab {
  const r = readState(stateDirOf(prefix));
  if (!r.ok) throw new FwlbError('ERR_LAB_NOT_UP', `lab ${prefix} is not up (state file ${r.reason}: ${r.detail})`);
  return new Lab(r.state.spec);
}

/**
 * Compares the running lab with its spec; returns what is wrong (empty when healthy):
 * namespaces, bridges and ports, interfaces up with their boot addresses, routes, servers.
 */
export async function verifyLab(spec: LabSpec, state: LabState): Promise<string[]> {
  const problems: string[] = [];
  const want = namespacesOf(spec);
  const have = (await listNamespaces()).filter((n) => n.startsWith(`${spec.prefix}-`));
  for (const n of want) if (!have.includes(n)) problems.push(`namespace ${n} missing`);
  for (const n of have) if (!want.includes(n)) problems.push(`unexpected namespace ${n}`);
  if (problems.length > 0) return problems;
  for (const c of state.crashed) problems.push(`node ${c} crashed`);

  const isUp = (flags: string[]): boolean => flags.includes('UP') && flags.includes('LOWER_UP');
  const sw = await linkAddresses(spec.switchNs);
  for (const br of spec.bridges) {
    if (!sw.some((l) => l.ifname === br && l.flags.includes('UP'))) problems.push(`bridge ${br} missing or down`);
  }
  const perHost = await Promise.all(spec.hosts.map(async (h) => {
    const out: string[] = [];
    const [links, rts] = await Promise.all([linkAddresses(h.ns), routes(h.ns)]);
    if (!links.some((l) => l.ifname === 'lo' && l.flags.includes('UP'))) out.push(`${h.name}: lo down`);
    for (const i of h.ifaces) {
      const port = sw.find((l) => l.ifname === i.port);
      if (!i.direct && (!port || port.master !== i.bridge || !isUp(port.flags))) out.push(`${h.name}: switch port ${i.port} not up in ${i.bridge}`);
      const l = links.find((x) => x.ifname === i.name);
      if (!l || !isUp(l.flags)) {
        out.push(`${h.name}: ${i.name} missing or down`);
        continue;
      }
      const addrs = l.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
      for (const a of bootAddresses(i)) if (!addrs.includes(a)) out.push(`${h.name}: ${i.name} lacks ${a}`);
    }
    if (h.gateway !== null && !rts.some((r) => r.dst === 'default' && r.gateway === h.gateway)) {
      out.push(`${h.name}: no default route via ${h.gateway}`);
    }
    if (h.runsServer && !state.processes.some((p) => p.kind === 'server' && p.node === h.name && runsIn(p.pid, h.ns))) {
      out.push(`${h.name}: server not running`);
    }
    return out;
  }));
  return [...problems, ...perHost.flat()];
}

/** True if the PID is alive inside the named namespace. */
function runsIn(pid: number, ns: string): boolean {
  const ino = pidNamespaceInode(pid);
  return ino !== null && ino === namespaceInode(ns);
}

/** One interface as `lab status` shows it. */
export interface LinkStatus { name: string; state: string; master: string | null; addresses: string[] }
export interface NamespaceStatus {
  ns: string;
  /** Node name, `sw` for the switch. */
  node: string;
  links: LinkStatus[];
  processes: { pid: number; cmdline: string }[];
}
export interface LabStatus {
  prefix: string;
  stateDir: string;
  /** up: state and namespaces agree and all is healthy; degraded: up with problems; down: nothing. */
  condition: 'up' | 'degraded' | 'down';
  spec: LabSpec | null;
  /** Why the state file could not be read, if it could not. */
  stateProblem: string | null;
  processes: ProcessRecord[];
  crashed: string[];
  namespaces: NamespaceStatus[];
  problems: string[];
}

/** What is running under a prefix, from the kernel's point of view and the state file's. */
export async function labStatus(prefix: string = DEFAULT_PREFIX): Promise<LabStatus> {
  validatePrefix(prefix);
  const stateDir = stateDirOf(prefix);
  const r = readState(stateDir);
  const names = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`)).sort();
  // Links first, then PIDs: a running `ip -n NS` would otherwise show up as a process of NS.
  const linksOf = await Promise.all(names.map((ns) => linkAddresses(ns)));
  const pidsOf = await Promise.all(names.map((ns) => namespacePids(ns)));
  const namespaces = names.map((ns, k): NamespaceStatus => {
    const links = linksOf[k] ?? [];
    const processes = (pidsOf[k] ?? []).flatMap((pid) => {
      const cmd = pidCmdline(pid);
      return cmd === null ? [] : [{ pid, cmdline: cmd.join(' ') }];
    });
    return {
      ns,
      node: ns.slice(prefix.length + 1),
      links: links.map((l) => ({
        name: l.ifname,
        state: l.flags.includes('UP') ? (l.flags.includes('LOWER_UP') ? 'UP' : 'NO-CARRIER') : 'DOWN',
        master: l.master ?? null,
        addresses: l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
      })),
      processes,
    };
  });
  const problems = r.ok ? await verifyLab(r.state.spec, r.state) : names.length > 0 ? ['namespaces exist but the state file is unreadable'] : [];
  const condition = names.length === 0 && !r.ok ? 'down' : problems.length === 0 ? 'up' : 'degraded';
  return {
    prefix,
    stateDir,
    condition,
    spec: r.ok ? r.state.spec : null,
    stateProblem: r.ok ? null : `${r.reason}: ${r.detail}`,
    processes: r.ok ? r.state.processes : [],
    crashed: r.ok ? r.state.crashed : [],
    namespaces,
    problems,
  };
}

/** A running lab. Holds no global state: handles of processes it spawned live here. */
export class Lab {
  private readonly handles = new Map<number, ProcessHandle>();

  constructor(readonly spec: LabSpec) {}

  get prefix(): string {
    return this.spec.prefix;
  }

  get stateDir(): string {
    return this.spec.stateDir;
  }

  /** A host by node name (`fw1`) or namespace name. */
  host(node: string): HostSpec {
    return findHost(this.spec, node);
  }

  /** The namespace of a node; `sw` (or the switch namespace's name) names the switch. */
  ns(node: string): string {
    if (node === 'sw' || node === this.spec.switchNs) return this.spec.switchNs;
    return this.host(node).ns;
  }

  /** The short name of a node given by name or namespace (`sw` for the switch). */
  nodeName(node: string): string {
    return this.ns(node) === this.spec.switchNs ? 'sw' : this.host(node).name;
  }

  /** Runs a command in a node's namespace; returns stdout, throws CommandError on failure. */
  exec(node: string, argv: readonly string[], input?: string): Promise<string> {
    return nsExec(this.ns(node), argv, input);
  }

  /** Runs a command in a node's namespace; resolves with status, stdout and stderr. */
  execRaw(node: string, argv: readonly string[], input?: string): Promise<RunResult> {
    return nsExecRaw(this.ns(node), argv, input);
  }

  /**
   * Starts a long-running process in a node's namespace and records its PID in the state
   * file (so `down` and `status` know it). The PID is the command's own (`ip` execs it in
   * place); `await handle.started()` to be sure the exec has happened. Stop it with
   * `lab.stop()` (which also forgets it) or `handle.stop()`.
   */
  spawn(node: string, argv: readonly string[], opts: SpawnOptions & { kind?: ProcessKind } = {}): ProcessHandle {
    const ns = this.ns(node);
    const h = ProcessHandle.spawn(ns, argv, opts);
    this.handles.set(h.pid, h);
    const rec: ProcessRecord = {
      pid: h.pid, node: this.nodeName(node), ns, kind: opts.kind ?? 'process',
      argv: [...argv], log: opts.log ?? null, startedAt: new Date().toISOString(),
    };
    updateState(this.stateDir, (s) => { s.processes.push(rec); });
    return h;
  }

  /** Stops a process by handle or PID (signal, then SIGKILL after `timeoutMs`) and forgets it. */
  async stop(p: ProcessHandle | number, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<ExitInfo> {
    const h = typeof p === 'number' ? this.handleOf(p) : p;
    const e = await h.stop(signal, timeoutMs);
    this.forget(h.pid);
    return e;
  }

  /**
   * Starts the fwlb daemon on a node: `ip netns exec P-fwN node dist/src/cli/main.js ...args`,
   * logging to `<state>/fwN.daemon.log`. `entry` replaces main.js (tests of the harness).
   */
  startDaemon(node: string, args: readonly string[], opts: { entry?: string; env?: Record<string, string> } = {}): ProcessHandle {
    const name = this.host(node).name;
    const running = this.daemon(name);
    if (running) throw new FwlbError('ERR_LAB_DAEMON_RUNNING', `${name} already runs a daemon (pid ${running.pid})`);
    const spawnOpts: SpawnOptions & { kind: ProcessKind } = { log: `${this.stateDir}/${name}.daemon.log`, kind: 'daemon' };
    if (opts.env) spawnOpts.env = opts.env;
    // FWLB_DAEMON_NODE_ARGS: node options for every daemon of the lab (`--cpu-prof
    // --cpu-prof-dir=/tmp/prof` to profile a benchmark's daemons; node refuses those in NODE_OPTIONS).
    // The daemon's own flag (adapters/reexec.ts) is passed here, which spares it the re-exec.
    const nodeArgs = (process.env.FWLB_DAEMON_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    if (process.env.FWLB_CONCURRENT_GC !== '1' && !nodeArgs.includes(GC_FLAG)) nodeArgs.unshift(GC_FLAG);
    return this.spawn(name, [process.execPath, ...nodeArgs, opts.entry ?? CLI_MAIN_JS, ...args], spawnOpts);
  }

  /** The node's running daemon, or null. */
  daemon(node: string): ProcessHandle | null {
    const name = this.host(node).name;
    const recs = this.processes().filter((p) => p.kind === 'daemon' && p.node === name);
    for (const rec of recs.reverse()) {
      const h = this.handleOf(rec.pid);
      if (h.alive()) return h;
    }
    return null;
  }

  /** Processes the lab started and recorded (all nodes, or one). */
  processes(node?: string): ProcessRecord[] {
    const r = readState(this.stateDir);
    if (!r.ok) return [];
    return node === undefined ? r.state.processes : r.state.processes.filter((p) => p.node === this.nodeName(node));
  }

  /** A handle for a recorded PID: ours if we spawned it, else attached through /proc. */
  handleOf(pid: number): ProcessHandle {
    const mine = this.handles.get(pid);
    if (mine) return mine;
    const rec = this.processes().find((p) => p.pid === pid);
    if (!rec) throw new FwlbError('ERR_LAB_PID', `pid ${pid} was not started by lab ${this.prefix}`);
    return ProcessHandle.attach(pid, rec.ns, rec.argv, rec.log);
  }

  /** Drops a PID from the state file and our handles. */
  forget(pid: number): void {
    this.handles.delete(pid);
    updateState(this.stateDir, (s) => { s.processes = s.processes.filter((p) => p.pid !== pid); });
  }

  /** Drops every record of a node's processes that no longer run. */
  pruneDead(node: string): void {
    for (const p of this.processes(node)) if (!this.handleOf(p.pid).alive()) this.forget(p.pid);
  }

  /** Marks or unmarks a node as crashed in the state file. */
  setCrashed(node: string, crashed: boolean): void {
    const name = this.host(node).name;
    updateState(this.stateDir, (s) => {
      s.crashed = s.crashed.filter((n) => n !== name);
      if (crashed) s.crashed.push(name);
    });
  }

  /**
   * Starts the backend server on each host and waits until all listen (each writes its
   * ready file), failing with the server's log when one dies or the timeout passes.
   */
  async startServers(hosts: readonly HostSpec[], timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<void> {
    const started = await Promise.all(hosts.map(async (h) => {
      const ready = `${this.stateDir}/${h.name}.ready`;
      rmSync(ready, { force: true });
      const handle = this.spawn(h.name, [process.execPath, BACKEND_SERVER_JS, '--name', h.name, '--ready', ready], {
        log: `${this.stateDir}/${h.name}.server.log`,
        kind: 'server',
      });
      await handle.started();
      return { h, handle, ready };
    }));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const waiting = started.filter((s) => !existsSync(s.ready));
      if (waiting.length === 0) return;
      for (const s of waiting) {
        if (!s.handle.alive()) throw new FwlbError('ERR_LAB_SERVER', `server on ${s.h.name} exited before listening: ${tail(s.handle.log)}`);
      }
      if (Date.now() >= deadline) {
        throw new FwlbError('ERR_LAB_SERVER', `servers not listening after ${timeoutMs} ms: ${waiting.map((s) => `${s.h.name} (${tail(s.handle.log)})`).join(', ')}`);
      }
      await sleep(20);
    }
  }

  /** ICMP echo from a node to an address (the lab's own ping; the machine has no iputils). */
  async ping(node: string, target: string, opts: PingOptions = {}): Promise<PingResult> {
    const r = await this.execRaw(node, [
      process.execPath, PING_JS, target,
      '--count', String(opts.count ?? 1),
      '--timeout', String(opts.timeoutMs ?? 1000),
      '--interval', String(opts.intervalMs ?? 200),
    ]);
    if (r.status !== 0 && r.status !== 1) throw new FwlbError('ERR_LAB_PING', `ping ${target} from ${node}: ${r.stderr.trim() || `exit ${r.status}`}`);
    return JSON.parse(r.stdout) as PingResult;
  }

  /**
   * Runs the lab's traffic probe in a node (see probe.ts): `['echo', host, port, payload]`,
   * `['read', host, port]`, `['udp', host, port, payload]`, `['http', url]`. Returns what it
   * received; throws CommandError (with the reason) on failure or timeout.
   */
  probe(node: string, args: readonly string[], timeoutMs = 2000): Promise<string> {
    return this.exec(node, [process.execPath, PROBE_JS, ...args, '--timeout', String(timeoutMs)]);
  }

  /** Power loss: every interface of the node down, every process in it SIGKILLed. */
  crash(node: string): Promise<{ killed: number[] }> {
    return failures.crash(this, node);
  }

  /** Crash behind a switch: processes killed, then the node silent with its links up (no carrier change anywhere). */
  crashSwitched(node: string): Promise<{ killed: number[] }> {
    return failures.crashSwitched(this, node);
  }

  /** One interface down: on the node's side, or with `cable` the switch port (carrier loss). */
  linkDown(node: string, iface: string, opts: { cable?: boolean } = {}): Promise<void> {
    return failures.linkDown(this, node, iface, opts);
  }

  /** The interface and its switch port up again, static routes restored. */
  linkUp(node: string, iface: string): Promise<void> {
    return failures.linkUp(this, node, iface);
  }

  /** kill -9 of the node's daemon alone. */
  daemonKill(node: string): Promise<ExitInfo> {
    return failures.daemonKill(this, node);
  }

  /** SIGTERM to the node's daemon; waits for its exit (SIGKILL and throws after `timeoutMs`). */
  gracefulStop(node: string, timeoutMs?: number): Promise<ExitInfo> {
    return failures.gracefulStop(this, node, timeoutMs);
  }

  /** After a crash: the node boots again clean (see failures.recover). */
  recover(node: string): Promise<void> {
    return failures.recover(this, node);
  }

  /** Tears the whole lab down. */
  down(): Promise<DownReport> {
    this.handles.clear();
    return labDown(this.prefix);
  }
}

/** The last lines of a log file, for error messages. */
function tail(file: string | null, lines = 5): string {
  if (!file) return 'no log';
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join(' | ') || 'empty log';
  } catch {
    return 'no log';
  }
}
