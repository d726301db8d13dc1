/**
 * The load balancer's runtime: per virtual service, its backends with their admin state
 * (enabled, drain, disabled), health and weight; the slot table the scheduler builds from
 * them; and the kernel's copy of that table, kept current by minimal map updates.
 *
 * Runtime changes (`fwlb backend ...`) are an overlay on the config. Across a reload the
 * overlay of a backend is kept as long as the config file leaves that backend as it was
 * when the change was made; once the file changes that backend (or the service), the file
 * wins and the overlay of that backend is dropped. A backend added at runtime stays until
 * it is removed or the file defines a backend of the same name.
 *
 * drain: no new flows; established ones run on to their end.
 * disable: no new flows, and the backend's established flows are deleted from conntrack
 *   (their next packets are dropped, as for any flow the firewall does not know).
 * remove: like disable, and the backend is gone from status (a runtime-added one for good).
 * The hashing schedulers keep a removed configured backend in their base table until the
 * config changes, so that removing it moves only its own slots.
 */
import type { Logger } from 'pino';
import type { Config, ServiceConfig } from '../config/schema.js';
import { schedulerFor, type SchedBackend } from '../balancer/schedulers.js';
import type { BackendSlot } from '../balancer/table.js';
import { mapDelta } from '../compiler/map-update.js';
import { backendCounterName, serviceMapName, TABLE_FAMILY, TABLE_NAME } from '../compiler/ruleset.js';
import { FwlbError } from '../lib/errors.js';
import { ipFamily } from '../lib/ip.js';

/** How long flow counts from conntrack are reused (a dump of a big table is not free). */
const FLOW_CACHE_MS = 1000;
/** A flow count slower than this answers status with the previous count while it runs. */
const SLOW_COUNT_MS = 100;

import type { SerialQueue } from '../lib/serial-queue.js';
import type { Conntrack, FlowSummary, ServiceKey } from '../ports/conntrack.js';
import type { Nft } from '../ports/nft.js';

export type AdminState = 'enabled' | 'drain' | 'disabled' | 'removed';
export type HealthState = 'up' | 'down' | 'unchecked';

export interface BackendRuntime {
  name: string;
  address: string;
  port: number;
  weight: number;
  admin: AdminState;
  health: HealthState;
  healthDetail: string;
  origin: 'config' | 'runtime';
}

interface Override {
  admin?: AdminState;
  weight?: number;
  added?: { address: string; port: number; weight: number };
  /** The config's entry for this backend when the override was made ("" if none). */
  configWas: string;
}

interface ServiceRuntime {
  name: string;
  svc: ServiceConfig;
  key: ServiceKey;
  backends: Map<string, BackendRuntime>;
}

export interface BackendStatus {
  name: string;
  address: string;
  weight: number;
  admin: AdminState;
  health: HealthState;
  healthDetail: string;
  origin: 'config' | 'runtime';
  /** Share of the slot table: the share of new flows it receives. */
  slots: number;
  activeConnections: number | null;
  newConnections: number | null;
}

export interface ServiceStatus {
  name: string;
  listen: string;
  scheduler: string;
  tableSize: number;
  backends: BackendStatus[];
}

export interface BalancerDeps {
  log: Logger;
  nft: Nft;
  conntrack: Conntrack;
  queue: SerialQueue;
  /** The clock for the flow-count cache (default Date.now). */
  now?: () => number;
  /** Told when a service gains its first or loses its last available backend (VRRP tracking). */
  onAvailability?: (service: string, available: boolean) => void;
}

export type BackendCommand =
  | { op: 'drain' | 'disable' | 'enable' | 'remove'; service: string; backend: string }
  | { op: 'weight'; service: string; backend: string; weight: number }
  | { op: 'add'; service: string; backend: string; address: string; port?: number; weight?: number };

const entryText = (svc: ServiceConfig | undefined, backend: string) => {
  const b = svc?.backends[backend];
  return b ? JSON.stringify({ b, listen: svc.listen, sched: svc.scheduler }) : '';
};

export class Balancer {
  private services = new Map<string, ServiceRuntime>();
  private overrides = new Map<string, Override>();
  private config: Config | undefined;
  /** What the kernel's maps hold, per service. */
  private kernel = new Map<string, (BackendSlot | null)[]>();
  /** New-connection counter values carried over table replacements. */
  private counterBase = new Map<string, number>();

  constructor(private readonly deps: BalancerDeps) {}

