/**
 * The node: takes a checked config, prepares everything that can fail (node view,
 * host checks, the load balancer's plan, compile, `nft -c`) and only then commits.
 * A reload that fails at any step leaves the running config and ruleset untouched.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { compileRulesetParts, digestChainName, DIGEST_CHAIN_PREFIX, TABLE_FAMILY, TABLE_NAME, type Block } from '../compiler/ruleset.js';
import { mapsRefresh, rulesetDelta } from '../compiler/delta.js';
import type { HostState } from '../config/host-check.js';
import { hostCheck, routedAddresses } from '../config/host-check.js';
import { ConfigError } from '../config/issues.js';
import { FwlbError } from '../lib/errors.js';
import type { LoadedConfig, LoadResult } from '../config/load.js';
import { nodeView, type NodeView } from '../config/node.js';
import { singleFlight } from '../lib/single-flight.js';
import { Balancer, type BackendCommand, type ServiceStatus } from './balancer.js';
import type { SerialQueue } from '../lib/serial-queue.js';
import type { VrrpPlan, VrrpService, VrrpStatus } from './vrrp.js';
import type { StateSyncService, StateSyncStatus } from './state-sync.js';

import type { LivenessStatus } from './liveness.js';
import type { SharingHostStatus } from './sharing-host.js';
import type { Nft } from '../ports/nft.js';
import type { SocketCounters } from '../ports/netlink.js';

/** What the node needs of active-active sharing (services/sharing-host.ts), when configured. */
export interface SharingRunner {
  start(c: LoadedConfig['config'], view: NodeView): Promise<void>;
  afterCommit(): void;
  /** Appended to a full apply: the owned buckets, in the same transaction. */
  ownedScript(): string;
  /** Does this node carry buckets now? */
  carries(): boolean;
  stop(): Promise<void>;
  status(counters: ReadonlyMap<string, number>): SharingHostStatus;
}

/** What the node needs of the health checker (services/health-checker.ts). */
export interface HealthRunner {
  setTargets(targets: ReturnType<Balancer['healthTargets']>): void;
  snapshot(): readonly { service: string; backend: string; status: 'up' | 'down'; lastDetail?: string | undefined }[];
  stop(): void;
}

export interface NodeDaemonDeps {
  log: Logger;
  nft: Nft;
  queue: SerialQueue;
  balancer: Balancer;
  health: HealthRunner;
  vrrp: VrrpService;
  /** Present when state sync is configured (state_sync and cluster.key_file). */
  sync?: StateSyncService;
  readHost: (routeTargets: readonly string[]) => Promise<HostState>;
  now: () => number;
  /** Milliseconds since the process started (performance.now), for the startup figures. */
  uptimeMs?: () => number;
  /**
   * What the running state sync is built from (main.ts); a reload that changes it is
   * refused. Throws (a located message) when the config's sync cannot be built at all.
   */
  syncIdentity?: (loaded: LoadedConfig) => Promise<string>;
  /**
   * The table's named counters (name -> packets). main.ts reads them over netlink
   * (NftCounters: nothing spawned).
   */
  readCounters: () => Promise<Map<string, number>>;
  /** Active-active sharing, when the config has `sharing:`. */
  sharing?: SharingRunner;
  /** Liveness between the nodes (services/liveness.ts), when it runs. */
  livenessStatus?: () => LivenessStatus | undefined;
  /** The control socket's connections and refusals (ControlServer.counters). */
  controlCounters?: () => ControlCounters;
  /** The netlink sockets' own counters (messages, drops by reason, lost events), by socket. */
  netlinkCounters?: () => Record<string, { requests: SocketCounters; events?: SocketCounters }>;
}

/**
 * Ready: the ruleset is applied, VRRP runs, and the state sync has the table (its bulk sync
 * is complete, or it has shown that no peer holds one). Until then the node may not be
 * counted on to take over, and it never says it is a plain backup.
 */
export interface Readiness {
  ready: boolean;
  /** What the node is doing or waiting for ("ready" when ready). */
  reason: string;
  /** Milliseconds from the process start to ready (null until then). */
  startToReadyMs: number | null;
  /** Milliseconds from the process start at the end of each startup step. */
  steps: Record<string, number>;
}

/** What `fwlb status` gets from a node still starting. */
export interface StartingStatus {
  node: string;
  starting: true;
  ready: Readiness;
}

