/**
 * The node's daemon over its subsystems (ports/subsystem.ts): the ruleset and balancer maps
 * (services/ruleset.ts), sharing, the state sync and VRRP (services/node-parts.ts). A start
 * or reload prepares every part first (everything that can fail: host checks, the compile,
 * VRRP's groups and sockets, the sync's identity) and commits only when all are prepared: a
 * reload refused by any part leaves the running node untouched and says which part and why.
 * It also answers readiness and status, and runs the graceful stop.
 */
import type { Logger } from 'pino';
import type { HostState } from '../config/host-check.js';
import type { LoadedConfig, LoadResult } from '../config/load.js';
import { nodeView, type NodeView } from '../config/node.js';
import { singleFlight } from '../lib/single-flight.js';
import type { Balancer, BackendCommand, ServiceStatus } from './balancer.js';
import type { SerialQueue } from '../lib/serial-queue.js';
import type { VrrpService, VrrpStatus } from './vrrp.js';
import type { StateSyncService, StateSyncStatus } from './state-sync.js';
import type { ReadyVerdict } from '../fsm/cluster.js';
import { Ruleset, type HealthRunner, type RulesetStatus } from './ruleset.js';
import { SharingPart, SyncPart, VrrpPart } from './node-parts.js';
import { BgpPart } from './bgp-part.js';
import type { BgpService, BgpStatus } from './bgp.js';
import { commitAll, prepareAll, type StepTimes } from './whole-apply.js';
import type { NodeConfig, Subsystem } from '../ports/subsystem.js';
import type { ConfigDistStatus } from './config-dist.js';

import type { LivenessStatus } from './liveness.js';
import { waitBeforeHandover } from './graceful-stop.js';
import type { SharingHostStatus } from './sharing-host.js';
import type { Nft } from '../ports/nft.js';
import type { SocketCounters } from '../ports/netlink.js';
import { heartbeat } from '../lib/heartbeat.js';

