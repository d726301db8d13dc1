/**
 * BGP of a node (issue 26), built from its config at the start: the kill-switch device
 * (adapters/tun.ts, created here and held for the process's life), BIRD's control socket,
 * and the announcer (services/bgp.ts) wired to the cluster events (readiness) and to the
 * services' availability; with the relay, its counters from the kernel. Without `bgp:`, nothing (a reload cannot add it: services/bgp-part.ts).
 */
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { nodeView } from '../config/node.js';
import { realClock } from '../lib/clock.js';
import { BirdControl, writeBirdInclude } from '../adapters/bird-control.js';
import { TunDevice } from '../adapters/tun.js';
import { BgpService } from '../services/bgp.js';
import { bgpSettings } from '../services/bgp-part.js';
import type { ClusterEvents } from '../services/cluster-events.js';
import { RELAY_TABLE } from '../compiler/relay.js';

export function buildBgp(
  loaded: LoadedConfig,
  node: string,
  log: Logger,
  core: { events: ClusterEvents; availability: Set<(service: string, available: boolean) => void> },
  counters: { read(family: 'netdev', table: string): Promise<Map<string, number>> },
): BgpService | undefined {
  const settings = bgpSettings(loaded.config, nodeView(loaded.config, node));
  if (!settings) return undefined;
  const device = TunDevice.open(settings.device);
  const relay = loaded.config.bgp?.relay && loaded.config.sharing ? { relayCounters: () => counters.read('netdev', RELAY_TABLE) } : {};
  const bgp = new BgpService(settings, {
    machine: { bird: new BirdControl(settings.socket), device, writeInclude: writeBirdInclude, ...relay },
    clock: realClock,
    log: log.child({ component: 'bgp' }),
  });
  core.events.subscribe(bgp.onClusterEvent);
  core.availability.add((service, available) => bgp.setServiceAvailable(service, available));
  return bgp;
}
