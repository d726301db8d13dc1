/**
 * BGP (issue 26) as a subsystem of the node's daemon (ports/subsystem.ts): the node's part of
 * `bgp:` read from a config, and a reload that changes it. What a reload may change takes
 * effect at once (the addresses, communities, drain time, the include file, the services);
 * turning BGP on or off, or another device or BIRD socket, needs a restart and is refused
 * (the device is the node's kill switch, created once and held for the process's life).
 */
import { ConfigError } from '../config/issues.js';
import type { Config } from '../config/schema.js';
import type { NodeView } from '../config/node.js';
import type { NodeConfig, Prepared, Subsystem } from '../ports/subsystem.js';
import type { BgpService, BgpSettings } from './bgp.js';

/** This node's BGP settings, or undefined without `bgp:`. */
export function bgpSettings(c: Config, view: NodeView): BgpSettings | undefined {
  if (!c.bgp) return undefined;
  const mine = c.nodes[view.name]?.bgp;
  return {
    node: view.name,
    socket: mine?.socket ?? c.bgp.socket,
    include: mine?.include ?? c.bgp.include,
    device: c.bgp.device,
    communities: c.bgp.communities,
    drainMs: c.bgp.drain,
    extra: c.bgp.addresses,
    services: Object.entries(c.services).map(([name, s]) => ({ name, address: s.listen.address })),
  };
}

export class BgpPart implements Subsystem<BgpSettings | undefined> {
  readonly name = 'bgp';
  /** What the running service was built with (device and socket), or null: no BGP. */
  private running: string | null | undefined;

  constructor(private readonly d: { bgp: BgpService | undefined; availabilityNow: () => Iterable<[string, boolean]> }) {}

  async prepare(cfg: NodeConfig): Promise<Prepared<BgpSettings | undefined>> {
    const s = bgpSettings(cfg.loaded.config, cfg.view);
    const key = s ? JSON.stringify([s.device, s.socket]) : null;
    if (this.running !== undefined && key !== this.running) {
      const what = this.running === null ? 'bgp was added' : key === null ? 'bgp was removed' : 'bgp.device or the BIRD socket changed';
      throw new ConfigError(cfg.loaded.file, [cfg.loaded.locate({ path: ['bgp'], message: `${what}: it cannot change on a reload (the device is created at start and held); nothing was applied. Restart the node to use it` })]);
    }
    return { plan: s, changed: true };
  }

  async commit(plan: BgpSettings | undefined): Promise<void> {
    this.running = plan ? JSON.stringify([plan.device, plan.socket]) : null;
    if (!plan || !this.d.bgp) return;
    this.d.bgp.reconfigure(plan);
    for (const [service, up] of this.d.availabilityNow()) this.d.bgp.setServiceAvailable(service, up);
  }
}