  /**
   * Builds the runtime for a config, keeping overlays the config leaves valid and health
   * states of unchanged backends. Pure with respect to the kernel: `slots()` then gives
   * what the ruleset must carry, and `applied()` records that the kernel has it.
   */
  plan(config: Config): { services: Map<string, ServiceRuntime>; overrides: Map<string, Override> } {
    const overrides = new Map<string, Override>();
    for (const [k, o] of this.overrides) {
      const [s = '', b = ''] = k.split('/');
      // Kept while the file leaves this backend (and its service) as they were.
      if (config.services[s] && entryText(config.services[s], b) === o.configWas) overrides.set(k, o);
    }
    const services = new Map<string, ServiceRuntime>();
    for (const [name, svc] of Object.entries(config.services)) {
      const old = this.services.get(name);
      const backends = new Map<string, BackendRuntime>();
      const put = (bn: string, address: string, port: number, weight: number, admin: AdminState, origin: BackendRuntime['origin']) => {
        const o = overrides.get(`${name}/${bn}`);
        const prev = old?.backends.get(bn);
        const keepHealth = prev && prev.address === address && prev.port === port;
        backends.set(bn, {
          name: bn,
          address,
          port,
          weight: o?.weight ?? weight,
          admin: o?.admin ?? admin,
          health: keepHealth ? prev.health : svc.health ? 'up' : 'unchecked',
          healthDetail: keepHealth ? prev.healthDetail : '',
          origin,
        });
      };
      for (const [bn, b] of Object.entries(svc.backends)) put(bn, b.address.address, b.address.port ?? svc.listen.port, b.weight, b.state, 'config');
      for (const [k, o] of overrides) {
        const [s, bn = ''] = k.split('/');
        if (s === name && o.added && !svc.backends[bn]) put(bn, o.added.address, o.added.port, o.added.weight, 'enabled', 'runtime');
      }
      services.set(name, { name, svc, key: { address: svc.listen.address, port: svc.listen.port, proto: svc.listen.proto, family: svc.listen.family }, backends });
    }
    return { services, overrides };
  }

  /** The slot tables of a plan, for the compiler. */
  static slotsOf(services: Map<string, ServiceRuntime>): Record<string, (BackendSlot | null)[]> {
    const out: Record<string, (BackendSlot | null)[]> = {};
    for (const [name, s] of services) out[name] = tableOf(s);
    return out;
  }

  /** The plan is in the kernel now (its ruleset was applied with `slotsOf(plan)`). */
  adopt(config: Config, plan: ReturnType<Balancer['plan']>): void {
    this.config = config;
    this.services = plan.services;
    this.overrides = plan.overrides;
    this.kernel = new Map(Object.entries(Balancer.slotsOf(plan.services)));
    this.reportAvailability();
  }

  /** Last availability reported per service. */
  private availability = new Map<string, boolean>();

  /** Whether each service has an available backend now (for VRRP tracking at its start). */
  availabilityNow(): Map<string, boolean> {
    return new Map([...this.services.values()].map((s) => [s.name, tableOf(s).some((x) => x !== null)]));
  }

  /** Reports services whose availability changed since the last report. */
  private reportAvailability(): void {
    for (const s of this.services.values()) {
      const now = tableOf(s).some((x) => x !== null);
      if (this.availability.get(s.name) !== now) {
        this.availability.set(s.name, now);
        this.deps.onAvailability?.(s.name, now);
      }
    }
  }

  /** Counter values read just before the table was replaced: they carry on from there. */
  carryCounters(values: ReadonlyMap<string, number>): void {
    for (const [k, v] of values) this.counterBase.set(k, (this.counterBase.get(k) ?? 0) + v);
  }

  /** The backends to health-check: every service with a health section, every backend not removed. */
  healthTargets(): { service: string; backend: string; address: string; port: number; family: 4 | 6; check: NonNullable<ServiceConfig['health']> }[] {
    const out = [];
    for (const s of this.services.values()) {
      if (!s.svc.health) continue;
      for (const b of s.backends.values()) {
        if (b.admin === 'removed') continue;
        out.push({ service: s.name, backend: b.name, address: b.address, port: b.port, family: (ipFamily(b.address) || 4) as 4 | 6, check: s.svc.health });
      }
    }
    return out;
  }

  async setHealth(service: string, backend: string, up: boolean, detail: string): Promise<void> {
    const b = this.services.get(service)?.backends.get(backend);
    if (!b) return;
    const to: HealthState = up ? 'up' : 'down';
    b.healthDetail = detail;
    if (b.health === to) return;
    this.deps.log.info({ event: 'backend_health', service, backend, from: b.health, to, why: detail }, `backend ${service}/${backend} is ${to}`);
    b.health = to;
    await this.sync(service);
  }