interface Prepared {
  loaded: LoadedConfig;
  view: NodeView;
  plan: ReturnType<Balancer['plan']>;
  script: string;
  scriptDigest: string;
  blocks: Block[];
}

interface Running {
  loaded: LoadedConfig;
  loadedAt: number;
  view: NodeView;
  scriptDigest: string;
  scriptBytes: number;
  blocks: Block[];
  /** How the last ruleset change went in: the whole table, a delta, or nothing (the kernel had it). */
  applyMode: 'full' | 'delta' | 'kept';
  appliedAt: number;
  applyMs: number;
}

export interface NodeStatus {
  node: string;
  cluster: string;
  pid: number;
  startedAt: string;
  config: { file: string; digest: string; loadedAt: string };
  ruleset: { digest: string; appliedAt: string; applyMs: number; applyMode: 'full' | 'delta' | 'kept'; bytes: number; blockedPrefixes: number };
  reloads: { ok: number; failed: number; lastError: string | null; lastMs: number | null };
  services: ServiceStatus[];
  vrrp: VrrpStatus;
  sync: StateSyncStatus | null;
  ready: Readiness;
  netlink: Record<string, { requests: SocketCounters; events?: SocketCounters }>;
  /** The control socket: connections open, requests refused by reason (busy, too_large, idle, ...). */
  control: ControlCounters;
  /** The daemon process: memory, and how late its event loop ran (what delays an advert). */
  process: ProcessFigures;
  /** Liveness BEATs per peer (null when state_sync.liveness is off or there is no sync). */
  liveness: LivenessStatus | null;
  /** Active-active sharing: members, the buckets this node owns, its packets (null without `sharing:`). */
  sharing: SharingHostStatus | null;
}

export interface ProcessFigures {
  rssMiB: number;
  heapUsedMiB: number;
  /** Event loop delay since the start (perf_hooks, 10 ms resolution), ms. */
  loopDelayMs: { p50: number; p99: number; max: number };
}

/** One histogram for the process, from the first NodeDaemon on. */
let loopDelay: ReturnType<typeof monitorEventLoopDelay> | undefined;
function watchLoop(): ReturnType<typeof monitorEventLoopDelay> {
  if (loopDelay) return loopDelay;
  loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  return loopDelay;
}
function processFigures(): ProcessFigures {
  const h = watchLoop();
  const m = process.memoryUsage();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return {
    rssMiB: Math.round(m.rss / 1048576),
    heapUsedMiB: Math.round(m.heapUsed / 1048576),
    loopDelayMs: h.count > 0 ? { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) } : { p50: 0, p99: 0, max: 0 },
  };
}

export interface ControlCounters {
  connections: number;
  /** Connections waiting for a turn (past the served maximum). */
  waiting: number;
  refused: Record<string, number>;
}

/**
 * A stopping master waits this long for a peer that is absent (stopped or dead) to come back
 * (a restart says HELLO well within it); then it stops without one.
 */
const STOP_WAIT_ABSENT_MS = 3000;

export class NodeDaemon {
  private running: Running | undefined;
  private readonly startedAt: number;
  private reloads = { ok: 0, failed: 0, lastError: null as string | null, lastMs: null as number | null };
  /** What the node is doing while not running yet, or 'stopping'. */
  private step = 'loading the config';
  private stopping = false;
  /** The running state sync's identity (see NodeDaemonDeps.syncIdentity). */
  private syncId: string | undefined;
  private readyAtMs: number | undefined;
  private readonly steps: Record<string, number> = {};
  /** Set while a graceful stop waits for a ready peer: ends the wait at once. */
  private endStopWait: (() => void) | undefined;

  constructor(private readonly deps: NodeDaemonDeps, private readonly nodeName: string) {
    this.startedAt = deps.now();
    watchLoop();
  }

  private uptime(): number {
    return Math.round(this.deps.uptimeMs?.() ?? 0);
  }

  private mark(step: string, next: string): void {
    if (this.running && this.readyAtMs !== undefined) return;
    this.steps[step] = this.uptime();
    this.step = next;
  }

