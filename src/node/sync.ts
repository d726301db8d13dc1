/**
 * The node's state sync and liveness, built from the config: the cluster key (read and
 * checked), the sync's identity (what a reload may not change), the StateSyncService with its
 * transport and the VRRP hooks it drives, and the liveness over the sync link (and, with
 * sharing, every link with shared addresses).
 */
import type { Logger } from 'pino';
import { createHash, randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { deriveSyncKey, syncKeyProblem } from '../codec/sync/message.js';
import { beatRoles } from '../compiler/ruleset.js';
import type { LoadedConfig } from '../config/load.js';
import { nodeView } from '../config/node.js';
import { livenessPort, type Config } from '../config/schema.js';
import { FwlbError } from '../lib/errors.js';
import { realClock } from '../lib/clock.js';
import { bareAddress } from '../lib/ip.js';
import type { Ctnetlink } from '../adapters/netlink/ctnetlink.js';
import type { Poller } from '../adapters/netlink/poller.js';
import { LivenessWorker } from '../adapters/liveness/channel.js';
import { openSyncTransport } from '../adapters/sync-transport.js';
import { LivenessService } from '../services/liveness.js';
import type { SharingService } from '../services/sharing.js';
import { StateSyncService } from '../services/state-sync.js';
import type { VrrpService } from '../services/vrrp.js';

/** The cluster key, read and checked (a clear error naming the file otherwise). */
export async function readSyncKey(c: Config, configFile: string): Promise<Buffer> {
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
export async function syncIdentity(loaded: LoadedConfig, node: string): Promise<string> {
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
export async function createStateSync(
  c: Config,
  node: string,
  configFile: string,
  deps: { log: Logger; ct: Ctnetlink; vrrp: VrrpService; poller: Poller; afterSync: () => void; bulkSettled?: () => void; owns?: (e: { mark?: number }) => boolean; sharing?: boolean; onTable?: (complete: boolean, why: string) => void },
): Promise<StateSyncService> {
  const ss = c.state_sync!;
  const keyBytes = await readSyncKey(c, configFile);
  const names = Object.keys(c.nodes);
  const view = nodeView(c, node);
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
    selfId: names.indexOf(node),
    epoch: randomInt(1, 2 ** 32 - 1),
    peers,
    ct: deps.ct,
    transport: (onDatagram) => openSyncTransport({ poller: deps.poller, address: selfAddress, ifname: view.interfaces[ss.interface] ?? ss.interface, port: ss.port, log: deps.log, onDatagram }),
    bulk: { noPeerTimeoutMs: ss.wait_for_peer, noPeerTimeoutEmptyMs: ss.wait_for_peer_empty },
    lagBoundMs: ss.lag_bound,
    // Active-standby: the master owns every entry (active-active will decide per flow).
    owns: deps.owns ?? (() => !c.vrrp || Object.keys(c.vrrp.groups).length === 0 || deps.vrrp.isMaster()),
    ...(deps.bulkSettled ? { bulkSettled: deps.bulkSettled } : {}),
    ...(deps.sharing ? { sharing: deps.sharing } : {}),
    demote: (on, why) => {
      deps.vrrp.setDemoted(on, why);
      if (!on) deps.afterSync();
    },
    tableComplete: (complete, why) => {
      deps.vrrp.setPreemptHold(!complete, why);
      deps.onTable?.(complete, why);
    },
    peerAliveElsewhere: () => deps.vrrp.masterHeard(),
  });
}

/** Liveness over the sync link (state_sync.liveness), or undefined when it is off. */
export async function createLiveness(
  c: Config,
  node: string,
  configFile: string,
  vrrp: VrrpService,
  log: Logger,
  hooks: { sharing?: SharingService; onHeard?: () => void; onPeer?: (peer: string, state: 'up' | 'down' | 'leaving') => void; dieAfterRounds?: number },
): Promise<LivenessService | undefined> {
  const ss = c.state_sync;
  const l = ss?.liveness;
  if (!ss || !l) return undefined;
  const view = nodeView(c, node);
  const names = Object.keys(c.nodes);
  const peers = view.peers.filter((p) => p.addresses[ss.interface]);
  // The sync link, and with sharing every link with shared addresses (ruleset.ts beatRoles).
  const roles = [ss.interface, ...beatRoles(c).filter((r) => view.addresses[r])];
  const channel = new LivenessWorker({
    selfId: names.indexOf(node),
    links: roles.map((r) => bareAddress(view.addresses[r]!)),
    linkIfnames: roles.map((r) => view.interfaces[r] ?? r),
    port: livenessPort(ss.port),
    key: deriveSyncKey(await readSyncKey(c, configFile)),
    intervalMs: l.interval,
    multiplier: l.multiplier,
    // A main thread hung for three adverts' time is a dead node: its BEATs stop.
    mainStallMs: 3 * (c.vrrp?.advert_interval ?? 100),
    lagBoundMs: ss.lag_bound,
    peers: peers.map((p) => ({ name: p.name, id: names.indexOf(p.name), addresses: roles.map((r) => (p.addresses[r] ? bareAddress(p.addresses[r]) : null)) })),
    ...(hooks.dieAfterRounds ? { dieAfterRounds: hooks.dieAfterRounds } : {}),
  });
  return new LivenessService({
    clock: realClock,
    log,
    intervalMs: l.interval,
    multiplier: l.multiplier,
    peers: peers.map((p) => ({ name: p.name, addresses: Object.values(p.addresses).map((a) => bareAddress(a)) })),
    channel,
    vrrp,
    ...(hooks.sharing ? { sharing: hooks.sharing } : {}),
    ...(hooks.onHeard ? { onHeard: hooks.onHeard } : {}),
    ...(hooks.onPeer ? { onPeer: hooks.onPeer } : {}),
  });
}
