/**
 * A node's VRRP groups as the service runs them: each sync group's pure machine
 * (fsm/vrrp/group.ts) with what the service keeps beside it (its members' interfaces and
 * addresses, timers, tracked items, the notify hook, GARP settings), built from a config.
 */
import { FwlbError } from '../lib/errors.js';
import type { Clock, Timer } from '../lib/clock.js';
import { bareAddress, ipFamily } from '../lib/ip.js';
import { TimerDriver } from '../lib/timers.js';
import type { NodeView } from '../config/node.js';
import type { Config } from '../config/schema.js';
import { initialGroupState, type SyncGroupState, type TrackOutcome, type TrackedItem, type VrrpInstanceConfig } from '../fsm/vrrp/index.js';
import type { VrrpLinkIO } from '../ports/vrrp-net.js';
import type { BeatInstance } from '../codec/sync/message.js';
import { masterDownInterval } from '../fsm/vrrp/timers.js';

const bare = bareAddress;

/**
 * A VRRP configuration ready to run (`prepare`): its groups built and its new links' sockets
 * open, nothing of it running. `commit` puts it in place of the running one; `discard` drops
 * it (a reload refused by another part).
 */
export interface VrrpPlan {
  readonly groups: GroupRuntime[];
  readonly byVrid: Map<string, { group: GroupRuntime; member: Member }>;
  readonly syncIfname: string | undefined;
  /** Sockets this plan opened, by link key: links the running service lacks, or whose address changed. */
  readonly opened: Map<string, { io: VrrpLinkIO; primary: string }>;
}

export interface Member {
  name: string;
  ifname: string;
  family: 4 | 6;
  /** Its socket's key in the links (linkKey): one socket per interface and family. */
  link: string;
  /**
   * The source of its adverts: the node's address on the interface (IPv4), or the
   * interface's link-local address (IPv6; '' while it has none: the member is in fault).
   */
  primary: string;
  /** Unicast peers' addresses on this interface, or empty for multicast. */
  unicast: string[];
  configuredPriority: number;
  outcome: TrackOutcome;
}

export interface GroupRuntime {
  name: string;
  state: SyncGroupState;
  members: Map<string, Member>;
  timers: TimerDriver;
  track: Map<string, TrackedItem>;
  notify: string | undefined;
  trackedInterfaces: Set<string>;
  script: { path: string; intervalMs: number; timer?: Timer } | undefined;
  /** refreshMs 0: no refresh while master. */
  garp: { repeat: number; intervalMs: number; refreshMs: number };
  transitions: number;
}

/** The key of an interface's VRRP socket for one family. */
export const linkKey = (ifname: string, family: 4 | 6): string => (family === 6 ? `${ifname}/ipv6` : ifname);

/** The fault source of an IPv6 member whose interface has no usable link-local address. */
export const linkLocalFault = (ifname: string): string => `link-local:${ifname}`;

/**
 * The source of an IPv6 member's adverts among its interface's usable link-local addresses:
 * the one it has while it stays usable, else the first that is no VIP of ours on that
 * interface (keepalived once took a VIP after a reload, and its peers, seeing two sources,
 * split the brain); '' when there is none.
 */
export function pickLinkLocal(candidates: readonly string[], vips: ReadonlySet<string>, current: string): string {
  if (current && candidates.includes(current)) return current;
  return candidates.find((a) => !vips.has(a)) ?? '';
}

/** Every VIP (bare) the instances of `groups` put on `ifname`. */
export function vipsOn(groups: readonly GroupRuntime[], ifname: string): Set<string> {
  const out = new Set<string>();
  for (const g of groups) for (const m of g.members.values()) if (m.ifname === ifname) for (const a of g.state.members[m.name]!.config.addresses) out.add(bare(a));
  return out;
}

/**
 * The groups of a config, built; nothing opened, nothing running. `linkLocals` gives an
 * interface's usable link-local addresses, among which IPv6 adverts' source is picked
 * (RFC 9568 5.1.2.1; pickLinkLocal).
 */
