/**
 * The ruleset and the load balancer's maps, as one subsystem (ports/subsystem.ts): prepare
 * checks the host (interfaces, addresses, routes) and compiles the whole table; commit puts
 * it into the kernel in one transaction, the cheapest way that gives the same table:
 *  - at start, if the kernel already holds this very ruleset (its digest chain says so), only
 *    the service maps are filled again (the last run may have changed them);
 *  - on reload, the delta from the running ruleset (compiler/delta.ts), or the whole table if
 *    the delta cannot express the change or the kernel refuses it;
 *  - otherwise the whole table.
 * Then the balancer adopts the plan and the health checker its targets.
 */
import type { Logger } from 'pino';
import { compileRulesetParts, digestChainName, DIGEST_CHAIN_PREFIX, TABLE_FAMILY, TABLE_NAME, type Block } from '../compiler/ruleset.js';
import { mapsRefresh, rulesetDelta } from '../compiler/delta.js';
import { hostCheck, routedAddresses, type HostState } from '../config/host-check.js';
import { ConfigError } from '../config/issues.js';
import type { LoadedConfig } from '../config/load.js';
import type { NodeView } from '../config/node.js';
import type { SerialQueue } from '../lib/serial-queue.js';
import type { Nft } from '../ports/nft.js';
import type { NodeConfig, Prepared, Subsystem } from '../ports/subsystem.js';
import { Balancer } from './balancer.js';

/** What the ruleset needs of the health checker (services/health-checker.ts). */
export interface HealthRunner {
  setTargets(targets: ReturnType<Balancer['healthTargets']>): void;
  snapshot(): readonly { service: string; backend: string; status: 'up' | 'down'; lastDetail?: string | undefined }[];
  stop(): void;
}

export interface RulesetPlan {
  loaded: LoadedConfig;
  view: NodeView;
  plan: ReturnType<Balancer['plan']>;
  script: string;
  scriptDigest: string;
  blocks: Block[];
}

export interface RulesetStatus {
  digest: string;
  appliedAt: string;
  applyMs: number;
  applyMode: 'full' | 'delta' | 'kept';
  bytes: number;
  blockedPrefixes: number;
}

export interface RulesetDeps {
  log: Logger;
  nft: Nft;
  /** The kernel queue: no map update races a transaction. */
  queue: SerialQueue;
  balancer: Balancer;
  health: HealthRunner;
  readHost: (routeTargets: readonly string[]) => Promise<HostState>;
  now: () => number;
  /** The table's named counters (carried over a full apply). */
  counters: () => Promise<Map<string, number>>;
  /** With sharing: the owned buckets, appended to a full apply; written again after any. */
  sharing?: { ownedScript(): string; afterCommit(config: LoadedConfig['config']): void };
  /** Startup steps (NodeDaemon's readiness figures). */
  onStep?: (step: string, next: string) => void;
}

interface Applied {
  plan: RulesetPlan;
  applyMode: 'full' | 'delta' | 'kept';
  appliedAt: number;
  applyMs: number;
}

export class Ruleset implements Subsystem<RulesetPlan> {
  readonly name = 'ruleset';
  private applied: Applied | undefined;

  constructor(private readonly deps: RulesetDeps) {}

  /** Everything that can fail, with nothing applied: the host checked, the table compiled. */
  async prepare(next: NodeConfig): Promise<Prepared<RulesetPlan>> {
    const { loaded, view } = next;
    this.deps.onStep?.('config', 'checking the host');
    const host = await this.deps.readHost(routedAddresses(loaded.config));
    const issues = hostCheck(loaded.config, view, host).map(loaded.locate);
    if (issues.length) throw new ConfigError(loaded.file, issues);
    this.deps.onStep?.('host', 'compiling the ruleset');
    const plan = this.deps.balancer.plan(loaded.config);
    const compiled = compileRulesetParts({ config: loaded.config, node: view, blocklist: loaded.blocklist, serviceSlots: Balancer.slotsOf(plan.services) });
    this.deps.onStep?.('compile', 'applying the ruleset');
    const p = { loaded, view, plan, script: compiled.script, scriptDigest: compiled.digest, blocks: compiled.blocks };
    return { plan: p, changed: compiled.digest !== this.applied?.plan.scriptDigest };
  }