  /** A runtime command from the control socket. */
  /** A runtime change holds for this backend (a reload that changed its config entry dropped it). */
  holdsRuntime(service: string, backend: string): boolean {
    return this.overrides.has(`${service}/${backend}`);
  }

  async command(c: BackendCommand): Promise<{ service: string; backend: string; admin: AdminState; weight: number; flowsDeleted?: number }> {
    const s = this.services.get(c.service);
    if (!s) throw new FwlbError('ERR_NO_SERVICE', `no service "${c.service}" (services: ${[...this.services.keys()].join(', ') || 'none'})`);
    const key = `${c.service}/${c.backend}`;
    const o: Override = this.overrides.get(key) ?? { configWas: entryText(this.config?.services[c.service], c.backend) };
    let b = s.backends.get(c.backend);
    if (c.op === 'add') {
      if (b?.origin === 'config') throw new FwlbError('ERR_BACKEND_EXISTS', `backend "${c.backend}" is in the config of service "${c.service}": use enable`);
      if (b) throw new FwlbError('ERR_BACKEND_EXISTS', `backend "${c.backend}" already exists in service "${c.service}"`);
      const fam = ipFamily(c.address);
      if (fam !== s.key.family) throw new FwlbError('ERR_BAD_ADDRESS', `"${c.address}" is not an IPv${s.key.family} address`);
      const port = c.port ?? s.svc.listen.port;
      const weight = c.weight ?? 1;
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FwlbError('ERR_BAD_PORT', `port ${port} is out of range`);
      if (!Number.isInteger(weight) || weight < 0 || weight > 1000) throw new FwlbError('ERR_BAD_WEIGHT', 'weight must be an integer from 0 to 1000');
      const clash = [...s.backends.values()].find((x) => x.admin !== 'removed' && x.address === c.address && x.port === port);
      if (clash) throw new FwlbError('ERR_BACKEND_EXISTS', `${c.address}:${port} is already backend "${clash.name}"`);
      // The kernel objects first: if the counter cannot be made, nothing has changed.
      await this.ensureCounter(s.key.family, c.address, port);
      b = { name: c.backend, address: c.address, port, weight, admin: 'enabled', health: s.svc.health ? 'up' : 'unchecked', healthDetail: '', origin: 'runtime' };
      s.backends.set(c.backend, b);
      o.added = { address: c.address, port, weight };
    } else {
      // A configured backend removed at runtime can be enabled again; nothing else of it is left.
      if (!b || (b.admin === 'removed' && c.op !== 'enable')) throw new FwlbError('ERR_NO_BACKEND', `no backend "${c.backend}" in service "${c.service}" (backends: ${[...s.backends.values()].filter((x) => x.admin !== 'removed').map((x) => x.name).join(', ')})`);
      if (c.op === 'weight') {
        if (!Number.isInteger(c.weight) || c.weight < 0 || c.weight > 1000) throw new FwlbError('ERR_BAD_WEIGHT', 'weight must be an integer from 0 to 1000');
        b.weight = c.weight;
        o.weight = c.weight;
        if (o.added) o.added.weight = c.weight;
      } else {
        const admin: AdminState = c.op === 'enable' ? 'enabled' : c.op === 'drain' ? 'drain' : c.op === 'disable' ? 'disabled' : 'removed';
        b.admin = admin;
        o.admin = admin;
      }
    }
    this.overrides.set(key, o);
    this.deps.log.info({ event: 'backend_command', ...c }, `backend ${c.op}: ${key}`);
    await this.sync(c.service);
    let flowsDeleted: number | undefined;
    if (c.op === 'disable' || c.op === 'remove') {
      flowsDeleted = await this.deps.conntrack.deleteBackendFlows(s.key, { address: b.address, port: b.port });
    }
    if (c.op === 'remove' && b.origin === 'runtime') {
      s.backends.delete(c.backend);
      this.overrides.delete(key);
      await this.sync(c.service);
    }
    return { service: c.service, backend: c.backend, admin: b.admin, weight: b.weight, ...(flowsDeleted !== undefined ? { flowsDeleted } : {}) };
  }

  /** Brings the kernel's map of a service to the current table (one transaction). */
  private sync(service: string): Promise<void> {
    return this.deps.queue.run(async () => {
      const s = this.services.get(service);
      if (!s) return;
      const want = tableOf(s);
      const have = this.kernel.get(service) ?? [];
      const d = mapDelta(serviceMapName(service), have, want);
      this.reportAvailability();
      if (!d.script) return;
      const t0 = performance.now();
      await this.deps.nft.apply(d.script);
      this.kernel.set(service, want);
      this.deps.log.info({ event: 'map_updated', service, slots: d.changed, ms: Math.round(performance.now() - t0) }, `service ${service}: ${d.changed} slots updated`);
    });
  }

