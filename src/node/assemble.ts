/**
 * One node assembled from its subsystems (issue 21): the adapters (nftables, netlink, raw
 * VRRP sockets, the flow counter), the services built on them (balancer and health, VRRP,
 * state sync and liveness, sharing), the node daemon that prepares and commits them, and
 * the control socket and metrics listener in front. `main` creates the logger and hands over;
 * everything a node is made of is built here, in one place, from one config.
 */
import type { Logger } from 'pino';
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import { createNft } from '../adapters/nft.js';
import { Ctnetlink, createCtnetlinkConntrack } from '../adapters/netlink/ctnetlink.js';
import { NftCounters } from '../adapters/netlink/nft-counters.js';
import { NftBatch } from '../adapters/netlink/nft-batch.js';
import { Poller } from '../adapters/netlink/poller.js';
import { FlowCounter } from '../adapters/flows/counter.js';
import { readHostState } from '../adapters/host.js';
import { probes } from '../adapters/health/index.js';
import { createVrrpNet } from '../adapters/vrrp-net.js';
import { OwnedNft } from '../adapters/nft-owned.js';
import { joinLinkMulticast, leaveLinkMulticast } from '../adapters/link-multicast.js';
import { setLooseRpFilter, setNeighRetrans } from '../adapters/neigh.js';
import { TABLE_FAMILY, TABLE_NAME } from '../compiler/ruleset.js';
import { ownedSetScript } from '../compiler/map-update.js';
import { compileRelay } from '../compiler/relay.js';
import type { LoadedConfig, LoadResult } from '../config/load.js';
import type { BundleFile } from '../codec/config/bundle.js';
import { nodeView } from '../config/node.js';
import { defaultSeed } from '../fsm/sharing.js';
import { realClock } from '../lib/clock.js';
import type { Failpoint } from '../lib/failpoints.js';
import { SerialQueue } from '../lib/serial-queue.js';
import { Balancer } from '../services/balancer.js';
import { HealthChecker } from '../services/health-checker.js';
import type { LivenessService } from '../services/liveness.js';
import { NodeDaemon, type ControlCounters } from '../services/node-daemon.js';
import { SharingService } from '../services/sharing.js';
import { SharingHost } from '../services/sharing-host.js';
import type { StateSyncService } from '../services/state-sync.js';
import { VrrpService } from '../services/vrrp.js';
import { serveMetrics } from '../control/metrics-http.js';
import { controlServer, reloadFile } from './control.js';
import type { ControlServer } from '../control/server.js';
import { ClusterEvents } from '../services/cluster-events.js';
import { logEvents } from './log-events.js';
import { eventCounts } from './event-counts.js';
import { notifyHooks } from './notify.js';
import { attachSystemd, type SystemdNotify } from './systemd.js';
import { ShareReadiness } from './share-readiness.js';
import { buildBgp } from './bgp.js';
import type { BgpService } from '../services/bgp.js';
import { createLiveness, createStateSync, syncIdentity } from './sync.js';
import { buildConfigDist, readConfigFiles, replayRuntime, type ConfigDistParts, type RestoredRuntime } from './config-dist.js';
import type { RuntimeCommand } from '../fsm/runtime-log.js';
import { FwlbError } from '../lib/errors.js';
import { withNextStep } from '../lib/next-step.js';

export interface NodeOptions {
  configFile: string;
  node: string;
  controlPath: string;
  /** "ADDRESS:PORT" to serve /metrics over HTTP. */
  metrics?: string;
  /** Where the node keeps what outlives it: config versions (default /var/lib/fwlb/NODE). */
  stateDir?: string;
}

/** Neighbour probe interval on a shared link or a VRRP instance's link (adapters/neigh.ts). */
const NEIGH_RETRANS_MS = 100;

