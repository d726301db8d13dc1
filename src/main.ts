/**
 * `fwlb run`: the one place that creates the logger, clock, adapters and sockets,
 * wires them, and handles signals. SIGHUP reloads the config (a bad new config
 * keeps the old one running); SIGTERM and SIGINT exit cleanly. The ruleset stays
 * in the kernel on exit: a firewall that opens up when its daemon stops is no firewall.
 */
import type { Logger } from 'pino';
import { createLogger } from './lib/logger.js';
import { createNft } from './adapters/nft.js';
import { Ctnetlink, createCtnetlinkConntrack } from './adapters/netlink/ctnetlink.js';
import { NftCounters } from './adapters/netlink/nft-counters.js';
import { readUdpDrops } from './adapters/udp-drops.js';
import { UdpSocketV4 } from './adapters/udp-socket.js';
import { FlowCounter } from './adapters/flows/counter.js';
import { LivenessService } from './services/liveness.js';
import { LivenessWorker } from './adapters/liveness/channel.js';
import { livenessPort } from './config/schema.js';
import { TABLE_FAMILY, TABLE_NAME, beatRoles } from './compiler/ruleset.js';
import { readHostState } from './adapters/host.js';
import { probes } from './adapters/health/index.js';
import { loadConfigFile, type LoadedConfig, type LoadResult } from './config/load.js';
import { ConfigError } from './config/issues.js';
import { decodeBackendCommand } from './control/backend-args.js';
import { ControlServer } from './control/server.js';
import { FwlbError } from './lib/errors.js';
import { realClock } from './lib/clock.js';
import { parseFailpoints, type Failpoint } from './lib/failpoints.js';
import { Balancer } from './services/balancer.js';
import { HealthChecker } from './services/health-checker.js';
import { SerialQueue } from './lib/serial-queue.js';
import { NodeDaemon, type ControlCounters } from './services/node-daemon.js';
import { VrrpService } from './services/vrrp.js';
import { Poller } from './adapters/netlink/poller.js';
import { createVrrpNet } from './adapters/vrrp-net.js';
import { hostname, setPriority } from 'node:os';
import { createHash, randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { deriveSyncKey, syncKeyProblem } from './codec/sync/message.js';
import { nodeView } from './config/node.js';
import type { Config } from './config/schema.js';
import { bareAddress } from './lib/ip.js';
import { StateSyncService } from './services/state-sync.js';
import { createServer, type Server } from 'node:http';
/** prom-client is loaded at the first scrape, not at every start. */
const metricsModule = () => import('./control/metrics.js');
const renderMetrics = async (st: Parameters<Awaited<ReturnType<typeof metricsModule>>['renderMetrics']>[0]) => (await metricsModule()).renderMetrics(st);
import { parseAddressPort } from './lib/ip.js';
import { SharingService } from './services/sharing.js';
import { SharingHost } from './services/sharing-host.js';
import { OwnedNft } from './adapters/nft-owned.js';
import { joinLinkMulticast, leaveLinkMulticast } from './adapters/link-multicast.js';
import { ownedSetScript } from './compiler/map-update.js';
import { defaultSeed } from './fsm/sharing.js';

export interface RunOptions {
  configFile: string;
  node: string;
  controlPath: string;
  logLevel: string;
  /** "ADDRESS:PORT" to serve /metrics over HTTP. */
  metrics?: string;
}

export { createLogger };

/** Scheduling priority of `fwlb run`: adverts must go out on time even when the CPU is saturated. */
const RUN_NICE = -10;

export async function runNode(opts: RunOptions): Promise<number> {
  const log = createLogger(opts.logLevel).child({ node: opts.node });
  // Signals first: a SIGHUP must never kill a node that may already hold VIPs, and a stop
  // asked for while starting waits until the node can hand over.
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  let stopAsked: string | undefined;
  let onStop: (sig: string) => void = (sig) => (stopAsked = sig);
  let onHup: () => void = () => log.warn({ event: 'sighup' }, 'SIGHUP while starting: ignored');
  process.on('SIGHUP', () => onHup());
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  try {
    setPriority(RUN_NICE);
  } catch (e) {
    log.warn({ err: (e as Error).message }, `cannot raise the scheduling priority (nice ${RUN_NICE})`);
  }
  const loaded = await loadConfigFile(opts.configFile);
  if (!loaded.ok) {
    log.error({ event: 'config_invalid', issues: loaded.error.issues }, loaded.error.message);
    process.stderr.write(loaded.error.message + '\n');
    return 1;
  }
  // Steps tests make fail on purpose (lib/failpoints.ts); none unless FWLB_FAILPOINTS says so.
  let failpoint: Failpoint;
  try {
    failpoint = parseFailpoints(process.env.FWLB_FAILPOINTS);
  } catch (e) {
    process.stderr.write((e as Error).message + '\n');
    return 1;
  }
  if (process.env.FWLB_FAILPOINTS) log.warn({ event: 'failpoints', failpoints: process.env.FWLB_FAILPOINTS }, 'failpoints armed (FWLB_FAILPOINTS): named steps will fail on purpose');
  const nft = createNft();
  const kernel = new SerialQueue();
  const poller = new Poller();
  const vrrpNet = await createVrrpNet({ poller, log: log.child({ component: 'netlink' }) });
  const c = loaded.value.config;
  const syncOn = !!(c.state_sync && c.cluster.key_file);
  if (c.state_sync && !c.cluster.key_file) log.warn({ event: 'sync_off' }, 'state_sync is configured but cluster.key_file is not: connection state is not replicated');
  // 32 MiB for the events: a master opening 40,000 connections a second fills 8 MiB within a
  // fifth of a second of a stalled loop (GC, a burst of control requests), and every lost
  // event costs a push of the whole table to the peers.
  const ctnl = Ctnetlink.open({ poller, skipSelfEvents: true, eventBuffer: 32 * 1024 * 1024, ...(syncOn ? { events: ['new', 'update', 'destroy'] as const } : {}) });
  const nftCounters = NftCounters.open(poller);
  const flowCounter = new FlowCounter();
  const vrrp = new VrrpService({
    clock: realClock,
    log: log.child({ component: 'vrrp' }),
    net: vrrpNet,
    scripts: { check: async (path, timeoutMs) => (await probes.script.run({ service: 'vrrp-track', backend: hostname(), address: '', port: 0, family: 4, check: { script: { path, args: [] }, interval: timeoutMs + 50, timeout: timeoutMs, rise: 1, fall: 1 } }, timeoutMs)).ok },
    node: opts.node,
    cluster: loaded.value.config.cluster.name,
    failpoint,
  });
  const balancer = new Balancer({
    log: log.child({ component: 'balancer' }),
    nft,
    // Flows counted in a worker thread, off the loop that sends the adverts.
    conntrack: { ...createCtnetlinkConntrack(ctnl), serviceFlows: (s) => flowCounter.serviceFlows(s) },
    queue: kernel,
    onAvailability: (service, available) => vrrp.setServiceAvailable(service, available),
  });
  const health = new HealthChecker({
    clock: realClock,
    log: log.child({ component: 'health' }),
    probes,
    onChange: (ev) => void balancer.setHealth(ev.service, ev.backend, ev.up, ev.detail).catch((e: Error) => log.error({ err: e.message }, 'map update failed')),
  });
  // Active-active: the buckets this node owns, written into the kernel by element through
  // libnftables in this process (no nft spawned when a peer comes or goes), in the kernel queue.
  let owned: OwnedNft | undefined;
  let sharing: SharingService | undefined;
  let sharingHost: SharingHost | undefined;
  if (c.sharing) {
    try {
      owned = OwnedNft.open();
    } catch (e) {
      log.error({ event: 'sharing_failed', err: (e as Error).message }, 'cannot set up sharing');
      process.stderr.write((e as Error).message + '\n');
      return 1;
    }
    const o = owned;
    const sharingLog = log.child({ component: 'sharing' });
    sharing = new SharingService({
      log: sharingLog,
      self: opts.node,
      buckets: c.sharing.buckets,
      seed: c.sharing.seed ?? defaultSeed(c.cluster.name),
      apply: (change) => kernel.run(async () => o.run(ownedSetScript(change))),
    });
    sharingHost = new SharingHost({
      log: sharingLog,
      clock: realClock,
      service: sharing,
      addAddress: (ifname, cidr) => vrrpNet.addAddress(ifname, cidr),
      delAddress: (ifname, cidr) => vrrpNet.delAddress(ifname, cidr),
      joinMac: joinLinkMulticast,
      leaveMac: leaveLinkMulticast,
      apply: (script) => kernel.run(() => nft.apply(script)),
      openGate: (script) => {
        o.run(script);
        return { close: () => o.close() };
      },
      ownedScript: (marks) => ownedSetScript({ replace: marks }),
      linksDown: () => linksDown(),
      handoverMs: 3 * (c.state_sync?.liveness ? c.state_sync.liveness.interval : 15),
    });
  }
  // The links with shared addresses: a node that lost one (no carrier, or down) would drop
  // the frames of its buckets that arrive there, unseen: it carries nothing until it is back.
  const ifnames = nodeView(c, opts.node).interfaces;
  const sharedLinks = c.sharing ? Object.keys(c.sharing.addresses).map((r) => ifnames[r] ?? r) : [];
  // A packet of our buckets forwarded in the moment between a shared link's carrier loss and
  // our giving the buckets up leaves its neighbour entry INCOMPLETE, its probe lost; the
  // kernel probes again only after retrans_time (1 s by default), and every packet to that
  // neighbour waits in its queue meanwhile, after the link is back and the buckets ours
  // again: a 0.5-1 s stall of every flow to that server (issue 20). On the shared links an
  // unanswered probe is repeated after 100 ms instead.
  // The same on the links of the VRRP instances: a master whose link went down and up
  // (a fault) left its neighbours there INCOMPLETE the same way, and when it took over again
  // the sessions waited a second for the next probe (issue 20: seed 40629).
  const vrrpLinks = Object.values(c.vrrp?.groups ?? {}).flatMap((g) => Object.values(g.instances).map((i) => ifnames[i.interface] ?? i.interface));
  for (const ifname of new Set([...sharedLinks, ...vrrpLinks])) setNeighRetrans(ifname, SHARED_NEIGH_RETRANS_MS, log);
  const linksDown = () => sharedLinks.filter((i) => vrrpNet.linkUp(i) === false);
  /** A shared link came back: the table is pulled again before the buckets are taken. */
  let resyncAsked = false;
  /** The readiness last given to sharing (a BEAT says it only once the kernel holds the buckets). */
  let shareReady = false;
  /** Until when a node that is ready waits for the first BEATs of the peers it syncs with. */
  let heardWaitUntil: number | undefined;
  const HEARD_WAIT_MS = 1000;
  /** The node holds the cluster's state and every shared link is up: with sharing, it takes its buckets and says so in its BEATs. */
  const shareReadiness = () => {
    if (!sharing || !daemonRef) return;
    if (resyncAsked && !sync?.bulkInProgress()) resyncAsked = false;
    // A node just started knows its peers from the sync before their BEATs say which of them
    // carry buckets: taking its share then means taking every bucket for a moment, the ones
    // the others carry included. It waits for a BEAT of every peer it syncs with (at most
    // HEARD_WAIT_MS: a peer whose BEATs never come is left out).
    const unheard = liveness && sync ? sync.livePeers().filter((p) => !liveness!.heard(p)) : [];
    const nodeReady = daemonRef.readiness().ready && linksDown().length === 0 && !resyncAsked;
    if (nodeReady && unheard.length > 0 && heardWaitUntil === undefined) {
      heardWaitUntil = realClock.now() + HEARD_WAIT_MS;
      realClock.after(HEARD_WAIT_MS + 1, () => shareReadiness());
    }
    const waitingToHear = unheard.length > 0 && heardWaitUntil !== undefined && realClock.now() < heardWaitUntil;
    const ready = nodeReady && !waitingToHear;
    shareReady = ready;
    sharing.setReady(ready);
    if (!ready) {
      liveness?.setReady(false);
      return;
    }
    // Our kernel owns our buckets before our BEATs say so: the peers give them up when they
    // hear it, and a bucket nobody owns meanwhile drops its packets (a TCP retransmission
    // later: a stall of 200 ms or more for the flows in it).
    const s = sharing;
    void s.settled().then(() => {
      if (shareReady) liveness?.setReady(true);
    });
  };
  if (c.sharing) {
    vrrpNet.onLinkChange((ifname, up) => {
      if (!sharedLinks.includes(ifname)) return;
      log.warn({ event: 'sharing_link', ifname, up }, up ? `sharing: ${ifname} is up again: taking the table again before the buckets` : `sharing: ${ifname} is down: this node gives up its buckets until it is back`);
      // Cut off, the kernel saw one direction of its flows (or none): their entries are
      // stale (TCP windows). The whole table again from a peer first, then the buckets.
      if (up && sync) {
        sync.resync(`${ifname} is up again`);
        resyncAsked = true;
      }
      shareReadiness();
    });
  }
  let sync: StateSyncService | undefined;
  let liveness: LivenessService | undefined;
  if (syncOn) {
    try {
      const sh = sharing;
      sync = await createStateSync(c, opts, loaded.value.file, {
        log: log.child({ component: 'sync' }),
        ct: ctnl,
        vrrp,
        poller,
        afterSync: () => {
          daemonRef?.checkReady();
          shareReadiness();
        },
        // The end of a bulk sync (a resync after a shared link came back): the buckets at once.
        bulkSettled: () => shareReadiness(),
        // Sharing: every node speaks for the flows of its own buckets.
        ...(sh ? { owns: (e: { mark?: number }) => sh.ownsMark(e.mark) } : {}),
      });
      liveness = await createLiveness(c, opts, loaded.value.file, vrrp, log.child({ component: 'liveness' }), sharing, () => shareReadiness());
      const l = liveness;
      if (l) vrrp.useLiveness({ checkAdvert: (a, v, p) => l.checkAdvert(a, v, p), onOwnChange: () => l.sendNow() });
      // Active-standby: a group that leaves master leaves entries this node tracked itself,
      // which the sync never rewrites; they are made liberal now, so that a takeover later
      // does not find them with stale TCP windows (StateSyncService.loosenTable).
      const sy = sync;
      if (!c.sharing) {
        const mastered = new Set<string>();
        vrrp.onGroupState((group, state) => {
          if (state === 'master') mastered.add(group);
          else if (mastered.delete(group)) void sy.loosenTable(`group ${group} left master (${state})`);
        });
      }
    } catch (e) {
      log.error({ event: 'sync_failed', err: (e as Error).message }, 'cannot set up state sync');
      process.stderr.write((e as Error).message + '\n');
      owned?.close();
      flowCounter.close();
      nftCounters.close();
      ctnl.close();
      vrrpNet.close();
      poller.close();
      return 1;
    }
  }
  let daemonRef: NodeDaemon | undefined;
  const daemon = new NodeDaemon(
    {
      log: log.child({ component: 'node' }),
      nft,
      queue: kernel,
      balancer,
      health,
      vrrp,
      ...(sync ? { sync } : {}),
      readHost: readHostState,
      now: Date.now,
      uptimeMs: () => performance.now(),
      syncIdentity: (l) => syncIdentity(l, opts.node),
      readCounters: () => nftCounters.read(TABLE_FAMILY, TABLE_NAME),
      controlCounters: (): ControlCounters => control.counters(),
      livenessStatus: () => liveness?.status(),
      ...(sharingHost ? { sharing: sharingHost } : {}),
      netlinkCounters: () => {
        const ct = ctnl.counters();
        return { ctnetlink: { requests: ct.requests, ...(ct.events ? { events: ct.events } : {}) }, rtnetlink: vrrpNet.counters() };
      },
    },
    opts.node,
  );
  daemonRef = daemon;
  // Readiness can also be lost (a node whose table is no longer complete): looked at each second.
  const readinessPoll = setInterval(shareReadiness, 1000);
  readinessPoll.unref();
  const release = () => {
    clearInterval(readinessPoll);
    owned?.close();
    flowCounter.close();
    nftCounters.close();
    ctnl.close();
    vrrpNet.close();
    poller.close();
  };

  // Reloads, runtime commands, the start and the stop run one at a time, in order.
  const ops = new SerialQueue();
  const reload = () =>
    ops.run(async () => {
      const t0 = performance.now();
      // The loader reports every problem as a config error; should it throw anyway, that is
      // a failed reload like any other (counted, logged), never an unhandled rejection.
      const next = await loadConfigFile(opts.configFile).catch((e: Error): LoadResult => ({ ok: false, error: new ConfigError(opts.configFile, [{ path: [], message: `cannot load the config: ${e.message}` }]) }));
      const r = await daemon.reload(next);
      // From reading the file to the kernel holding the result.
      const tookMs = Math.round(performance.now() - t0);
      daemon.noteReloadTime(tookMs);
      log.info({ event: 'reload_done', ok: r.ok, tookMs }, `reload took ${tookMs} ms`);
      return r.ok ? { ok: true, changed: r.changed } : { ok: false, error: r.error.message };
    });
  let started = false;
  let stopNow: ((force: boolean) => void) | undefined;
  const control = new ControlServer(
    opts.controlPath,
    {
      // A starting node has no full status yet: it says so (ERR_STARTING, with its readiness).
      status: () => {
        if (!started) throw new FwlbError('ERR_STARTING', `node ${opts.node} is not ready: ${daemon.readiness().reason}`);
        return daemon.status();
      },
      // Answered at once, starting or not: `fwlb status --wait-ready` polls it.
      ready: () => daemon.readiness(),
      metrics: async () => {
        if (!started) throw new FwlbError('ERR_STARTING', `node ${opts.node} is ${daemon.readiness().reason}`);
        return renderMetrics(await daemon.status());
      },
      reload: () => reload(),
      maintenance: (args) => {
        if (typeof args.on !== 'boolean') throw new FwlbError('ERR_BAD_REQUEST', 'on must be true or false');
        const on = args.on;
        return ops.run(() => daemon.maintenance(on));
      },
      backend: (args) => {
        const c = decodeBackendCommand(args);
        if (!c.ok) throw new FwlbError('ERR_BAD_REQUEST', c.reason);
        return ops.run(() => daemon.backend(c.value));
      },
      stop: (args) => {
        if (args.force !== undefined && typeof args.force !== 'boolean') throw new FwlbError('ERR_BAD_REQUEST', 'force must be true or false');
        if (!stopNow) throw new FwlbError('ERR_STARTING', 'the node is still starting; stop it when it runs (or send SIGTERM)');
        stopNow(args.force === true);
        return { stopping: true, force: args.force === true };
      },
    },
    log.child({ component: 'control' }),
  );
  // The control socket first, so that a starting node can be asked where it stands.
  try {
    await control.listen();
  } catch (e) {
    log.error({ event: 'control_failed', err: (e as Error).message }, 'cannot open the control socket');
    process.stderr.write(`cannot open the control socket ${opts.controlPath}: ${(e as Error).message}\n`);
    release();
    return 1;
  }
  try {
    await ops.run(() => daemon.start(loaded.value, { conntrackCount: () => ctnl.count() }));
    started = true;
    shareReadiness();
    liveness?.start();
  } catch (e) {
    log.error({ event: 'start_failed', err: (e as Error).message }, 'cannot start');
    process.stderr.write((e as Error).message + '\n');
    await daemon.stop({ force: true }).catch(() => undefined);
    await control.close();
    release();
    return 1;
  }
  let metricsServer: Server | undefined;
  if (opts.metrics) {
    const at = parseAddressPort(opts.metrics);
    if (!at?.port) {
      log.error({ metrics: opts.metrics }, '--metrics takes ADDRESS:PORT');
    } else {
      metricsServer = createServer((req, res) => {
        if (req.url !== '/metrics') {
          res.writeHead(404).end();
          return;
        }
        Promise.all([metricsModule(), daemon.status()]).then(
          async ([m, st]) => res.writeHead(200, { 'content-type': m.METRICS_CONTENT_TYPE }).end(await m.renderMetrics(st)),
          (e: Error) => res.writeHead(500).end(e.message),
        );
      });
      metricsServer.on('error', (e) => log.error({ err: e.message }, 'metrics listener failed'));
      metricsServer.listen(at.port, at.address);
    }
  }
  log.info({ event: 'started', config: opts.configFile, control: opts.controlPath, metrics: opts.metrics }, 'fwlb node running');

  return new Promise<number>((resolve) => {
    phase = 'running';
    onHup = () => {
      if (phase !== 'running') return;
      log.info({ event: 'sighup' }, 'SIGHUP: reloading the config');
      void reload();
    };
    // SIGTERM and SIGINT alike: a graceful handover, after whatever operation is under way.
    // A second one while the stop waits for a ready peer ends that wait (as `fwlb stop --force`).
    const stop = (why: string, force: boolean) => {
      if (phase === 'stopping') {
        if (!daemon.skipStopWait()) log.warn({ event: 'stopping', why }, 'already stopping');
        return;
      }
      phase = 'stopping';
      log.info({ event: 'stopping', why, force }, 'stopping: handing over');
      // The peers hear it first, authenticated: the priority-0 adverts that follow are ours.
      liveness?.announceLeaving();
      void ops
        .run(() => daemon.stop({ force }))
        .finally(() => liveness?.stop())
        .catch((e: Error) => log.error({ err: e.message }, 'graceful stop incomplete'))
        .then(() => control.close())
        .then(() => metricsServer?.close())
        .then(() => {
          release();
          log.info({ event: 'stopped' }, 'stopped');
          resolve(0);
        });
    };
    onStop = (sig) => stop(sig, false);
    stopNow = (force) => {
      if (phase === 'stopping' && force) daemon.skipStopWait();
      else stop(force ? 'fwlb stop --force' : 'fwlb stop', force);
    };
    if (stopAsked) onStop(stopAsked);
  });
}

/** The cluster key, read and checked (a clear error naming the file otherwise). */
async function readSyncKey(c: Config, configFile: string): Promise<Buffer> {
  const keyPath = resolvePath(dirname(resolvePath(configFile)), c.cluster.key_file!);
  let keyBytes: Buffer;
  try {
    keyBytes = await readFile(keyPath);
  } catch (e) {
    throw new FwlbError('ERR_SYNC_KEY', `cluster.key_file: cannot read ${keyPath}: ${(e as Error).message}`);
  }
  const problem = syncKeyProblem(keyBytes);
  if (problem) throw new FwlbError('ERR_SYNC_KEY', `cluster.key_file ${keyPath}: ${problem}`);
  return keyBytes;
}

/**
 * What of a config the running state sync is built from: on or off, the interface, port,
 * addresses of this node and its peers, and the key itself. A reload that changes it is
 * refused (the sync's socket and key are not rebuilt in place); one whose key file cannot
 * be read is refused too, so that the next restart does not fail. `stop_wait` and the
 * start-up waits are not part of it: they are read when they are used.
 */
async function syncIdentity(loaded: LoadedConfig, node: string): Promise<string> {
  const c = loaded.config;
  if (!c.state_sync || !c.cluster.key_file) return 'off';
  const key = await readSyncKey(c, loaded.file);
  const view = nodeView(c, node);
  const role = c.state_sync.interface;
  return JSON.stringify({
    interface: view.interfaces[role] ?? role,
    port: c.state_sync.port,
    self: view.addresses[role] ?? null,
    peers: view.peers.map((p) => [p.name, p.addresses[role] ?? null]),
    nodes: Object.keys(c.nodes),
    key: createHash('sha256').update(key).digest('hex'),
  });
}

/** The state sync of this node: the cluster key, its id and the peers' sync addresses, a UDP socket. */
async function createStateSync(
  c: Config,
  opts: RunOptions,
  configFile: string,
  deps: { log: Logger; ct: Ctnetlink; vrrp: VrrpService; poller: Poller; afterSync: () => void; bulkSettled?: () => void; owns?: (e: { mark?: number }) => boolean },
): Promise<StateSyncService> {
  const ss = c.state_sync!;
  const keyBytes = await readSyncKey(c, configFile);
  const names = Object.keys(c.nodes);
  const view = nodeView(c, opts.node);
  const selfAddress = bareAddress(view.addresses[ss.interface] ?? '');
  const peers = view.peers
    .filter((p) => p.addresses[ss.interface])
    .map((p) => ({ name: p.name, id: names.indexOf(p.name), address: p.addresses[ss.interface]! }));
  // Until the table is complete, this node takes no VIP from a live master (it holds the sessions).
  deps.vrrp.setPreemptHold(true, 'the state sync has not completed the connection table yet');
  return new StateSyncService({
    clock: realClock,
    log: deps.log,
    key: deriveSyncKey(keyBytes),
    selfId: names.indexOf(opts.node),
    epoch: randomInt(1, 2 ** 32 - 1),
    peers,
    ct: deps.ct,
    transport: (onDatagram) => {
      // recvmmsg through koffi: a flood at the port is read and dropped at a microsecond a
      // datagram, so the peer's own datagrams are not lost among it (src/adapters/udp-socket.ts).
      const sock = UdpSocketV4.open({ poller: deps.poller, address: selfAddress, port: ss.port, onDatagram });
      // The kernel's drops on a full receive buffer (a flood, a stalled loop), sampled each
      // second: counted in status, and logged once a minute while they grow.
      const base = readUdpDrops(ss.port) ?? 0;
      let drops: number | undefined = 0;
      let loggedAt = -Infinity;
      let loggedDrops = 0;
      const sampler = setInterval(() => {
        const now = readUdpDrops(ss.port);
        drops = now === undefined ? undefined : Math.max(0, now - base);
        if (drops !== undefined && drops > loggedDrops && performance.now() - loggedAt >= 60_000) {
          deps.log.warn({ event: 'sync_socket_drops', drops, since: drops - loggedDrops }, `the kernel dropped ${drops - loggedDrops} state sync datagrams on a full receive buffer`);
          loggedAt = performance.now();
          loggedDrops = drops;
        }
      }, 1000);
      sampler.unref();
      return {
        send: (b, address) => sock.send(b, address, ss.port),
        close: () => {
          clearInterval(sampler);
          sock.close();
        },
        receiveDrops: () => drops,
      };
    },
    bulk: { noPeerTimeoutMs: ss.wait_for_peer, noPeerTimeoutEmptyMs: ss.wait_for_peer_empty },
    // Active-standby: the master owns every entry (active-active will decide per flow).
    owns: deps.owns ?? (() => !c.vrrp || Object.keys(c.vrrp.groups).length === 0 || deps.vrrp.isMaster()),
    ...(deps.bulkSettled ? { bulkSettled: deps.bulkSettled } : {}),
    demote: (on, why) => {
      deps.vrrp.setDemoted(on, why);
      if (!on) deps.afterSync();
    },
    tableComplete: (complete, why) => deps.vrrp.setPreemptHold(!complete, why),
    peerAliveElsewhere: () => deps.vrrp.masterHeard(),
  });
}

/** Neighbour probe interval on a shared link or a VRRP instance's link (see runNode). */
const SHARED_NEIGH_RETRANS_MS = 100;

/** Sets net.ipv4.neigh.IFNAME.retrans_time_ms in this network namespace; a failure is logged, never fatal. */
function setNeighRetrans(ifname: string, ms: number, log: Logger): void {
  const path = `/proc/sys/net/ipv4/neigh/${ifname}/retrans_time_ms`;
  try {
    const was = readFileSync(path, 'utf8').trim();
    if (Number(was) <= ms) return;
    writeFileSync(path, String(ms));
    log.info({ event: 'neigh_retrans', ifname, ms, was: Number(was) }, `ARP probes on ${ifname} repeated after ${ms} ms (was ${was} ms), so a neighbour left unresolved by a carrier loss is resolved at once when it is back`);
  } catch (e) {
    log.warn({ event: 'neigh_retrans_failed', ifname, err: (e as Error).message }, `cannot set ${path}: a neighbour left unresolved by a carrier loss may stall its flows for up to the kernel's probe interval`);
  }
}

/** Liveness over the sync link (state_sync.liveness), or undefined when it is off. */
async function createLiveness(c: Config, opts: RunOptions, configFile: string, vrrp: VrrpService, log: Logger, sharing?: SharingService, onHeard?: () => void): Promise<LivenessService | undefined> {
  const ss = c.state_sync;
  const l = ss?.liveness;
  if (!ss || !l) return undefined;
  const view = nodeView(c, opts.node);
  const names = Object.keys(c.nodes);
  const peers = view.peers.filter((p) => p.addresses[ss.interface]);
  // The sync link, and with sharing every link with shared addresses (ruleset.ts beatRoles).
  const roles = [ss.interface, ...beatRoles(c).filter((r) => view.addresses[r])];
  const channel = new LivenessWorker({
    selfId: names.indexOf(opts.node),
    links: roles.map((r) => bareAddress(view.addresses[r]!)),
    port: livenessPort(ss.port),
    key: deriveSyncKey(await readSyncKey(c, configFile)),
    intervalMs: l.interval,
    multiplier: l.multiplier,
    // A main thread hung for three adverts' time is a dead node: its BEATs stop.
    mainStallMs: 3 * (c.vrrp?.advert_interval ?? 100),
    peers: peers.map((p) => ({ name: p.name, id: names.indexOf(p.name), addresses: roles.map((r) => (p.addresses[r] ? bareAddress(p.addresses[r]) : null)) })),
  });
  return new LivenessService({
    clock: realClock,
    log,
    intervalMs: l.interval,
    multiplier: l.multiplier,
    peers: peers.map((p) => ({ name: p.name, addresses: Object.values(p.addresses).map((a) => bareAddress(a)) })),
    channel,
    vrrp,
    ...(sharing ? { sharing } : {}),
    ...(onHeard ? { onHeard } : {}),
  });
}
