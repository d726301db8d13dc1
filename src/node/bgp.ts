/**
 * BGP of a node (issue 26), built from its config at the start: the kill-switch device
 * (adapters/tun.ts, created here and held for the process's life), BIRD's control socket,
 * and the announcer (services/bgp.ts) wired to the cluster events (readiness) and to the
 * services' availability. Without `bgp:`, nothing (a reload cannot add it: services/bgp-part.ts).
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

export function buildBgp(loaded: LoadedConfig, node: string, log: Logger, core: { events: ClusterEvents; availability: Set<(service: string, available: boolean) => void> }): BgpService | undefined {
  const settings = bgpSettings(loaded.config, nodeView(loaded.config, node));
  if (!settings) return undefined;
  const device = TunDevice.open(settings.device);
  const bgp = new BgpService(settings, {
    machine: { bird: new BirdControl(settings.socket), device, writeInclude: writeBirdInclude },
    clock: realClock,
    log: log.child({ component: 'bgp' }),
  });
  core.events.subscribe(bgp.onClusterEvent);
  core.availability.add((service, available) => bgp.setServiceAvailable(service, available));
  return bgp;
}