/** The node's adapters: what talks to the kernel. */
async function openAdapters(log: Logger, syncOn: boolean) {
  const poller = new Poller();
  const vrrpNet = await createVrrpNet({ poller, log: log.child({ component: 'netlink' }) });
  // 32 MiB for the events: a master opening 40,000 connections a second fills 8 MiB within a
  // fifth of a second of a stalled loop (GC, a burst of control requests), and every lost
  // event costs a push of the whole table to the peers.
  const ctnl = Ctnetlink.open({ poller, skipSelfEvents: true, eventBuffer: 32 * 1024 * 1024, ...(syncOn ? { events: ['new', 'update', 'destroy'] as const } : {}) });
  const nftCounters = NftCounters.open(poller);
  const flowCounter = new FlowCounter();
  let owned: OwnedNft | undefined;
  let batch: NftBatch | undefined;
  const close = () => {
    owned?.close();
    batch?.close();
    flowCounter.close();
    nftCounters.close();
    ctnl.close();
    vrrpNet.close();
    poller.close();
  };
  return { nft: createNft(), kernel: new SerialQueue(), poller, vrrpNet, ctnl, nftCounters, flowCounter, openOwned: () => (owned = OwnedNft.open()), nftBatch: () => (batch ??= NftBatch.open(poller)), close };
}
type Adapters = Awaited<ReturnType<typeof openAdapters>>;

/** Active-active: the buckets this node owns, written into the kernel by element (no nft spawned when a peer comes or goes). */
function buildSharing(loaded: LoadedConfig, opts: NodeOptions, a: Adapters, log: Logger, linksDown: () => string[], onOwned: (marks: number[]) => void) {
  const c = loaded.config;
  if (!c.sharing) return undefined;
  /** The marks the kernel's owned set holds (after each write). */
  let owned = new Set<number>();
  const o = a.openOwned();
  const sharingLog = log.child({ component: 'sharing' });
  let relayConfig = c;
  const service = new SharingService({
    log: sharingLog,
    self: opts.node,
    buckets: c.sharing.buckets,
    seed: c.sharing.seed ?? defaultSeed(c.cluster.name),
    now: () => realClock.now(),
    // The relay from the config applied last (a reload may change the announced addresses).
    ...(c.bgp?.relay ? { relay: (owners: readonly (string | undefined)[]) => a.kernel.run(() => a.nft.apply(compileRelay(relayConfig, nodeView(relayConfig, opts.node), owners))) } : {}),
    apply: (change) =>
      a.kernel.run(async () => {
        o.run(ownedSetScript(change));
        if ('replace' in change) owned = new Set(change.replace);
        else {
          for (const m of change.remove) owned.delete(m);
          for (const m of change.add) owned.add(m);
        }
        onOwned([...owned]);
      }),
  });
  const host = new SharingHost({
    log: sharingLog,
    clock: realClock,
    service,
    addAddress: (ifname, cidr) => a.vrrpNet.addAddress(ifname, cidr),
    delAddress: (ifname, cidr) => a.vrrpNet.delAddress(ifname, cidr),
    joinMac: joinLinkMulticast,
    leaveMac: leaveLinkMulticast,
    apply: (script) => a.kernel.run(() => a.nft.apply(script)),
    replaceTable: (spec) => a.kernel.run(() => a.nftBatch().replaceTable(spec)),
    openGate: (script) => {
      o.run(script);
      return { close: () => o.close() };
    },
    ownedScript: (marks) => ownedSetScript({ replace: marks }),
    linksDown,
    handoverMs: 3 * (c.state_sync?.liveness ? c.state_sync.liveness.interval : 15),
    onConfig: (next) => void (relayConfig = next),
  });
  return { service, host };
}

/** A node, built and wired, not started. */
export interface AssembledNode {
  /** Starts the node and runs it until it has stopped: 0, or 1 when it could not start. */
  run(): Promise<number>;
  /** SIGTERM, SIGINT: a graceful handover (asked while starting: once it runs). A second one ends the wait for a ready peer. */
  stopSignal(sig: string): void;
  /** SIGHUP: reloads the config while running. */
  hup(): void;
}