  /** Everything that can fail, with nothing applied. */
  async prepare(loaded: LoadedConfig): Promise<Prepared> {
    const view = nodeView(loaded.config, this.nodeName);
    this.mark('config', 'checking the host');
    const host = await this.deps.readHost(routedAddresses(loaded.config));
    const issues = hostCheck(loaded.config, view, host).map(loaded.locate);
    // Sharing's addresses, MACs and buckets are set up at start: a reload may not change them.
    if (this.running && JSON.stringify(this.running.loaded.config.sharing ?? null) !== JSON.stringify(loaded.config.sharing ?? null)) {
      issues.push(loaded.locate({ path: ['sharing'], message: 'sharing changed: it cannot change on a reload (its addresses, MACs and buckets are set up at start); nothing was applied. Restart the node to use it' }));
    }
    if (issues.length) throw new ConfigError(loaded.file, issues);
    this.mark('host', 'compiling the ruleset');
    const plan = this.deps.balancer.plan(loaded.config);
    const compiled = compileRulesetParts({ config: loaded.config, node: view, blocklist: loaded.blocklist, serviceSlots: Balancer.slotsOf(plan.services) });
    this.mark('compile', 'applying the ruleset');
    return { loaded, view, plan, script: compiled.script, scriptDigest: compiled.digest, blocks: compiled.blocks };
  }

  /** How long the last reload took, from reading the file to the kernel holding the result. */
  noteReloadTime(ms: number): void {
    this.reloads.lastMs = ms;
  }

  /** Where the node stands; see Readiness. */
  readiness(): Readiness {
    const r = (ready: boolean, reason: string): Readiness => ({ ready, reason, startToReadyMs: this.readyAtMs ?? null, steps: { ...this.steps } });
    if (this.stopping) return r(false, 'stopping');
    if (!this.running) return r(false, `starting: ${this.step}`);
    if (this.running.loaded.config.vrrp && Object.keys(this.running.loaded.config.vrrp.groups).length && !this.deps.vrrp.isRunning()) return r(false, 'VRRP not running');
    const sync = this.deps.sync;
    if (sync && !sync.synced()) return r(false, sync.syncProgress());
    return r(true, 'ready');
  }

  /** Notes the moment the node first becomes ready (logged once, with the startup steps). */
  checkReady(): void {
    if (this.readyAtMs !== undefined) return;
    const r = this.readiness();
    if (!r.ready) return;
    this.readyAtMs = this.uptime();
    this.steps.ready = this.readyAtMs;
    this.deps.log.info({ event: 'ready', startToReadyMs: this.readyAtMs, steps: { ...this.steps } }, `ready ${this.readyAtMs} ms after the process started`);
  }

  /**
   * Puts the ruleset into the kernel, in one transaction (in the kernel queue, so no map
   * update races it), the cheapest way that gives the same table:
   *  - at start, if the kernel already holds this very ruleset (its digest chain says so),
   *    only the service maps are filled again (the last run may have changed them);
   *  - on reload, the delta from the running ruleset (compiler/delta.ts), or the whole table
   *    if the delta cannot express the change or the kernel refuses it;
   *  - otherwise the whole table.
   */
  private async commit(p: Prepared): Promise<void> {
    const { nft, balancer, queue, log } = this.deps;
    await queue.run(async () => {
      const t0 = this.deps.now();
      let mode: Running['applyMode'] = 'full';
      let bytes = p.script.length;
      const prev = this.running;
      if (!prev && (await kernelDigest(nft)) === digestChainName(p.scriptDigest).slice(DIGEST_CHAIN_PREFIX.length)) {
        const refresh = mapsRefresh(p.blocks);
        if (refresh) await nft.apply(refresh);
        mode = 'kept';
        bytes = refresh.length;
      } else if (prev) {
        const delta = rulesetDelta(prev.blocks, p.blocks);
        if (delta !== undefined) {
          try {
            if (delta) await nft.apply(delta);
            mode = 'delta';
            bytes = delta.length;
          } catch (e) {
            log.warn({ event: 'ruleset_delta_refused', err: (e as Error).message }, 'the kernel refused the delta: replacing the whole table');
          }
        }
      }
      if (mode === 'full') {
        const counters = await this.counters();
        // With sharing, the new table's owned set is filled in the same transaction: no
        // moment without it (afterCommit writes it again in any case).
        await nft.apply(p.script + (this.deps.sharing?.ownedScript() ?? ''));
        balancer.carryCounters(counters);
      }
      const applyMs = Math.round(this.deps.now() - t0);
      balancer.adopt(p.loaded.config, p.plan);
      this.running = { loaded: p.loaded, loadedAt: this.deps.now(), view: p.view, scriptDigest: p.scriptDigest, scriptBytes: p.script.length, blocks: p.blocks, applyMode: mode, appliedAt: this.deps.now(), applyMs };
      log.info({ event: 'ruleset_applied', digest: p.scriptDigest.slice(0, 12), mode, applyMs, bytes: p.script.length, transactionBytes: bytes }, mode === 'kept' ? 'ruleset already in the kernel: kept (service maps refilled)' : `ruleset applied (${mode})`);
    });
    // A full apply resets the owned buckets: they are written again.
    this.deps.sharing?.afterCommit();
    this.deps.health.setTargets(balancer.healthTargets());
    // Health verdicts reached while the plan was being made: bring them in.
    for (const h of this.deps.health.snapshot()) await balancer.setHealth(h.service, h.backend, h.status === 'up', h.lastDetail ?? '');
  }

