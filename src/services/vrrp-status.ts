/** The VRRP service's status record: per group and instance, counters, drops, the adverts' clock. */
import type { DropCounters, VrrpDropReason } from '../codec/vrrp/drop.js';
import type { AdvertTiming } from '../fsm/vrrp/advert-schedule.js';
import type { GroupRuntime } from './vrrp-groups.js';

export interface VrrpInstanceStatus {
  name: string;
  interface: string;
  /** IPv4 or IPv6 (RFC 9568: apart, also with the same VRID). */
  family: 4 | 6;
  /** Where our adverts leave from: our address there (IPv4), the link-local one (IPv6; null while there is none). */
  source: string | null;
  vrid: number;
  version: 2 | 3;
  state: string;
  wantState: string;
  priority: number;
  configuredPriority: number;
  master: { address: string; priority: number; ageMs: number } | null;
  advertIntervalMs: number;
  masterAdverIntervalMs: number;
  timers: Record<string, number>;
  faults: string[];
  maintenance: boolean;
  addresses: string[];
  lastTransition: { from: string; to: string; why: string; agoMs: number } | null;
}

export interface VrrpStatus {
  maintenance: boolean;
  /** Held back by the state sync until its bulk sync is complete. */
  syncDemoted: boolean;
  /** Preemption held by the state sync: the table incomplete, or this node behind (each reason's why). Absent from nodes before it. */
  preemptHold?: { held: boolean; why: string[] };
  groups: { name: string; state: string; transitions: number; instances: VrrpInstanceStatus[] }[];
  counters: Record<string, number>;
  drops: Partial<Record<VrrpDropReason, number>>;
  foreignAdverts: number;
  /** Gratuitous ARPs sent by the refresh while master (not those of a takeover). */
  garpRefreshes: number;
  /** The adverts' own clock: sent, late, expired (the daemon stopped renewing), under SCHED_RR. */
  adverts: (AdvertTiming & { realtime?: boolean }) | null;
}

export function vrrpStatus(o: {
groups: readonly GroupRuntime[];
now: number;
maintenance: boolean;
demoted: boolean;
counters: ReadonlyMap<string, number>;
drops: DropCounters;
foreign: number;
garpRefreshes: number;
adverts: VrrpStatus['adverts'];
preemptHold?: VrrpStatus['preemptHold'];
}): VrrpStatus {
  const now = o.now;
  return {
    maintenance: o.maintenance,
    syncDemoted: o.demoted,
    ...(o.preemptHold ? { preemptHold: o.preemptHold } : {}),
    groups: o.groups.map((g) => ({
      name: g.name,
      state: g.state.state,
      transitions: g.transitions,
      instances: Object.entries(g.state.members).map(([mname, s]) => {
        const m = g.members.get(mname)!;
        return {
          name: mname,
          interface: m.ifname,
          family: m.family,
          source: m.primary || null,
          vrid: s.config.vrid,
          version: s.config.version,
          state: s.state,
          wantState: s.wantState,
          priority: s.priority,
          configuredPriority: m.configuredPriority,
          master: s.state === 'master' ? { address: m.primary, priority: s.priority, ageMs: 0 } : s.master ? { address: s.master.address, priority: s.master.priority, ageMs: Math.round(now - s.master.seenAtMs) } : null,
          advertIntervalMs: s.config.advertIntervalMs,
          masterAdverIntervalMs: s.masterAdverIntervalMs,
          timers: Object.fromEntries(Object.entries(s.timers).map(([k, at]) => [k, Math.max(0, Math.round((at as number) - now))])),
          faults: [...s.faults],
          maintenance: s.maintenance,
          addresses: [...s.config.addresses],
          lastTransition: s.lastTransition ? { from: s.lastTransition.from, to: s.lastTransition.to, why: s.lastTransition.why, agoMs: Math.round(now - s.lastTransition.atMs) } : null,
        };
      }),
    })),
    counters: Object.fromEntries(o.counters),
    drops: Object.fromEntries(Object.entries(o.drops).filter(([, n]) => n > 0)),
    foreignAdverts: o.foreign,
    garpRefreshes: o.garpRefreshes,
    adverts: o.adverts,
  };
}