/** The services every node runs, and the stream of cluster events with its consumers. */
function buildCore(opts: NodeOptions, loaded: LoadedConfig, a: Adapters, log: Logger, failpoint: Failpoint) {
  const c = loaded.config;
  const vrrp = new VrrpService({
    clock: realClock,
    log: log.child({ component: 'vrrp' }),
    net: a.vrrpNet,
    scripts: { check: async (path, timeoutMs) => (await probes.script.run({ service: 'vrrp-track', backend: hostname(), address: '', port: 0, family: 4, check: { script: { path, args: [] }, interval: timeoutMs + 50, timeout: timeoutMs, rise: 1, fall: 1 } }, timeoutMs)).ok },
    node: opts.node,
    cluster: c.cluster.name,
    failpoint,
  });
  // The cluster events: what the subsystems report, as one stream (fsm/cluster.ts).
  const events = new ClusterEvents({ clock: realClock, log: log.child({ component: 'cluster' }) });
  vrrp.onGroupState((group, state, info) => events.feed({ type: 'group', group, state, vips: info.vips, ...(info.hook ? { hook: info.hook } : {}) }));
  // Its consumers, one line each.
  events.subscribe(notifyHooks({ node: opts.node, cluster: c.cluster.name, clock: realClock, log: log.child({ component: 'vrrp' }) }));
  events.subscribe(logEvents(log.child({ component: 'cluster' })));
  const counted = eventCounts();
  events.subscribe(counted.subscriber);
  /** Other listeners of the services' availability (BGP). */
  const availability = new Set<(service: string, available: boolean) => void>();
  const balancer = new Balancer({
    log: log.child({ component: 'balancer' }),
    nft: a.nft,
    // Flows counted in a worker thread, off the loop that sends the adverts.
    conntrack: { ...createCtnetlinkConntrack(a.ctnl), serviceFlows: (s) => a.flowCounter.serviceFlows(s) },
    queue: a.kernel,
    onAvailability: (service, available) => {
      vrrp.setServiceAvailable(service, available);
      for (const f of availability) f(service, available);
    },
  });
  const health = new HealthChecker({
    clock: realClock,
    log: log.child({ component: 'health' }),
    probes,
    onChange: (ev) => void balancer.setHealth(ev.service, ev.backend, ev.up, ev.detail).catch((e: Error) => log.error({ err: e.message }, 'map update failed')),
  });
  return { vrrp, events, eventCounts: counted.counts, balancer, health, failpoint, availability };
}
type Core = ReturnType<typeof buildCore>;

/**
 * The links with shared addresses (a node that lost one, no carrier or down, would drop the
 * frames of its buckets that arrive there, unseen: it carries nothing until it is back) and
 * the VRRP links; on both, an unanswered neighbour probe is repeated after 100 ms.
 */
function nodeLinks(opts: NodeOptions, loaded: LoadedConfig, a: Adapters, log: Logger) {
  const c = loaded.config;
  const ifnames = nodeView(c, opts.node).interfaces;
  const shared = c.sharing ? Object.keys(c.sharing.addresses).map((r) => ifnames[r] ?? r) : [];
  const vrrpLinks = Object.values(c.vrrp?.groups ?? {}).flatMap((g) => Object.values(g.instances).map((i) => ifnames[i.interface] ?? i.interface));
  for (const ifname of new Set([...shared, ...vrrpLinks])) setNeighRetrans(ifname, NEIGH_RETRANS_MS, log);
  if (c.bgp?.relay && c.sharing) setLooseRpFilter(ifnames[c.bgp.relay] ?? c.bgp.relay, log);
  return { shared, down: () => shared.filter((i) => a.vrrpNet.linkUp(i) === false) };
}

/** What the sync and the liveness call back into: the node's readiness, sharing's check. */
interface SyncHooks {
  afterSync: () => void;
  shareCheck: () => void;
}