  async start(loaded: LoadedConfig, opts: { conntrackCount?: () => Promise<number> } = {}): Promise<void> {
    this.mark('loaded', 'preparing');
    this.syncId = await this.deps.syncIdentity?.(loaded);
    // What the kernel held when we came up, before our own health checks add to it.
    const held = this.deps.sync ? await (opts.conntrackCount?.() ?? Promise.resolve(1)).catch(() => 1) : 1;
    const p = await this.prepare(loaded);
    await this.commit(p);
    await this.deps.sharing?.start(p.loaded.config, p.view);
    this.mark('apply', 'starting the state sync');
    // The state sync first: a joining node is held back from mastership until it has the
    // peers' connection table. The firewall is in place before any address is taken.
    this.deps.sync?.start({ emptyTable: held === 0 });
    this.mark('sync', 'starting VRRP');
    await this.startVrrp(p);
    this.mark('vrrp', 'waiting for the bulk sync');
    this.checkReady();
  }

  /** Starts VRRP for a config, with the tracked services' availability as it is now. */
  private async startVrrp(p: Prepared): Promise<void> {
    await this.commitVrrp(this.prepareVrrp(p));
  }

  /** VRRP's part of a start or reload, prepared (see VrrpService.prepare); a failure names the part. */
  private prepareVrrp(p: Prepared): VrrpPlan {
    try {
      return this.deps.vrrp.prepare(p.loaded.config, p.view);
    } catch (e) {
      throw new FwlbError('ERR_PREPARE_VRRP', `vrrp: ${(e as Error).message}`);
    }
  }

  private async commitVrrp(plan: VrrpPlan): Promise<void> {
    await this.deps.vrrp.commit(plan);
    for (const [service, up] of this.deps.balancer.availabilityNow()) this.deps.vrrp.setServiceAvailable(service, up);
  }

  /**
   * What of the config the VRRP engine depends on: a change restarts it (a graceful
   * handover). Only the VRRP section, this node's priority, the names and addresses of
   * the interfaces VRRP runs on (ours and the peers'), and the sync interface's name.
   */
  private static vrrpKey(c: LoadedConfig['config'], v: NodeView): string {
    const roles = [...new Set(Object.values(c.vrrp?.groups ?? {}).flatMap((g) => [...Object.values(g.instances).map((i) => i.interface), ...g.track.interfaces]))].sort();
    const pick = (m: Record<string, string>) => roles.map((r) => m[r] ?? null);
    return JSON.stringify({
      vrrp: c.vrrp ?? null,
      priority: v.priority,
      interfaces: pick(v.interfaces),
      addresses: pick(v.addresses),
      peers: v.peers.map((p) => [p.name, pick(p.addresses)]),
      sync: c.state_sync ? v.interfaces[c.state_sync.interface] ?? null : null,
    });
  }