/** What the node needs of active-active sharing (services/sharing-host.ts), when configured. */
export interface SharingRunner {
  start(c: LoadedConfig['config'], view: NodeView): Promise<void>;
  afterCommit(config: LoadedConfig['config']): void;
  /** Appended to a full apply: the owned buckets, in the same transaction. */
  ownedScript(): string;
  /** Does this node carry buckets now? */
  carries(): boolean;
  stop(): Promise<void>;
  status(counters: ReadonlyMap<string, number>, countersAt: number): SharingHostStatus;
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
  /** The cluster events' view of the node (services/cluster-events.ts). */
  cluster?: () => { role: ClusterRole; events: StatusEvent[] };
  /**
   * The node's readiness as the cluster events have it (fsm/cluster.ts `readiness`): the one
   * place it is decided. The daemon only says more while it starts (its step) and while the
   * table is the blocker (the bulk sync's live progress).
   */
  clusterReady: () => ReadyVerdict;
  /** VRRP runs, or no longer, after a start or a reload's commit (the cluster events hear it). */
  onVrrpRunning?: (running: boolean, configured: boolean) => void;
  /** Active-active sharing, when the config has `sharing:`. */
  sharing?: SharingRunner;
  /** Announcements by BGP through BIRD, when the config has `bgp:` at the start. */
  bgp?: BgpService;
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

export interface NodeStatus {
  node: string;
  cluster: string;
  pid: number;
  startedAt: string;
  /** The running config; `distribution` (issue 24): its cluster version and hash, the peers' and the pushes. */
  config: { file: string; digest: string; loadedAt: string; version: number | null; hash: string | null; distribution: ConfigDistStatus | null };
  ruleset: RulesetStatus;
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
  /** BGP (issue 26): what the node announces through BIRD and why, BIRD's last word and its protocols (null without `bgp:`). */
  bgp: BgpStatus | null;
  /** The node's place in the cluster as its events say it (fsm/cluster.ts): readiness, peers, VRRP groups and the VIPs they hold, buckets owned. */
  role: ClusterRole | null;
  /** The last cluster events, oldest first (a bucket list as its count). */
  events: StatusEvent[];
}

/** A cluster event as status shows it. */
export type StatusEvent = { type: string; at: number } & Record<string, unknown>;

export interface ClusterRole {
  ready: { ready: boolean; reason: string };
  peers: Record<string, string>;
  groups: Record<string, { state: string; held: readonly string[] }>;
  owned: number;
  /** Cluster events by type since the start (node/event-counts.ts). */
  eventCounts?: Record<string, number>;
}

export interface ProcessFigures {
  rssMiB: number;
  heapUsedMiB: number;
  /**
   * Event loop delay since the start, ms: how late the main thread's heartbeat fired past its
   * period (LOOP_SAMPLE_MS, or the liveness tick's when shorter): a hold as long as a period
   * is always seen (max), shorter ones only where a beat fell.
   */
  loopDelayMs: { p50: number; p99: number; max: number };
}

/**
 * The loop delay's sample period (ms): the heartbeat's (lib/heartbeat.ts), shared with the
 * liveness watchdog's tick (100 ms at the defaults), so that it costs no wakeup of its own
 * (issue 25: at 10 ms it was a third of an idle node's wakeups). The holds that matter (a GC
 * pause, a burst of work against a 100 ms advert interval) are tens of ms and more.
 */
const LOOP_SAMPLE_MS = 100;

/** The loop-delay samples, from the first NodeDaemon on (one for the process). */
let loopWatched = false;
function watchLoop(): void {
  if (loopWatched) return;
  loopWatched = true;
  heartbeat().subscribe(LOOP_SAMPLE_MS, () => undefined);
}
function processFigures(): ProcessFigures {
  watchLoop();
  const m = process.memoryUsage();
  return {
    rssMiB: Math.round(m.rss / 1048576),
    heapUsedMiB: Math.round(m.heapUsed / 1048576),
    loopDelayMs: heartbeat().loopDelay(),
  };
}

export interface ControlCounters {
  connections: number;
  /** Connections waiting for a turn (past the served maximum). */
  waiting: number;
  refused: Record<string, number>;
}

/** The config a node runs, and since when. */
interface Current {
  loaded: LoadedConfig;
  loadedAt: number;
  view: NodeView;
}

export class NodeDaemon {
  private current: Current | undefined;
  private readonly startedAt: number;
  private reloads = { ok: 0, failed: 0, lastError: null as string | null, lastMs: null as number | null };
  /** The config distribution's view (services/config-dist.ts), once it runs. */
  private configStatus: (() => ConfigDistStatus) | undefined;

  setConfigStatus(f: () => ConfigDistStatus): void {
    this.configStatus = f;
  }
  /** What the node is doing while not running yet, or 'stopping'. */
  private step = 'loading the config';
  private stopping = false;
  private readyAtMs: number | undefined;
  private readonly steps: Record<string, number> = {};
  /** Set while a graceful stop waits for a ready peer: ends the wait at once. */
  private endStopWait: (() => void) | undefined;
  private readonly ruleset: Ruleset;
  private readonly vrrpPart: VrrpPart;
  private readonly syncPart: SyncPart;
  private readonly sharingPart = new SharingPart();
  /** Prepared in this order, committed in this order. */
  private readonly parts: Subsystem[];

  constructor(private readonly deps: NodeDaemonDeps, private readonly nodeName: string) {
    this.startedAt = deps.now();
    watchLoop();
    this.ruleset = new Ruleset({
      log: deps.log,
      nft: deps.nft,
      queue: deps.queue,
      balancer: deps.balancer,
      health: deps.health,
      readHost: deps.readHost,
      now: deps.now,
      counters: () => this.counters(),
      ...(deps.sharing ? { sharing: deps.sharing } : {}),
      onStep: (step, next) => this.mark(step, next),
    });
    this.vrrpPart = new VrrpPart({ vrrp: deps.vrrp, balancer: deps.balancer, log: deps.log, ...(deps.onVrrpRunning ? { onRunning: deps.onVrrpRunning } : {}) });
    this.syncPart = new SyncPart(deps.syncIdentity);
    this.parts = [this.ruleset, this.sharingPart, this.syncPart, this.vrrpPart, new BgpPart({ bgp: deps.bgp, availabilityNow: () => deps.balancer.availabilityNow() })] as Subsystem[];
  }