/** The state sync and the liveness (with a cluster key), wired to VRRP, sharing and the events. */
async function buildSync(opts: NodeOptions, loaded: LoadedConfig, a: Adapters, log: Logger, core: Core, sharing: ReturnType<typeof buildSharing>, hooks: SyncHooks) {
  const c = loaded.config;
  const { vrrp, events } = core;
  const sh = sharing?.service;
  const sync = await createStateSync(c, opts.node, loaded.file, {
    log: log.child({ component: 'sync' }),
    ct: a.ctnl,
    vrrp,
    poller: a.poller,
    afterSync: hooks.afterSync,
    // The end of a bulk sync (a resync after a shared link came back): the buckets at once.
    bulkSettled: hooks.shareCheck,
    // Sharing: every node speaks for the flows of its own buckets (and of those it just gave up).
    ...(sh ? { owns: (e: { mark?: number }) => sh.speaksFor(e.mark), sharing: true } : {}),
    onTable: (complete, why) => events.feed({ type: 'table', complete, progress: why }),
  });
  const liveness = await createLiveness(c, opts.node, loaded.file, vrrp, log.child({ component: 'liveness' }), {
    ...(sh ? { sharing: sh } : {}),
    onHeard: hooks.shareCheck,
    onPeer: (peer, state) => events.feed({ type: 'peer', peer, state }),
    // lib/failpoints.ts: the timing thread dies 200 BEAT rounds (3 s) after the liveness starts.
    ...(core.failpoint('liveness.thread') ? { dieAfterRounds: 200 } : {}),
  });
  if (liveness) sync.setLagSink(liveness.lag);
  if (liveness) vrrp.useLiveness({ checkAdvert: (ad, v, p) => liveness.checkAdvert(ad, v, p), onOwnChange: () => liveness.sendNow(), wantBeat: () => liveness.wantBeat() });
  // Active-standby: a group that leaves master leaves entries this node tracked itself,
  // which the sync never rewrites; they are made liberal now, so that a takeover later does
  // not find them with stale TCP windows (StateSyncService.loosenTable).
  if (!c.sharing) events.subscribe((e) => e.type === 'group_state' && e.from === 'master' && void sync.loosenTable(`group ${e.group} left master (${e.to})`));
  return { sync, liveness };
}

/** The node's daemon over its subsystems (services/node-daemon.ts). */
function buildDaemon(
  opts: NodeOptions,
  a: Adapters,
  log: Logger,
  core: Core,
  parts: { sync?: StateSyncService; liveness?: LivenessService; sharing: ReturnType<typeof buildSharing>; bgp?: BgpService; controlCounters: () => ControlCounters },
): NodeDaemon {
  const { events } = core;
  return new NodeDaemon(
    {
      log: log.child({ component: 'node' }),
      nft: a.nft,
      queue: a.kernel,
      balancer: core.balancer,
      health: core.health,
      vrrp: core.vrrp,
      ...(parts.sync ? { sync: parts.sync } : {}),
      readHost: readHostState,
      now: Date.now,
      uptimeMs: () => performance.now(),
      syncIdentity: (l) => syncIdentity(l, opts.node),
      readCounters: () => a.nftCounters.read(TABLE_FAMILY, TABLE_NAME),
      controlCounters: parts.controlCounters,
      livenessStatus: () => parts.liveness?.status(),
      onVrrpRunning: (running, configured) => events.feed({ type: 'vrrp_running', running, configured }),
      clusterReady: () => events.current().ready,
      cluster: () => {
        const st = events.current();
        return { role: { ready: st.ready, peers: { ...st.peers }, groups: { ...st.groups }, owned: st.owned.length, eventCounts: core.eventCounts() }, events: events.recent().slice(-50).map((e) => ('buckets' in e ? { ...e, buckets: e.buckets.length } : { ...e })) };
      },
      ...(parts.sharing ? { sharing: parts.sharing.host } : {}),
      ...(parts.bgp ? { bgp: parts.bgp } : {}),
      netlinkCounters: () => {
        const ct = a.ctnl.counters();
        return { ctnetlink: { requests: ct.requests, ...(ct.events ? { events: ct.events } : {}) }, rtnetlink: a.vrrpNet.counters() };
      },
    },
    opts.node,
  );
}

