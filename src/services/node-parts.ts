/**
 * The subsystems of a node other than the ruleset (services/ruleset.ts), each as the daemon
 * prepares and commits it on a start or reload (ports/subsystem.ts):
 * - VRRP: a change of what it depends on restarts it (a graceful handover first); its new
 *   groups and sockets are prepared before anything is committed (VrrpService.prepare);
 * - the state sync: built at start; a reload that would change it is refused;
 * - sharing: set up at start; a reload that would change it is refused.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../config/issues.js';
import type { Config } from '../config/schema.js';
import type { NodeView } from '../config/node.js';
import type { LoadedConfig } from '../config/load.js';
import { FwlbError } from '../lib/errors.js';
import type { NodeConfig, Prepared, Subsystem } from '../ports/subsystem.js';
import type { Balancer } from './balancer.js';
import type { VrrpPlan, VrrpService } from './vrrp.js';

/**
 * What of the config the VRRP engine depends on: a change restarts it (a graceful handover).
 * Only the VRRP section, this node's priority, the names and addresses of the interfaces VRRP
 * runs on (ours and the peers'), and the sync interface's name.
 */
export function vrrpKey(c: Config, v: NodeView): string {
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

export class VrrpPart implements Subsystem<VrrpPlan> {
  readonly name = 'vrrp';
  /** The key of the configuration VRRP runs (undefined before the start). */
  private key: string | undefined;
  private next: string | undefined;

  /** `running`: VRRP runs after a commit (or after one that failed); `configured`: the plan has groups. */
  constructor(private readonly d: { vrrp: VrrpService; balancer: Balancer; log: Logger; onRunning?: (running: boolean, configured: boolean) => void }) {}

  async prepare(cfg: NodeConfig): Promise<Prepared<VrrpPlan>> {
    const key = vrrpKey(cfg.loaded.config, cfg.view);
    const changed = key !== this.key;
    this.next = key;
    // Unchanged: an empty plan, never committed (nothing opened, nothing to discard).
    return { plan: changed ? this.d.vrrp.prepare(cfg.loaded.config, cfg.view) : { groups: [], byVrid: new Map(), syncIfname: undefined, opened: new Map() }, changed };
  }

  async commit(plan: VrrpPlan): Promise<void> {
    if (this.key !== undefined) this.d.log.warn({ event: 'vrrp_restart' }, 'the VRRP configuration changed: restarting VRRP (graceful handover first)');
    this.key = this.next;
    const configured = plan.groups.length > 0;
    try {
      await this.d.vrrp.commit(plan);
    } finally {
      // Said whether the commit went through or not: a failed one leaves VRRP stopped.
      this.d.onRunning?.(this.d.vrrp.isRunning(), configured);
    }
    for (const [service, up] of this.d.balancer.availabilityNow()) this.d.vrrp.setServiceAvailable(service, up);
  }

  discard(plan: VrrpPlan): void {
    this.d.vrrp.discard(plan);
  }
}

/** Refuses a reload that would change what the running state sync is built from. */
export class SyncPart implements Subsystem<null> {
  readonly name = 'sync';
  private id: string | undefined;

  constructor(private readonly identity?: (loaded: LoadedConfig) => Promise<string>) {}

  /** At start: the sync is built from this config. */
  async adopt(loaded: LoadedConfig): Promise<void> {
    this.id = await this.identity?.(loaded);
  }

  async prepare(cfg: NodeConfig): Promise<Prepared<null>> {
    const id = await this.identity?.(cfg.loaded);
    if (id !== this.id) {
      throw new FwlbError(
        'ERR_RELOAD_SYNC',
        `${cfg.loaded.file}: state_sync or cluster.key_file changed (${syncChange(this.id, id)}): the state sync cannot change on a reload; nothing was applied. Restart the node to use it (fwlb stop, then fwlb run; a master first hands over).`,
      );
    }
    return { plan: null, changed: false };
  }

  async commit(): Promise<void> {}
}

/** Refuses a reload that would change sharing (its addresses, MACs and buckets are set up at start). */
export class SharingPart implements Subsystem<null> {
  readonly name = 'sharing';
  private running: string | undefined;

  adopt(c: Config): void {
    this.running = JSON.stringify(c.sharing ?? null);
  }

  async prepare(cfg: NodeConfig): Promise<Prepared<null>> {
    if (this.running !== undefined && this.running !== JSON.stringify(cfg.loaded.config.sharing ?? null)) {
      throw new ConfigError(cfg.loaded.file, [cfg.loaded.locate({ path: ['sharing'], message: 'sharing changed: it cannot change on a reload (its addresses, MACs and buckets are set up at start); nothing was applied. Restart the node to use it' })]);
    }
    return { plan: null, changed: false };
  }

  async commit(): Promise<void> {}
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
