/**
 * The node: takes a checked config, prepares everything that can fail (node view,
 * host checks, the load balancer's plan, compile, `nft -c`) and only then commits.
 * A reload that fails at any step leaves the running config and ruleset untouched.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { compileRuleset, TABLE_FAMILY, TABLE_NAME } from '../compiler/ruleset.js';
import type { HostState } from '../config/host-check.js';
import { hostCheck, routedAddresses } from '../config/host-check.js';
import { ConfigError } from '../config/issues.js';
import type { LoadedConfig, LoadResult } from '../config/load.js';
import { nodeView, type NodeView } from '../config/node.js';
import { readCounters, type Nft } from '../adapters/nft.js';
import { Balancer, type BackendCommand, type ServiceStatus } from './balancer.js';
import type { SerialQueue } from '../lib/serial-queue.js';
import type { VrrpService, VrrpStatus } from './vrrp.js';
import type { StateSyncService, StateSyncStatus } from './state-sync.js';

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
}

interface Prepared {
  loaded: LoadedConfig;
  view: NodeView;
  plan: ReturnType<Balancer['plan']>;
  script: string;
  scriptDigest: string;
}

interface Running {
  loaded: LoadedConfig;
  loadedAt: number;
  view: NodeView;
  scriptDigest: string;
  scriptBytes: number;
  appliedAt: number;
  applyMs: number;
}

export interface NodeStatus {
  node: string;
  cluster: string;
  pid: number;
  startedAt: string;
  config: { file: string; digest: string; loadedAt: string };
  ruleset: { digest: string; appliedAt: string; applyMs: number; bytes: number; blockedPrefixes: number };
  reloads: { ok: number; failed: number; lastError: string | null };
  services: ServiceStatus[];
  vrrp: VrrpStatus;
  sync: StateSyncStatus | null;
}

export class NodeDaemon {
  private running: Running | undefined;
  private readonly startedAt: number;
  private reloads = { ok: 0, failed: 0, lastError: null as string | null };

  constructor(private readonly deps: NodeDaemonDeps, private readonly nodeName: string) {
    this.startedAt = deps.now();
  }

  /** Everything that can fail, with nothing applied. */
  async prepare(loaded: LoadedConfig): Promise<Prepared> {
    const view = nodeView(loaded.config, this.nodeName);
    const host = await this.deps.readHost(routedAddresses(loaded.config));
    const issues = hostCheck(loaded.config, view, host).map(loaded.locate);
    if (issues.length) throw new ConfigError(loaded.file, issues);
    const plan = this.deps.balancer.plan(loaded.config);
    const script = compileRuleset({ config: loaded.config, node: view, blocklist: loaded.blocklist, serviceSlots: Balancer.slotsOf(plan.services) });
    await this.deps.nft.check(script);
    return { loaded, view, plan, script, scriptDigest: createHash('sha256').update(script).digest('hex') };
  }

  /** Replaces the table in one transaction (in the kernel queue, so no map update races it). */
  private async commit(p: Prepared): Promise<void> {
    const { nft, balancer, queue, log } = this.deps;
    await queue.run(async () => {
      const counters = await readCounters(nft, TABLE_FAMILY, TABLE_NAME);
      const t0 = this.deps.now();
      await nft.apply(p.script);
      const applyMs = Math.round(this.deps.now() - t0);
      balancer.carryCounters(counters);
      balancer.adopt(p.loaded.config, p.plan);
      this.running = { loaded: p.loaded, loadedAt: this.deps.now(), view: p.view, scriptDigest: p.scriptDigest, scriptBytes: p.script.length, appliedAt: this.deps.now(), applyMs };
      log.info({ event: 'ruleset_applied', digest: p.scriptDigest.slice(0, 12), applyMs, bytes: p.script.length }, 'ruleset applied');
    });
    this.deps.health.setTargets(balancer.healthTargets());
    // Health verdicts reached while the plan was being made: bring them in.
    for (const h of this.deps.health.snapshot()) await balancer.setHealth(h.service, h.backend, h.status === 'up', h.lastDetail ?? '');
  }

  async start(loaded: LoadedConfig): Promise<void> {
    const p = await this.prepare(loaded);
    await this.commit(p);
    // The state sync first: a joining node is held back from mastership until it has the
    // peers' connection table. The firewall is in place before any address is taken.
    this.deps.sync?.start();
    await this.startVrrp(p);
  }

  /** Starts VRRP for a config, with the tracked services' availability as it is now. */
  private async startVrrp(p: Prepared): Promise<void> {
    this.deps.vrrp.configure(p.loaded.config, p.view);
    await this.deps.vrrp.start();
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
      const changed = p.scriptDigest !== this.running?.scriptDigest;
      const vrrpChanged = !this.running || NodeDaemon.vrrpKey(p.loaded.config, p.view) !== NodeDaemon.vrrpKey(this.running.loaded.config, this.running.view);
      if (changed) await this.commit(p);
      else {
        // Same ruleset: the kernel already matches the plan.
        this.deps.balancer.adopt(p.loaded.config, p.plan);
        this.deps.health.setTargets(this.deps.balancer.healthTargets());
        if (this.running) this.running = { ...this.running, loaded: p.loaded, loadedAt: this.deps.now(), view: p.view };
      }
      if (vrrpChanged) {
        this.deps.log.warn({ event: 'vrrp_restart' }, 'the VRRP configuration changed: restarting VRRP (graceful handover first)');
        await this.deps.vrrp.shutdown();
        await this.startVrrp(p);
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

  /** Graceful stop: VRRP hands over (priority 0, VIPs removed); the ruleset stays. */
  async stop(): Promise<void> {
    this.deps.health.stop();
    await this.deps.vrrp.shutdown();
    this.deps.sync?.stop();
  }

  maintenance(on: boolean): VrrpStatus {
    this.deps.vrrp.setMaintenance(on);
    return this.deps.vrrp.status();
  }

  async status(): Promise<NodeStatus> {
    const r = this.running;
    if (!r) throw new Error('node not started');
    const c = r.loaded.config;
    const iso = (t: number) => new Date(t).toISOString();
    return {
      node: this.nodeName,
      cluster: c.cluster.name,
      pid: process.pid,
      startedAt: iso(this.startedAt),
      config: { file: r.loaded.file, digest: r.loaded.digest, loadedAt: iso(r.loadedAt) },
      ruleset: { digest: r.scriptDigest, appliedAt: iso(r.appliedAt), applyMs: r.applyMs, bytes: r.scriptBytes, blockedPrefixes: r.loaded.blocklist.length },
      reloads: { ...this.reloads },
      services: await this.deps.balancer.status(await readCounters(this.deps.nft, TABLE_FAMILY, TABLE_NAME)),
      vrrp: this.deps.vrrp.status(),
      sync: this.deps.sync?.status() ?? null,
    };
  }
}