export async function assembleNode(opts: NodeOptions, loaded: LoadedConfig, log: Logger, failpoint: Failpoint): Promise<AssembledNode | { error: string; event: string }> {
  const c = loaded.config;
  const syncOn = !!(c.state_sync && c.cluster.key_file);
  if (c.state_sync && !c.cluster.key_file) log.warn({ event: 'sync_off' }, 'state_sync is configured but cluster.key_file is not: connection state is not replicated');
  const a = await openAdapters(log, syncOn);
  const core = buildCore(opts, loaded, a, log, failpoint);
  const { events } = core;
  const systemd = attachSystemd(events, log);
  const links = nodeLinks(opts, loaded, a, log);
  let sharing: ReturnType<typeof buildSharing>;
  try {
    sharing = buildSharing(loaded, opts, a, log, links.down, (marks) => events.feed({ type: 'buckets', owned: marks.map((m) => m - 1) }));
  } catch (e) {
    a.close();
    return { error: `cannot set up sharing: ${(e as Error).message}`, event: 'sharing_failed' };
  }
  let sync: StateSyncService | undefined;
  let liveness: LivenessService | undefined;
  let daemonRef: NodeDaemon | undefined;
  const share = sharing
    ? new ShareReadiness({ sharing: sharing.service, clock: realClock, log: log.child({ component: 'sharing' }), nodeReady: () => daemonRef?.readiness().ready ?? false, linksDown: links.down, sync: () => sync, liveness: () => liveness })
    : undefined;
  const shareCheck = () => {
    if (daemonRef) share?.check();
  };
  a.vrrpNet.onLinkChange((ifname, up) => {
    if (!links.shared.includes(ifname)) return;
    events.feed({ type: 'link', ifname, up });
    share?.linkChanged(ifname, up);
  });
  if (syncOn) {
    try {
      ({ sync, liveness } = await buildSync(opts, loaded, a, log, core, sharing, { afterSync: shareCheck, shareCheck }));
    } catch (e) {
      a.close();
      return { error: `cannot set up state sync: ${(e as Error).message}`, event: 'sync_failed' };
    }
  }
  let bgp: BgpService | undefined;
  try {
    bgp = buildBgp(loaded, opts.node, log, core, a.nftCounters);
  } catch (e) {
    a.close();
    return { error: `cannot set up BGP: ${(e as Error).message}`, event: 'bgp_failed' };
  }
  let control: ControlServer | undefined;
  const daemon = buildDaemon(opts, a, log, core, { ...(sync ? { sync } : {}), ...(liveness ? { liveness } : {}), sharing, ...(bgp ? { bgp } : {}), controlCounters: () => control!.counters() });
  daemonRef = daemon;
  // The moment the node first becomes ready (logged with its startup steps) is the event's;
  // and sharing looks again whenever readiness changes.
  core.events.subscribe((e) => {
    if (e.type !== 'ready') return;
    if (e.ready) daemon.checkReady();
    shareCheck();
  });
  // Readiness can also be lost (a node whose table is no longer complete): with sharing, looked
  // at each second (without it, nothing to look at: no timer).
  const readinessPoll = share ? setInterval(shareCheck, 1000) : undefined;
  readinessPoll?.unref();
  const release = () => {
    if (readinessPoll) clearInterval(readinessPoll);
    systemd?.close();
    a.close();
  };
  return nodeRunner({ opts, loaded, log, a, core, daemon, sync, liveness, linksDown: links.down, shareCheck, release, setControl: (cs) => (control = cs), systemd: systemd?.notify });
}

