/**
 * The node: takes a checked config, prepares everything that can fail (node view,
 * host checks, compile, `nft -c`) and only then commits. A reload that fails at
 * any step leaves the running config and ruleset untouched.
 */
import type { Logger } from 'pino';
import { compileRuleset } from '../compiler/ruleset.js';
import type { HostState } from '../config/host-check.js';
import { hostCheck, routedAddresses } from '../config/host-check.js';
import { ConfigError } from '../config/issues.js';
import type { LoadedConfig, LoadResult } from '../config/load.js';
import { nodeView, type NodeView } from '../config/node.js';
import type { Nft } from '../adapters/nft.js';
import { createHash } from 'node:crypto';

export interface NodeDaemonDeps {
  log: Logger;
  nft: Nft;
  readHost: (routeTargets: readonly string[]) => Promise<HostState>;
  now: () => number;
}

interface Prepared {
  loaded: LoadedConfig;
  view: NodeView;
  script: string;
  scriptDigest: string;
}

interface Running extends Prepared {
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
  services: { name: string; listen: string; scheduler: string; backends: { name: string; address: string; weight: number; state: string }[] }[];
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
    const script = compileRuleset({ config: loaded.config, node: view, blocklist: loaded.blocklist });
    await this.deps.nft.check(script);
    return { loaded, view, script, scriptDigest: createHash('sha256').update(script).digest('hex') };
  }

  private async commit(p: Prepared): Promise<void> {
    const t0 = this.deps.now();
    await this.deps.nft.apply(p.script);
    const applyMs = this.deps.now() - t0;
    this.running = { ...p, appliedAt: this.deps.now(), applyMs };
    this.deps.log.info({ event: 'ruleset_applied', digest: p.scriptDigest.slice(0, 12), applyMs, bytes: p.script.length }, 'ruleset applied');
  }

  async start(loaded: LoadedConfig): Promise<void> {
    await this.commit(await this.prepare(loaded));
  }

  /** Reload with a new config; on any failure the running one stays and the error is returned. */
  async reload(next: LoadResult): Promise<{ ok: true; changed: boolean } | { ok: false; error: Error }> {
    try {
      if (!next.ok) throw next.error;
      const loaded = next.value;
      const p = await this.prepare(loaded);
      const changed = p.scriptDigest !== this.running?.scriptDigest;
      if (changed) await this.commit(p);
      else if (this.running) this.running = { ...this.running, loaded };
      this.reloads.ok++;
      this.reloads.lastError = null;
      this.deps.log.info({ event: 'reload', changed, digest: loaded.digest.slice(0, 12) }, changed ? 'config reloaded' : 'config reloaded, ruleset unchanged');
      return { ok: true, changed };
    } catch (e) {
      this.reloads.failed++;
      this.reloads.lastError = (e as Error).message;
      this.deps.log.error({ event: 'reload_failed', err: (e as Error).message }, 'reload failed: keeping the running config and ruleset');
      return { ok: false, error: e as Error };
    }
  }

  status(): NodeStatus {
    const r = this.running;
    if (!r) throw new Error('node not started');
    const c = r.loaded.config;
    const iso = (t: number) => new Date(t).toISOString();
    return {
      node: this.nodeName,
      cluster: c.cluster.name,
      pid: process.pid,
      startedAt: iso(this.startedAt),
      config: { file: r.loaded.file, digest: r.loaded.digest, loadedAt: iso(r.appliedAt) },
      ruleset: { digest: r.scriptDigest, appliedAt: iso(r.appliedAt), applyMs: r.applyMs, bytes: r.script.length, blockedPrefixes: r.loaded.blocklist.length },
      reloads: { ...this.reloads },
      services: Object.entries(c.services).map(([name, s]) => ({
        name,
        listen: `${s.listen.address}:${s.listen.port}/${s.listen.proto}`,
        scheduler: s.scheduler,
        backends: Object.entries(s.backends).map(([bn, b]) => ({
          name: bn,
          address: `${b.address.address}:${b.address.port ?? s.listen.port}`,
          weight: b.weight,
          state: b.state,
        })),
      })),
    };
  }
}