export function buildGroups(c: Config, view: NodeView, clock: Clock, linkLocals: (ifname: string) => readonly string[] = () => []): VrrpPlan {
  const plan: VrrpPlan = { groups: [], byVrid: new Map(), syncIfname: c.state_sync ? view.interfaces[c.state_sync.interface] : undefined, opened: new Map() };
  const v = c.vrrp;
  if (!v) return plan;
  for (const [gname, g] of Object.entries(v.groups)) {
    const members = new Map<string, Member>();
    const configs: Record<string, VrrpInstanceConfig> = {};
    for (const [iname, inst] of Object.entries(g.instances)) {
      const ifname = view.interfaces[inst.interface] ?? inst.interface;
      const family = ipFamily(bare(inst.addresses[0] ?? '')) as 4 | 6;
      if (family === 6 && v.unicast) throw new FwlbError('ERR_VRRP_FAMILY', `vrrp.groups.${gname}.instances.${iname}: IPv6 VRRP runs on multicast (ff02::12) only`);
      const vips = new Set(Object.values(v.groups).flatMap((gr) => Object.values(gr.instances)).filter((i) => (view.interfaces[i.interface] ?? i.interface) === ifname).flatMap((i) => i.addresses.map(bare)));
      const primary = family === 6 ? pickLinkLocal(linkLocals(ifname), vips, '') : bare(view.addresses[inst.interface] ?? '');
      const priority = inst.priority ?? view.priority;
      configs[iname] = {
        name: `${gname}.${iname}`,
        version: v.version,
        family,
        vrid: inst.vrid,
        priority,
        advertIntervalMs: v.advert_interval,
        addresses: inst.addresses,
        primaryAddress: primary,
        preempt: v.preempt.enabled,
        preemptDelayMs: v.preempt.delayMs,
        // The firewall itself answers on its VIPs (ping, and DNAT happens before routing anyway).
        acceptMode: true,
      };
      const unicast = v.unicast ? view.peers.map((p) => p.addresses[inst.interface]).filter((a): a is string => !!a) : [];
      members.set(iname, { name: iname, ifname, family, link: linkKey(ifname, family), primary, unicast, configuredPriority: priority, outcome: { priority, faults: [] } });
    }
    const rt: GroupRuntime = {
      name: gname,
      state: initialGroupState(gname, configs),
      members,
      timers: new TimerDriver(clock),
      track: new Map(),
      notify: g.notify,
      trackedInterfaces: new Set([...members.values()].map((m) => m.ifname).concat(g.track.interfaces.map((r) => view.interfaces[r] ?? r))),
      script: g.track.script ? { path: g.track.script, intervalMs: g.track.script_interval } : undefined,
      garp: { repeat: v.garp.repeat, intervalMs: v.garp.interval, refreshMs: v.garp.refresh === false ? 0 : v.garp.refresh },
      transitions: 0,
    };
    for (const s of g.track.services) rt.track.set(`service:${s}`, { name: `service:${s}`, up: true, weight: g.track.weight });
    if (g.track.script) rt.track.set('script', { name: `script:${g.track.script}`, up: true, weight: g.track.weight });
    for (const m of members.values()) plan.byVrid.set(`${m.link}/${configs[m.name]!.vrid}`, { group: rt, member: m });
    plan.groups.push(rt);
  }
  return plan;
}


/**
 * Another router is heard as master (its adverts arrived within Master_Down_Interval) on
 * some instance of these groups.
 */
export function masterHeard(groups: readonly GroupRuntime[], now: number): boolean {
  for (const g of groups) {
    for (const m of Object.values(g.state.members)) {
      if (m.state !== 'backup' || !m.master) continue;
      if (now - m.master.seenAtMs < masterDownInterval(m.priority, m.masterAdverIntervalMs, m.config.version)) return true;
    }
  }
  return false;
}

/** The groups' instances as a liveness BEAT reports them, in config order (every node has the same order); IPv6 ones with their adverts' source. */
export function beatInstances(groups: readonly GroupRuntime[], running: boolean): BeatInstance[] {
  const out: BeatInstance[] = [];
  for (const g of groups) {
    for (const [name, m] of g.members) {
      const st = g.state.members[name];
      // An IPv6 instance says where its adverts come from: its peers know them as ours by it.
      if (st) out.push({ vrid: st.config.vrid, state: running ? st.state : 'initialize', priority: running ? st.priority : 0, ...(m.family === 6 ? { source: m.primary || '::' } : {}) });
    }
  }
  return out;
}