/** Start, run, reload and stop: the node's life, behind its control socket. */
function nodeRunner(o: {
  opts: NodeOptions;
  loaded: LoadedConfig;
  log: Logger;
  a: Adapters;
  core: Core;
  daemon: NodeDaemon;
  sync: StateSyncService | undefined;
  liveness: LivenessService | undefined;
  linksDown: () => string[];
  shareCheck: () => void;
  release: () => void;
  setControl: (c: ControlServer) => void;
  systemd: SystemdNotify | undefined;
}): AssembledNode {
  const { opts, log, daemon, liveness, release } = o;
  const { events } = o.core;
  // Once started, the control socket answers status (before: ERR_STARTING).
  let started = false;
  // Reloads, runtime commands, the start and the stop run one at a time, in order.
  const ops = new SerialQueue();
  const cfg = configOps(o, ops);
  const reload = cfg.reload;
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  let stopAsked: string | undefined;
  let stopped: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (stopped = resolve));
  let metricsServer: Server | undefined;
  const stop = (why: string, force: boolean) => {
    if (phase === 'stopping') {
      if (!daemon.skipStopWait()) log.warn({ event: 'stopping', why }, 'already stopping');
      return;
    }
    phase = 'stopping';
    log.info({ event: 'stopping', why, force }, 'stopping: handing over');
    // BGP's drain keeps the routes (tagged) through the "not ready" the stop is about to say.
    void daemon.beginDrain(force);
    events.feed({ type: 'stopping', why });
    // The peers hear it first, authenticated: the priority-0 adverts that follow are ours.
    liveness?.announceLeaving();
    void ops
      .run(() => daemon.stop({ force }))
      .finally(() => liveness?.stop())
      .catch((e: Error) => log.error({ err: e.message }, 'graceful stop incomplete'))
      .then(() => cfg.close())
      .then(() => control.close())
      .then(() => metricsServer?.close())
      .then(() => {
        release();
        log.info({ event: 'stopped' }, 'stopped');
        stopped(0);
      });
  };
  const control: ControlServer = controlServer({
    controlPath: opts.controlPath,
    node: opts.node,
    daemon,
    ops,
    started: () => started,
    reload,
    config: cfg.handlers,
    runtime: cfg.runtime,
    stop: (force) => {
      if (phase === 'starting') return false;
      if (phase === 'stopping' && force) daemon.skipStopWait();
      else stop(force ? 'fwlb stop --force' : 'fwlb stop', force);
      return true;
    },
    log: log.child({ component: 'control' }),
  });
  o.setControl(control);

  return {
    async run() {
      const r = await startNode(o, control, ops, () => (started = true));
      if (!r.ok) return 1;
      await cfg.start(r.restored ?? { doc: undefined, held: [] });
      metricsServer = r.metrics;
      phase = 'running';
      if (stopAsked) stop(stopAsked, false);
      return done;
    },
    stopSignal: (sig) => {
      if (phase === 'starting') stopAsked = sig;
      else stop(sig, false);
    },
    hup: () => {
      if (phase !== 'running') {
        log.warn({ event: 'sighup' }, phase === 'starting' ? 'SIGHUP while starting: ignored' : 'SIGHUP while stopping: ignored');
        return;
      }
      log.info({ event: 'sighup' }, 'SIGHUP: reloading the config');
      void reload();
    },
  };
}