  private ensureCounter(family: 4 | 6, address: string, port: number): Promise<void> {
    return this.deps.queue.run(async () => {
      const name = backendCounterName(address, port);
      const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
      // "add" of an existing counter or element is a no-op in nft, so this is idempotent.
      await this.deps.nft.apply(`add counter ${t} ${name}\nadd element ${t} backend_counters_v${family} { ${address} . ${port} : "${name}" }\n`);
    });
  }

  /**
   * Flow counts per service: at most one count per service a second however often status and
   * metrics ask, and one at a time (callers meanwhile share the one in progress). In the
   * daemon the count runs in a worker thread (adapters/flows): a service with 100,000 flows
   * delays no VRRP advert. A count is reused for a second, or for five times what it took (a
   * large table's count then costs at most a fifth of a core however often status is asked);
   * when a count takes long (over 100 ms: a large table), an older one is answered at once
   * while the next runs, up to ten times that age, so that status stays quick.
   */
  private readonly flowCache = new Map<string, { at: number; tookMs: number; value: FlowSummary | null; running?: Promise<FlowSummary | null> }>();

  private flowsOf(s: ServiceRuntime): Promise<FlowSummary | null> {
    const clock = this.deps.now ?? Date.now;
    const now = clock();
    const hit = this.flowCache.get(s.name);
    const maxAge = Math.max(FLOW_CACHE_MS, 5 * (hit?.tookMs ?? 0));
    if (hit && now - hit.at < maxAge) return Promise.resolve(hit.value);
    const running = hit?.running ?? this.countFlows(s, now);
    if (hit && hit.tookMs > SLOW_COUNT_MS && now - hit.at < 10 * maxAge) return Promise.resolve(hit.value);
    return running;
  }

  private countFlows(s: ServiceRuntime, started: number): Promise<FlowSummary | null> {
    const clock = this.deps.now ?? Date.now;
    const prev = this.flowCache.get(s.name);
    const entry = prev ?? { at: -Infinity, tookMs: 0, value: null };
    const running = this.deps.conntrack.serviceFlows(s.key).catch(() => null).then((value) => {
      entry.value = value;
      entry.tookMs = clock() - started;
      entry.at = clock();
      delete entry.running;
      return value;
    });
    entry.running = running;
    this.flowCache.set(s.name, entry);
    return running;
  }

  async status(counters: ReadonlyMap<string, number> | null): Promise<ServiceStatus[]> {
    const out: ServiceStatus[] = [];
    // Every service's flows asked for at once: the counter answers them in one request.
    const all = [...this.services.values()];
    const flowsOf = await Promise.all(all.map((s) => this.flowsOf(s)));
    for (const [i, s] of all.entries()) {
      const table = this.kernel.get(s.name) ?? [];
      const slotCount = new Map<string, number>();
      for (const x of table) if (x) slotCount.set(`${x.address}:${x.port}`, (slotCount.get(`${x.address}:${x.port}`) ?? 0) + 1);
      const flows = flowsOf[i] ?? null;
      out.push({
        name: s.name,
        listen: `${s.key.family === 6 ? `[${s.key.address}]` : s.key.address}:${s.key.port}/${s.key.proto}`,
        scheduler: s.svc.scheduler,
        tableSize: schedulerFor(s.svc).size,
        backends: [...s.backends.values()]
          .filter((b) => b.admin !== 'removed')
          .map((b) => {
            const addr = `${b.address}:${b.port}`;
            const cname = backendCounterName(b.address, b.port);
            const live = counters?.get(cname);
            return {
              name: b.name,
              address: addr,
              weight: b.weight,
              admin: b.admin,
              health: b.health,
              healthDetail: b.healthDetail,
              origin: b.origin,
              slots: slotCount.get(addr) ?? 0,
              activeConnections: flows ? flows.byBackend.get(addr)?.established ?? 0 : null,
              newConnections: live === undefined ? null : live + (this.counterBase.get(cname) ?? 0),
            };
          }),
      });
    }
    return out;
  }
}

/** The scheduler's table for the service's current backends. */
function tableOf(s: ServiceRuntime): (BackendSlot | null)[] {
  const backends: SchedBackend[] = [...s.backends.values()]
    // A removed configured backend stays in the hashing base set (unavailable) until the config changes.
    .filter((b) => b.origin === 'config' || b.admin !== 'removed')
    .map((b) => ({ name: b.name, address: b.address, port: b.port, weight: b.weight, available: b.admin === 'enabled' && b.health !== 'down' && b.weight > 0 }));
  return schedulerFor(s.svc).table(backends);
}