  async commit(p: RulesetPlan): Promise<void> {
    const prev = this.applied;
    if (prev && prev.plan.scriptDigest === p.scriptDigest) {
      // Same ruleset: the kernel already matches; the balancer and health take the new plan.
      this.deps.balancer.adopt(p.loaded.config, p.plan);
      this.deps.health.setTargets(this.deps.balancer.healthTargets());
      this.applied = { ...prev, plan: p };
      return;
    }
    await this.apply(p, prev);
    // A full apply resets the owned buckets: they are written again.
    this.deps.sharing?.afterCommit(p.loaded.config);
    const { balancer, health } = this.deps;
    health.setTargets(balancer.healthTargets());
    // Health verdicts reached while the plan was being made: bring them in.
    for (const h of health.snapshot()) await balancer.setHealth(h.service, h.backend, h.status === 'up', h.lastDetail ?? '');
  }

  /** The last ruleset committed. */
  running(): RulesetPlan | undefined {
    return this.applied?.plan;
  }

  status(): RulesetStatus | undefined {
    const a = this.applied;
    if (!a) return undefined;
    return { digest: a.plan.scriptDigest, appliedAt: new Date(a.appliedAt).toISOString(), applyMs: a.applyMs, applyMode: a.applyMode, bytes: a.plan.script.length, blockedPrefixes: a.plan.loaded.blocklist.length };
  }

  private async apply(p: RulesetPlan, prev: Applied | undefined): Promise<void> {
    const { nft, balancer, queue, log } = this.deps;
    await queue.run(async () => {
      const t0 = this.deps.now();
      let mode: Applied['applyMode'] = 'full';
      let bytes = p.script.length;
      if (!prev && (await kernelDigest(nft)) === digestChainName(p.scriptDigest).slice(DIGEST_CHAIN_PREFIX.length)) {
        const refresh = mapsRefresh(p.blocks);
        if (refresh) await nft.apply(refresh);
        mode = 'kept';
        bytes = refresh.length;
      } else if (prev) {
        const delta = rulesetDelta(prev.plan.blocks, p.blocks);
        if (delta !== undefined) {
          try {
            if (delta) await nft.apply(delta);
            mode = 'delta';
            bytes = delta.length;
          } catch (e) {
            log.warn({ event: 'ruleset_delta_refused', err: (e as Error).message }, 'the kernel refused the delta: replacing the whole table');
          }
        }
      }
      if (mode === 'full') {
        const counters = await this.deps.counters();
        // With sharing, the new table's owned set is filled in the same transaction: no
        // moment without it (afterCommit writes it again in any case).
        await nft.apply(p.script + (this.deps.sharing?.ownedScript() ?? ''));
        balancer.carryCounters(counters);
      }
      const applyMs = Math.round(this.deps.now() - t0);
      balancer.adopt(p.loaded.config, p.plan);
      this.applied = { plan: p, applyMode: mode, appliedAt: this.deps.now(), applyMs };
      log.info({ event: 'ruleset_applied', digest: p.scriptDigest.slice(0, 12), mode, applyMs, bytes: p.script.length, transactionBytes: bytes }, mode === 'kept' ? 'ruleset already in the kernel: kept (service maps refilled)' : `ruleset applied (${mode})`);
    });
  }
}

/** The digest the kernel's table records (the name of its digest chain), if any. */
async function kernelDigest(nft: Nft): Promise<string | undefined> {
  let text: string;
  try {
    text = await nft.list(['list', 'chains', TABLE_FAMILY]);
  } catch {
    return undefined;
  }
  let inTable = false;
  for (const line of text.split('\n')) {
    const t = /^table (\S+) (\S+) \{/.exec(line);
    if (t) inTable = t[1] === TABLE_FAMILY && t[2] === TABLE_NAME;
    const c = inTable ? new RegExp(`^\\s+chain ${DIGEST_CHAIN_PREFIX}([0-9a-f]+) \\{`).exec(line) : null;
    if (c) return c[1];
  }
  return undefined;
}