/** Opens the control socket and starts the node; false (said and logged) when it cannot. */
async function startNode(o: Parameters<typeof nodeRunner>[0], control: ControlServer, ops: SerialQueue, onStarted: () => void): Promise<{ ok: boolean; metrics?: Server; restored?: RestoredRuntime }> {
  const { opts, loaded, log, a, daemon, sync, liveness, release } = o;
  const { vrrp, events } = o.core;
  let restored: RestoredRuntime | undefined;
  // The control socket first, so that a starting node can be asked where it stands.
  try {
    await control.listen();
  } catch (e) {
    log.error({ event: 'control_failed', err: (e as Error).message }, 'cannot open the control socket');
    process.stderr.write(withNextStep(`cannot open the control socket ${opts.controlPath}: ${(e as Error).message}`, 'is another node running with this socket? stop it, or give this one its own with --control PATH (its directory must exist and be writable)'));
    release();
    return { ok: false };
  }
  try {
    // The runtime changes kept on disk run inside the start, before VRRP (not through the
    // queue: the start holds it).
    const beforeVrrp = async () => void (restored = await replayRuntime(stateDirOf(opts), loaded.config.cluster.name, runtimeCommand(daemon), log.child({ component: 'config' })));
    await ops.run(() => daemon.start(loaded, { conntrackCount: () => a.ctnl.count(), beforeVrrp }));
    onStarted();
    events.feed({ type: 'started', vrrp: vrrp.isRunning(), sync: !!sync, sharedLinks: o.linksDown() });
    if (sync) events.feed({ type: 'table', complete: sync.synced(), progress: sync.syncProgress() });
    o.shareCheck();
    liveness?.start();
  } catch (e) {
    log.error({ event: 'start_failed', err: (e as Error).message }, 'cannot start');
    process.stderr.write(withNextStep((e as Error).message, 'fix what it names and start again; the log above says which step failed (root, or CAP_NET_ADMIN and CAP_NET_RAW, are needed)'));
    await daemon.stop({ force: true }).catch(() => undefined);
    await control.close();
    release();
    return { ok: false };
  }
  const metrics = opts.metrics ? serveMetrics(opts.metrics, () => daemon.status(), log) : undefined;
  log.info({ event: 'started', config: opts.configFile, control: opts.controlPath, metrics: opts.metrics }, 'fwlb node running');
  return { ok: true, ...(metrics ? { metrics } : {}), ...(restored ? { restored } : {}) };
}

/** A runtime change (backend command, maintenance) run on the node now. */
const runtimeCommand = (daemon: NodeDaemon) => async (c: RuntimeCommand) => (c.op === 'maintenance' ? daemon.maintenance(c.on) : daemon.backend(c));
const stateDirOf = (opts: { stateDir?: string | undefined; node: string }) => opts.stateDir ?? `/var/lib/fwlb/${opts.node}`;

/** The config distribution of a running node, wired to its queue, its liveness and its events. */
async function startConfigDist(o: Parameters<typeof nodeRunner>[0], ops: SerialQueue, reload: (next: LoadResult) => Promise<{ ok: true; changed: boolean } | { ok: false; error: Error }>, restored: RestoredRuntime): Promise<ConfigDistParts> {
  const { opts, loaded, log, liveness, daemon } = o;
  const run = runtimeCommand(daemon);
  const runCommand = (c: RuntimeCommand) => ops.run(() => run(c));
  const parts = await buildConfigDist({
    loaded,
    node: opts.node,
    configFile: opts.configFile,
    stateDir: stateDirOf(opts),
    log: log.child({ component: 'config' }),
    peerDown: (peer) => liveness?.status()?.peers.find((p) => p.peer === peer)?.state === 'down',
    serial: (f) => ops.run(f),
    reload,
    runCommand,
    restored,
  });
  o.core.events.subscribe((e) => e.type === 'peer_up' && parts.service.peerUp());
  daemon.setConfigStatus(() => ({ ...parts.service.status(), ...(parts.linkCounters() ? { link: parts.linkCounters()! } : {}), runtime: parts.runtime.status() }));
  return parts;
}

/**
 * Reloads and the config distribution (issue 24): `fwlb reload` (with --confirm), a pushed
 * config's reload, both told to systemd and the cluster events; the distribution started once
 * the node runs, its control handlers, its stop.
 */