  /** Reload with a new config; on any failure the running one stays and the error is returned. */
  async reload(next: LoadResult): Promise<{ ok: true; changed: boolean } | { ok: false; error: Error }> {
    try {
      if (!next.ok) throw next.error;
      const p = await this.prepare(next.value);
      const syncId = await this.deps.syncIdentity?.(p.loaded);
      if (syncId !== this.syncId) {
        throw new FwlbError(
          'ERR_RELOAD_SYNC',
          `${p.loaded.file}: state_sync or cluster.key_file changed (${syncChange(this.syncId, syncId)}): the state sync cannot change on a reload; nothing was applied. Restart the node to use it (fwlb stop, then fwlb run; a master first hands over).`,
        );
      }
      const changed = p.scriptDigest !== this.running?.scriptDigest;
      const vrrpChanged = !this.running || NodeDaemon.vrrpKey(p.loaded.config, p.view) !== NodeDaemon.vrrpKey(this.running.loaded.config, this.running.view);
      // Every part prepared before any is committed: a part that cannot take the new config
      // refuses the reload whole, and the running node (ruleset, VIPs, sessions) is untouched.
      const vrrpPlan = vrrpChanged ? this.prepareVrrp(p) : undefined;
      if (changed) {
        try {
          await this.commit(p);
        } catch (e) {
          if (vrrpPlan) this.deps.vrrp.discard(vrrpPlan);
          throw e;
        }
      } else {
        // Same ruleset: the kernel already matches the plan.
        this.deps.balancer.adopt(p.loaded.config, p.plan);
        this.deps.health.setTargets(this.deps.balancer.healthTargets());
        if (this.running) this.running = { ...this.running, loaded: p.loaded, loadedAt: this.deps.now(), view: p.view };
      }
      if (vrrpPlan) {
        this.deps.log.warn({ event: 'vrrp_restart' }, 'the VRRP configuration changed: restarting VRRP (graceful handover first)');
        await this.commitVrrp(vrrpPlan);
      }
      this.reloads.ok++;
      this.reloads.lastError = null;
      this.deps.log.info({ event: 'reload', changed, digest: next.value.digest.slice(0, 12) }, changed ? 'config reloaded' : 'config reloaded, ruleset unchanged');
      return { ok: true, changed };
    } catch (e) {
      this.reloads.failed++;
      this.reloads.lastError = (e as Error).message;
      this.deps.log.error({ event: 'reload_failed', err: (e as Error).message }, 'reload failed: keeping the running config and ruleset');
      return { ok: false, error: e as Error };
    }
  }

  backend(c: BackendCommand): ReturnType<Balancer['command']> {
    return this.deps.balancer.command(c);
  }

  /**
   * Graceful stop: VRRP hands over (priority 0, VIPs removed); the ruleset stays. A master
   * first waits (at most `state_sync.stop_wait`) for a peer that is ready to take over: one
   * whose bulk sync is complete. Stopping the master while its peer is still starting must
   * not leave the VIPs with nobody, nor with a node that lacks the sessions. `force` (or a
   * second SIGTERM, see `skipStopWait`) does not wait.
   */
  async stop(opts: { force?: boolean } = {}): Promise<void> {
    const { sync, vrrp, log } = this.deps;
    const waitMs = this.running?.loaded.config.state_sync?.stop_wait ?? 0;
    const carrying = vrrp.isMaster() || (this.deps.sharing?.carries() ?? false);
    if (!opts.force && sync && carrying && waitMs > 0 && sync.readyPeers().length === 0 && sync.everHadPeer()) {
      const t0 = this.deps.now();
      log.warn({ event: 'stop_wait', waitMs, live: sync.livePeers() }, `stopping: waiting up to ${waitMs} ms for a peer that is ready to take over`);
      const ok = await new Promise<boolean>((resolve) => {
        const t0 = this.deps.now();
        const poll = setInterval(() => {
          if (sync.readyPeers().length > 0) done(true);
          // Nobody alive (the peers stopped, or died) and nobody back within a restart's
          // time: they are not coming; the cluster is being shut down.
          else if (sync.livePeers().length === 0 && this.deps.now() - t0 > STOP_WAIT_ABSENT_MS) done(false);
        }, 20);
        const timer = setTimeout(() => done(false), waitMs);
        const done = (v: boolean) => {
          clearInterval(poll);
          clearTimeout(timer);
          this.endStopWait = undefined;
          resolve(v);
        };
        this.endStopWait = () => done(false);
      });
      const waited = Math.round(this.deps.now() - t0);
      if (ok) log.info({ event: 'stop_wait_done', waitedMs: waited, peers: sync.readyPeers() }, `a ready peer is there after ${waited} ms: handing over`);
      else log.warn({ event: 'stop_wait_timeout', waitedMs: waited }, `no ready peer after ${waited} ms: handing over anyway`);
    }
    this.stopping = true;
    this.deps.health.stop();
    await this.deps.vrrp.shutdown();
    // Our buckets go before the sync stops: the sessions moved to the peers are already theirs.
    await this.deps.sharing?.stop();
    await this.deps.sync?.stop();
  }