  private uptime(): number {
    return Math.round(this.deps.uptimeMs?.() ?? 0);
  }

  private mark(step: string, next: string): void {
    if (this.current && this.readyAtMs !== undefined) return;
    this.steps[step] = this.uptime();
    this.step = next;
  }

  /** How long the last reload took, from reading the file to the kernel holding the result. */
  noteReloadTime(ms: number): void {
    this.reloads.lastMs = ms;
  }

  /** Where the node stands; see Readiness. */
  readiness(): Readiness {
    const r = (ready: boolean, reason: string): Readiness => ({ ready, reason, startToReadyMs: this.readyAtMs ?? null, steps: { ...this.steps } });
    if (this.stopping) return r(false, 'stopping');
    if (!this.current) return r(false, `starting: ${this.step}`);
    const c = this.deps.clusterReady();
    if (c.blocker === 'starting') return r(false, `starting: ${this.step}`);
    if (c.blocker === 'table' && this.deps.sync) return r(false, this.deps.sync.syncProgress());
    return r(c.ready, c.reason);
  }

  /** The digest of the running config ('' before the start). */
  configDigest(): string {
    return this.current?.loaded.digest ?? '';
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

  async start(loaded: LoadedConfig, opts: { conntrackCount?: () => Promise<number>; beforeVrrp?: () => Promise<void> } = {}): Promise<void> {
    this.mark('loaded', 'preparing');
    await this.syncPart.adopt(loaded);
    this.sharingPart.adopt(loaded.config);
    // What the kernel held when we came up, before our own health checks add to it.
    const held = this.deps.sync ? await (opts.conntrackCount?.() ?? Promise.resolve(1)).catch(() => 1) : 1;
    const cfg: NodeConfig = { loaded, view: nodeView(loaded.config, this.nodeName) };
    const [rules] = await prepareAll(cfg, [this.ruleset]);
    await this.ruleset.commit(rules!.prepared.plan as never);
    this.current = { loaded, loadedAt: this.deps.now(), view: cfg.view };
    await this.deps.sharing?.start(loaded.config, cfg.view);
    // The runtime changes kept on disk (a drain, maintenance): in place before any VIP is taken.
    await opts.beforeVrrp?.();
    this.mark('apply', 'starting the state sync');
    // The state sync first: a joining node is held back from mastership until it has the
    // peers' connection table. The firewall is in place before any address is taken.
    this.deps.sync?.start({ emptyTable: held === 0 });
    this.mark('sync', 'starting VRRP');
    await commitAll(await prepareAll(cfg, [this.vrrpPart]));
    this.mark('vrrp', 'waiting for the bulk sync');
    this.checkReady();
  }

  /** Reload with a new config; on any failure the running one stays and the error is returned. */
  async reload(next: LoadResult): Promise<{ ok: true; changed: boolean } | { ok: false; error: Error }> {
    try {
      if (!next.ok) throw next.error;
      const cfg: NodeConfig = { loaded: next.value, view: nodeView(next.value.config, this.nodeName) };
      const times: StepTimes = { now: this.deps.now, ms: {} };
      const ready = await prepareAll(cfg, this.parts, times);
      const changed = ready.find((r) => r.part === this.ruleset)!.prepared.changed;
      const running = this.current ? { loaded: this.current.loaded, view: this.current.view } : undefined;
      await commitAll(ready, { always: this.ruleset, times, ...(running ? { running } : {}) });
      this.current = { loaded: cfg.loaded, loadedAt: this.deps.now(), view: cfg.view };
      this.reloads.ok++;
      this.reloads.lastError = null;
      this.deps.log.info({ event: 'reload', changed, digest: next.value.digest.slice(0, 12), stepsMs: times.ms }, changed ? 'config reloaded' : 'config reloaded, ruleset unchanged');
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
   * Graceful stop: VRRP hands over (priority 0, VIPs removed); the ruleset stays. A node that
   * carries traffic first waits (at most `state_sync.stop_wait`) for a peer that is ready to
   * take over, and for its ready peers to catch up (services/graceful-stop.ts). `force` (or a
   * second SIGTERM, see `skipStopWait`) does not wait.
   */
  async stop(opts: { force?: boolean } = {}): Promise<void> {
    const { sync, vrrp, log } = this.deps;
    // The routers first: an entry point goes before an owner (tagged, drained, withdrawn).
    await this.beginDrain(opts.force ?? false);
    const ss = this.current?.loaded.config.state_sync;
    const carrying = vrrp.isMaster() || (this.deps.sharing?.carries() ?? false);
    if (!opts.force && sync && carrying && (ss?.stop_wait ?? 0) > 0) {
      await waitBeforeHandover({
        log,
        now: () => performance.now(),
        sync,
        ...(this.deps.livenessStatus ? { liveness: this.deps.livenessStatus } : {}),
        waitMs: ss?.stop_wait ?? 0,
        lagBoundMs: ss?.lag_bound ?? 1000,
        setSkip: (end) => (this.endStopWait = end),
      });
    }
    this.stopping = true;
    this.deps.health.stop();
    await this.deps.vrrp.shutdown();
    // Our buckets go before the sync stops: the sessions moved to the peers are already theirs.
    await this.deps.sharing?.stop();
    await this.deps.sync?.stop();
    this.deps.bgp?.close();
  }

  /**
   * Begins BGP's drain (GRACEFUL_SHUTDOWN, then withdrawn after `bgp.drain`; at once when
   * forced): called as the stop is asked, before the node says it is not ready (which alone
   * would withdraw at once); the stop joins it.
   */
  beginDrain(force: boolean): Promise<void> {
    return this.deps.bgp?.drain(force ? 'fwlb stop --force' : 'stopping', force) ?? Promise.resolve();
  }

  /** Ends a graceful stop's wait for a ready peer now (`fwlb stop --force`, a second SIGTERM). */
  skipStopWait(): boolean {
    const drainEnded = this.deps.bgp?.endDrain() ?? false;
    if (!this.endStopWait) return drainEnded;
    this.deps.log.warn({ event: 'stop_wait_skipped' }, 'stopping at once: no longer waiting for a ready peer or for the peers to catch up');
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
    if (on) void this.deps.bgp?.drain('maintenance');
    else this.deps.bgp?.resume();
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
    const r = this.current;
    const rules = this.ruleset.status();
    if (!r || !rules) throw new Error('node not started');
    const c = r.loaded.config;
    const iso = (t: number) => new Date(t).toISOString();
    // The kernel answers a counter dump while the request is sent (the adapter sends at once):
    // the counters are as of now, however late the reply is read.
    const countersAt = Date.now();
    const counters = await this.counters();
    return {
      node: this.nodeName,
      cluster: c.cluster.name,
      pid: process.pid,
      startedAt: iso(this.startedAt),
      config: { file: r.loaded.file, digest: r.loaded.digest, loadedAt: iso(r.loadedAt), ...configVersion(this.configStatus?.()) },
      ruleset: rules,
      reloads: { ...this.reloads },
      services: await this.deps.balancer.status(counters),
      vrrp: this.withReadiness(this.deps.vrrp.status()),
      sync: this.deps.sync?.status() ?? null,
      ready: this.readiness(),
      netlink: this.deps.netlinkCounters?.() ?? {},
      control: this.deps.controlCounters?.() ?? { connections: 0, waiting: 0, refused: {} },
      process: processFigures(),
      liveness: this.deps.livenessStatus?.() ?? null,
      sharing: this.deps.sharing?.status(counters, countersAt) ?? null,
      bgp: (await this.deps.bgp?.status()) ?? null,
      ...(this.deps.cluster?.() ?? { role: null, events: [] }),
    };
  }
}

/** The config's cluster version and hash for status (null without the distribution). */
function configVersion(d: ConfigDistStatus | undefined): { version: number | null; hash: string | null; distribution: ConfigDistStatus | null } {
  return d ? { version: d.version, hash: d.hash, distribution: d } : { version: null, hash: null, distribution: null };
}