function configOps(o: Parameters<typeof nodeRunner>[0], ops: SerialQueue) {
  const { opts, log, daemon } = o;
  const { events } = o.core;
  let parts: ConfigDistParts | undefined;
  const notified = async <R extends { ok: boolean; changed?: boolean; error?: string }>(f: () => Promise<R>): Promise<R> => {
    o.systemd?.reloadStart(opts.configFile);
    const r = await f();
    events.feed(r.ok ? { type: 'config', ok: true, digest: daemon.configDigest(), changed: r.changed ?? false } : { type: 'config', ok: false, reason: r.error ?? 'failed' });
    o.systemd?.reloadEnd(r.ok ? `reloaded, ruleset ${r.changed ? 'updated' : 'unchanged'}` : `reload refused, the running config stays: ${r.error ?? 'failed'}`, events.current());
    return r;
  };
  const reload = (confirmMs?: number) =>
    ops.run(async () => {
      const before = parts?.service.files();
      // The file read and parsed once: its bytes are what the distribution hashes.
      let files: BundleFile[] | undefined;
      const load = async (file: string): Promise<LoadResult> => {
        const r = await readConfigFiles(file, false);
        files = r.ok ? r.files : undefined;
        return r.ok ? { ok: true, value: r.loaded } : r;
      };
      const r = await notified(() => reloadFile(daemon, opts.configFile, log, load));
      if (r.ok && parts) {
        await parts.runtime.prune((svc, b) => o.core.balancer.holdsRuntime(svc, b));
        if (files) parts.service.reloaded(files);
        if (confirmMs !== undefined && before) parts.service.armLocalConfirm(confirmMs, before);
      }
      return r;
    });
  /** A pushed config's contents, reloaded as `fwlb reload` does (inside the node's queue). */
  const reloadPushed = async (next: LoadResult): Promise<{ ok: true; changed: boolean } | { ok: false; error: Error }> => {
    const r = await notified(async () => {
      const t0 = performance.now();
      const x = await daemon.reload(next);
      daemon.noteReloadTime(Math.round(performance.now() - t0));
      return x.ok ? { ok: true as const, changed: x.changed } : { ok: false as const, error: x.error.message };
    });
    if (r.ok) await parts?.runtime.prune((svc, b) => o.core.balancer.holdsRuntime(svc, b));
    return r.ok ? r : { ok: false, error: new Error(r.error) };
  };
  const running = () => {
    if (!parts) throw new FwlbError('ERR_STARTING', 'the node is still starting');
    if (!parts.on) throw new FwlbError('ERR_CONFIG_PUSH', 'this cluster has no state sync with a cluster key (state_sync and cluster.key_file): a config pushed or confirmed travels over the sync link, signed with that key');
    return parts.service;
  };
  return {
    reload,
    handlers: {
      push: async (file: string, confirmMs?: number) => {
        const svc = running();
        const r = await readConfigFiles(file);
        if (!r.ok) throw new FwlbError('ERR_CONFIG_PUSH', r.error.message);
        return svc.push(r.files, confirmMs);
      },
      confirm: () => running().confirmAll(),
    },
    runtime: () => {
      const p = parts;
      if (!p) return undefined;
      return {
        local: (c: RuntimeCommand) => p.runtime.recordLocal(c),
        cluster: async (c: RuntimeCommand) => {
          if (!p.on) throw new FwlbError('ERR_CONFIG_PUSH', '--cluster: this cluster has no state sync with a cluster key (state_sync and cluster.key_file): a runtime change travels over the sync link, signed with that key');
          return p.runtime.clusterChange(c);
        },
      };
    },
    start: async (restored: RestoredRuntime) => {
      try {
        parts = await startConfigDist(o, ops, reloadPushed, restored);
      } catch (e) {
        log.error({ event: 'config_dist_failed', err: (e as Error).message }, `config distribution not started: ${(e as Error).message}`);
      }
    },
    close: () => parts?.close(),
  };
}