  /** Ends a graceful stop's wait for a ready peer now (`fwlb stop --force`, a second SIGTERM). */
  skipStopWait(): boolean {
    if (!this.endStopWait) return false;
    this.deps.log.warn({ event: 'stop_wait_skipped' }, 'stopping at once: no longer waiting for a ready peer');
    this.endStopWait();
    return true;
  }

  /** A node that is not ready is not a backup one can count on: its groups say `not-ready`. */
  private withReadiness(v: VrrpStatus): VrrpStatus {
    if (this.readiness().ready) return v;
    return { ...v, groups: v.groups.map((g) => (g.state === 'backup' || g.state === 'initialize' ? { ...g, state: 'not-ready' } : g)) };
  }

  maintenance(on: boolean): VrrpStatus {
    this.deps.vrrp.setMaintenance(on);
    return this.deps.vrrp.status();
  }

  /**
   * The node's status. Callers that ask while one is being computed share it: the counters
   * (an nft child process) and the flows (a conntrack dump) are read once for all of them.
   */
  readonly status: () => Promise<NodeStatus> = singleFlight(() => this.computeStatus());

  private counters(): Promise<Map<string, number>> {
    return this.deps.readCounters().catch(() => new Map<string, number>());
  }

  private async computeStatus(): Promise<NodeStatus> {
    const r = this.running;
    if (!r) throw new Error('node not started');
    const c = r.loaded.config;
    const iso = (t: number) => new Date(t).toISOString();
    const counters = await this.counters();
    return {
      node: this.nodeName,
      cluster: c.cluster.name,
      pid: process.pid,
      startedAt: iso(this.startedAt),
      config: { file: r.loaded.file, digest: r.loaded.digest, loadedAt: iso(r.loadedAt) },
      ruleset: { digest: r.scriptDigest, appliedAt: iso(r.appliedAt), applyMs: r.applyMs, applyMode: r.applyMode, bytes: r.scriptBytes, blockedPrefixes: r.loaded.blocklist.length },
      reloads: { ...this.reloads },
      services: await this.deps.balancer.status(counters),
      vrrp: this.withReadiness(this.deps.vrrp.status()),
      sync: this.deps.sync?.status() ?? null,
      ready: this.readiness(),
      netlink: this.deps.netlinkCounters?.() ?? {},
      control: this.deps.controlCounters?.() ?? { connections: 0, waiting: 0, refused: {} },
      process: processFigures(),
      liveness: this.deps.livenessStatus?.() ?? null,
      sharing: this.deps.sharing?.status(counters) ?? null,
    };
  }
}

/** The digest the kernel's table records (the name of its digest chain), if any. */
async function kernelDigest(nft: Nft): Promise<string | undefined> {
  let text: string;
  try {
    text = await nft.list(['list', 'chains', TABLE_FAMILY]);
  } catch {
    return undefined;
  }
  let inTable = false;
  for (const line of text.split('\n')) {
    const t = /^table (\S+) (\S+) \{/.exec(line);
    if (t) inTable = t[1] === TABLE_FAMILY && t[2] === TABLE_NAME;
    const c = inTable ? new RegExp(`^\\s+chain ${DIGEST_CHAIN_PREFIX}([0-9a-f]+) \\{`).exec(line) : null;
    if (c) return c[1];
  }
  return undefined;
}

/** Which part of the state sync's identity changed, for the refusal's message. */
function syncChange(before: string | undefined, after: string | undefined): string {
  if (before === 'off' || after === 'off') return before === 'off' ? 'turned on' : 'turned off';
  try {
    const a = JSON.parse(before ?? '{}') as Record<string, unknown>;
    const b = JSON.parse(after ?? '{}') as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    return keys.map((k) => (k === 'key' ? 'the key' : k)).join(', ') || 'unknown';
  } catch {
    return 'unknown';
  }
}
