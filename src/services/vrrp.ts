/**
 * The VRRP service: runs the sync groups' pure machines (fsm/vrrp) against the real world.
 * It feeds them received adverts, timers, link changes and tracking, and carries out
 * their effects: adverts on raw sockets, virtual addresses through rtnetlink, gratuitous
 * ARP, notify hooks, logs and counters.
 *
 * Fast detection, besides short adverts: a peer's priority 0 on one member releases the
 * whole group (fsm/vrrp/group.ts), and carrier loss on the sync link (a cable between the
 * firewalls) releases every group at once, as the peer's power loss would show there first.
 * If the peer is in fact alive (only the cable failed), its adverts on the other links
 * restore order within an interval.
 */
import type { Logger } from 'pino';
import { VRRP_MCAST_GROUP_V4 } from '../codec/vrrp/constants.js';
import type { BeatInstance } from '../codec/sync/message.js';
import type { AdvertCheck } from '../fsm/liveness.js';
import type { VrrpAdvert } from '../codec/vrrp/packet.js';
import { emptyDropCounters, recordDrop, type DropCounters, type VrrpDropReason } from '../codec/vrrp/drop.js';
import { decodeIPv4Advert } from '../codec/vrrp/ipv4.js';
import { encodeAdvert } from '../codec/vrrp/packet.js';
import type { NodeView } from '../config/node.js';
import type { Config } from '../config/schema.js';
import {
  initialGroupState, stepGroup, trackEvents, trackOutcome, VRRP_COUNTERS,
  type SyncGroupEffect, type SyncGroupEvent, type SyncGroupState, type TrackOutcome, type TrackedItem,
  type VrrpCounter, type VrrpInstanceConfig, type VrrpTimer,
} from '../fsm/vrrp/index.js';
import type { Clock, Timer } from '../lib/clock.js';
import { TimerDriver } from '../lib/timers.js';
import { masterDownInterval } from '../fsm/vrrp/timers.js';
import type { AdvertTiming } from '../fsm/vrrp/advert-schedule.js';
import { FwlbError } from '../lib/errors.js';
import type { Failpoint } from '../lib/failpoints.js';
import { bareAddress, ipFamily } from '../lib/ip.js';
import type { ScriptRunner, VrrpLinkIO, VrrpNet } from '../ports/vrrp-net.js';

/** A group's state change: its name, the new state, its VIPs (as configured) and its notify hook. */
export type GroupStateListener = (group: string, state: string, info: { vips: readonly string[]; hook?: string }) => void;

export interface VrrpDeps {
  clock: Clock;
  log: Logger;
  net: VrrpNet;
  scripts: ScriptRunner;
  node: string;
  cluster: string;
  /** Steps that tests make fail on purpose (lib/failpoints.ts): `vrrp.prepare`. */
  failpoint?: Failpoint;
}

/**
 * A VRRP configuration ready to run (`prepare`): its groups built and its new links' sockets
 * open, nothing of it running. `commit` puts it in place of the running one; `discard` drops
 * it (a reload refused by another part).
 */
export interface VrrpPlan {
  readonly groups: GroupRuntime[];
  readonly byVrid: Map<string, { group: GroupRuntime; member: Member }>;
  readonly syncIfname: string | undefined;
  /** Sockets this plan opened: links the running service lacks, or whose address changed. */
  readonly opened: Map<string, { io: VrrpLinkIO; primary: string }>;
}

interface Member {
  name: string;
  ifname: string;
  primary: string;
  /** Unicast peers' addresses on this interface, or empty for multicast. */
  unicast: string[];
  configuredPriority: number;
  outcome: TrackOutcome;
}

interface GroupRuntime {
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

export interface VrrpInstanceStatus {
  name: string;
  interface: string;
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
  groups: { name: string; state: string; transitions: number; instances: VrrpInstanceStatus[] }[];
  counters: Record<string, number>;
  drops: Partial<Record<VrrpDropReason, number>>;
  foreignAdverts: number;
  /** Gratuitous ARPs sent by the refresh while master (not those of a takeover). */
  garpRefreshes: number;
  /** The adverts' own clock: sent, late, expired (the daemon stopped renewing), under SCHED_RR. */
  adverts: (AdvertTiming & { realtime?: boolean }) | null;
}

const bare = bareAddress;
/**
 * A master's adverts go on by their own clock for this many advert intervals after the
 * daemon's machine last renewed them: a loop held up for less misses no advert; a daemon
 * hung for longer is a dead master (as the BEATs' watchdog: fsm/liveness-core.ts).
 */
export const ADVERT_LEASE_INTERVALS = 3;
const withLen = (a: string) => (a.includes('/') ? a : `${a}/${ipFamily(a) === 6 ? 128 : 32}`);
const TIMER_EVENT: Record<VrrpTimer, 'master_down_timer' | 'advert_timer' | 'preempt_delay_timer'> = {
  master_down: 'master_down_timer',
  advert: 'advert_timer',
  preempt_delay: 'preempt_delay_timer',
};

export class VrrpService {
  private groups: GroupRuntime[] = [];
  private readonly links = new Map<string, VrrpLinkIO>();
  /** The address each link was opened with. */
  private readonly linkPrimary = new Map<string, string>();
  /** `${ifname}/${vrid}` -> the instance that owns it. */
  private readonly byVrid = new Map<string, { group: GroupRuntime; member: Member }>();
  private readonly counters = new Map<VrrpCounter, number>(VRRP_COUNTERS.map((c) => [c, 0]));
  private garpRefreshes = 0;
  private drops: DropCounters = emptyDropCounters();
  private foreign = 0;
  private addressQueue: Promise<void> = Promise.resolve();
  private unlisten: (() => void) | undefined;
  private syncIfname: string | undefined;
  private maintenance = false;
  private demoted = false;
  /** What the machines were last told (maintenance_on/off). */
  private demotionApplied = false;
  /** Preemption held while the connection table is incomplete (see setPreemptHold). */
  private preemptHeld = false;
  private running = false;
  /** Bumped at every start and stop: callbacks of an earlier run find it changed and do nothing. */
  private generation = 0;
  /**
   * During a graceful stop: the VIP removals held back until the new master is heard on
   * that virtual router (or a timeout), so that the old master forwards on meanwhile and a
   * graceful handover loses nothing.
   */
  private handover: Map<string, () => void> | undefined;
  /** Called when the last held-back release has happened. */
  private handoverDone: (() => void) | undefined;

  constructor(private readonly deps: VrrpDeps) {}

  /** Builds the groups of this node from the config; nothing runs until `start`. */
  configure(c: Config, view: NodeView): void {
    if (this.running) throw new FwlbError('ERR_VRRP_RUNNING', 'configure before start');
    this.install(this.build(c, view));
  }

  /**
   * Everything of a new VRRP configuration that can fail, with nothing of the running one
   * touched: the groups built, each interface checked, the sockets of links not open yet
   * opened. Throws (ERR_VRRP_PREPARE, the reason) with whatever it opened closed again.
   */
  prepare(c: Config, view: NodeView): VrrpPlan {
    const plan = this.build(c, view);
    try {
      for (const g of plan.groups) {
        for (const m of g.members.values()) {
          if (plan.opened.has(m.ifname) || (this.links.has(m.ifname) && this.linkPrimary.get(m.ifname) === m.primary)) continue;
          if (this.deps.net.linkUp(m.ifname) === undefined) throw new FwlbError('ERR_VRRP_LINK', `interface ${m.ifname} does not exist`);
          const ifname = m.ifname;
          plan.opened.set(ifname, { io: this.deps.net.open(ifname, m.primary, (d) => this.onPacket(ifname, d)), primary: m.primary });
        }
      }
      if (this.deps.failpoint?.('vrrp.prepare')) throw new FwlbError('ERR_FAILPOINT', 'failpoint vrrp.prepare (FWLB_FAILPOINTS)');
    } catch (e) {
      this.discard(plan);
      throw new FwlbError('ERR_VRRP_PREPARE', (e as Error).message);
    }
    return plan;
  }

  /** Drops a plan that will not run: closes the sockets it opened. */
  discard(plan: VrrpPlan): void {
    for (const l of plan.opened.values()) l.io.close();
    plan.opened.clear();
  }

  /**
   * Puts a prepared configuration in place: the running groups hand over first (as a
   * graceful stop does), the links both use stay open, then the new groups start.
   */
  async commit(plan: VrrpPlan): Promise<void> {
    const used = new Set(plan.groups.flatMap((g) => [...g.members.values()].map((m) => m.ifname)));
    const keep = new Set([...used].filter((i) => !plan.opened.has(i)));
    if (this.running) await this.shutdown(keep);
    for (const [ifname, l] of this.links) {
      if (keep.has(ifname)) continue;
      l.close();
      this.links.delete(ifname);
      this.linkPrimary.delete(ifname);
    }
    this.install(plan);
    await this.start();
  }

  private install(plan: VrrpPlan): void {
    this.groups = plan.groups;
    this.byVrid.clear();
    for (const [k, v] of plan.byVrid) this.byVrid.set(k, v);
    this.syncIfname = plan.syncIfname;
    for (const [ifname, l] of plan.opened) {
      this.links.get(ifname)?.close();
      this.links.set(ifname, l.io);
      this.linkPrimary.set(ifname, l.primary);
    }
    plan.opened.clear();
  }

  /** The groups of a config, built; nothing opened, nothing running. */
  private build(c: Config, view: NodeView): VrrpPlan {
    const plan: VrrpPlan = { groups: [], byVrid: new Map(), syncIfname: c.state_sync ? view.interfaces[c.state_sync.interface] : undefined, opened: new Map() };
    const v = c.vrrp;
    if (!v) return plan;
    for (const [gname, g] of Object.entries(v.groups)) {
      const members = new Map<string, Member>();
      const configs: Record<string, VrrpInstanceConfig> = {};
      for (const [iname, inst] of Object.entries(g.instances)) {
        const ifname = view.interfaces[inst.interface] ?? inst.interface;
        const primary = bare(view.addresses[inst.interface] ?? '');
        const family = ipFamily(bare(inst.addresses[0] ?? '')) as 4 | 6;
        if (family !== 4) throw new FwlbError('ERR_VRRP_FAMILY', `vrrp.groups.${gname}.instances.${iname}: IPv6 VRRP is not supported by this build yet`);
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
        members.set(iname, { name: iname, ifname, primary, unicast, configuredPriority: priority, outcome: { priority, faults: [] } });
      }
      const rt: GroupRuntime = {
        name: gname,
        state: initialGroupState(gname, configs),
        members,
        timers: new TimerDriver(this.deps.clock),
        track: new Map(),
        notify: g.notify,
        trackedInterfaces: new Set([...members.values()].map((m) => m.ifname).concat(g.track.interfaces.map((r) => view.interfaces[r] ?? r))),
        script: g.track.script ? { path: g.track.script, intervalMs: g.track.script_interval } : undefined,
        garp: { repeat: v.garp.repeat, intervalMs: v.garp.interval, refreshMs: v.garp.refresh === false ? 0 : v.garp.refresh },
        transitions: 0,
      };
      for (const s of g.track.services) rt.track.set(`service:${s}`, { name: `service:${s}`, up: true, weight: g.track.weight });
      if (g.track.script) rt.track.set('script', { name: `script:${g.track.script}`, up: true, weight: g.track.weight });
      for (const m of members.values()) plan.byVrid.set(`${m.ifname}/${configs[m.name]!.vrid}`, { group: rt, member: m });
      plan.groups.push(rt);
    }
    return plan;
  }

  /** Removes stale VIPs (a previous run killed with -9 leaves them), opens the sockets, starts every group. */
  async start(): Promise<void> {
    if (this.running || this.groups.length === 0) return;
    const { net, log } = this.deps;
    for (const g of this.groups) {
      for (const [mname, m] of g.members) {
        for (const a of g.state.members[mname]!.config.addresses) await net.delAddress(m.ifname, withLen(a));
      }
    }
    try {
      for (const g of this.groups) {
        for (const m of g.members.values()) {
          if (this.links.has(m.ifname)) continue;
          if (net.linkUp(m.ifname) === undefined) throw new FwlbError('ERR_VRRP_LINK', `interface ${m.ifname} does not exist`);
          this.links.set(m.ifname, net.open(m.ifname, m.primary, (d) => this.onPacket(m.ifname, d)));
          this.linkPrimary.set(m.ifname, m.primary);
        }
      }
    } catch (e) {
      for (const l of this.links.values()) l.close();
      this.links.clear();
      this.linkPrimary.clear();
      throw e;
    }
    this.running = true;
    this.generation++;
    this.unlisten = net.onLinkChange((ifname, up) => this.onLinkChange(ifname, up));
    for (const g of this.groups) {
      // Interfaces already down start as faults.
      for (const ifname of g.trackedInterfaces) if (net.linkUp(ifname) === false) this.feed(g, { type: 'member', member: this.memberOn(g, ifname), event: { type: 'fault', source: `interface:${ifname}` } });
      this.feed(g, { type: 'all', event: { type: 'startup' } });
      this.scheduleScript(g, 0);
    }
    this.demotionApplied = false;
    this.applyDemotion();
    if (this.preemptHeld) for (const g of this.groups) this.feed(g, { type: 'all', event: { type: 'preempt_hold', on: true } });
    log.info({ event: 'vrrp_started', groups: this.groups.map((g) => g.name) }, 'VRRP running');
  }

  /**
   * Graceful stop: priority 0 on every link a master holds, so the best backup takes over
   * after Skew_Time; our VIPs stay (and we forward on) until that new master is heard on
   * each virtual router, at most Master_Down_Interval; then they go and the sockets close.
   */
  async shutdown(keepLinks: ReadonlySet<string> = new Set()): Promise<void> {
    if (!this.running) return;
    this.handover = new Map();
    for (const g of this.groups) this.feed(g, { type: 'all', event: { type: 'shutdown' } });
    this.generation++;
    for (const g of this.groups) {
      g.timers.cancelAll();
      g.script?.timer?.cancel();
    }
    const pending = this.handover;
    if (pending.size > 0) {
      const longest = Math.max(...this.groups.flatMap((g) => Object.values(g.state.members).map((m) => m.config.advertIntervalMs)));
      const t0 = this.deps.clock.now();
      await new Promise<void>((resolve) => {
        const deadline = this.deps.clock.after(3 * longest + 100, () => resolve());
        this.handoverDone = () => {
          deadline.cancel();
          resolve();
        };
      });
      this.handoverDone = undefined;
      this.deps.log.info({ event: 'handover', waitedMs: Math.round(this.deps.clock.now() - t0), unconfirmed: [...pending.keys()] }, pending.size ? 'handover: no new master heard on some links, releasing anyway' : 'handover confirmed by the new master');
      for (const release of pending.values()) release();
      pending.clear();
    }
    this.handover = undefined;
    await this.addressQueue;
    this.unlisten?.();
    // A reload's new configuration may go on with some links (commit): those stay open.
    for (const [ifname, l] of this.links) {
      if (keepLinks.has(ifname)) continue;
      l.close();
      this.links.delete(ifname);
      this.linkPrimary.delete(ifname);
    }
    this.running = false;
  }

  /** By hand (`fwlb maintenance`): this node hands over and stays backup. */
  setMaintenance(on: boolean): void {
    if (on === this.maintenance) return;
    this.maintenance = on;
    this.deps.log.info({ event: 'maintenance', on }, on ? 'maintenance on: demoting this node' : 'maintenance off');
    this.applyDemotion();
  }

  /** By the state sync: held back until this node has the connection table (bulk sync). */
  setDemoted(on: boolean, why: string): void {
    if (on === this.demoted) return;
    this.demoted = on;
    this.deps.log.info({ event: 'sync_demotion', on, why }, on ? `held back from mastership: ${why}` : `released: ${why}`);
    this.applyDemotion();
  }

  /**
   * By the state sync: while this node's connection table is incomplete, it must not take the
   * VIPs from a live master that holds the sessions (a higher priority with preempt would
   * otherwise do so as soon as the demotion ends, even when the bulk sync gave up). It still
   * takes over when no master is heard: an incomplete table beats no firewall.
   */
  setPreemptHold(on: boolean, why: string): void {
    if (on === this.preemptHeld) return;
    this.preemptHeld = on;
    this.deps.log.info({ event: 'preempt_hold', on, why }, on ? `preemption held: ${why}` : `preemption allowed: ${why}`);
    if (this.running) for (const g of this.groups) this.feed(g, { type: 'all', event: { type: 'preempt_hold', on } });
  }

  /** Maintenance and the sync's demotion are one switch for the machines. */
  private applyDemotion(): void {
    const on = this.maintenance || this.demoted;
    if (on === this.demotionApplied || !this.running) return;
    this.demotionApplied = on;
    for (const g of this.groups) this.feed(g, { type: 'all', event: { type: on ? 'maintenance_on' : 'maintenance_off' } });
  }

  /**
   * Another router is heard as master (its adverts arrived within Master_Down_Interval) on
   * some instance: someone carries the traffic. The state sync asks before it concludes that
   * this node is alone.
   */
  masterHeard(): boolean {
    const now = this.deps.clock.now();
    for (const g of this.groups) {
      for (const m of Object.values(g.state.members)) {
        if (m.state !== 'backup' || !m.master) continue;
        if (now - m.master.seenAtMs < masterDownInterval(m.priority, m.masterAdverIntervalMs, m.config.version)) return true;
      }
    }
    return false;
  }

  /** Started and not stopped. */
  isRunning(): boolean {
    return this.running;
  }

  /** True when this node is master of every group: it carries the traffic. */
  isMaster(): boolean {
    return this.groups.length > 0 && this.groups.every((g) => g.state.state === 'master');
  }

  /** A tracked service gained or lost its last available backend. */
  setServiceAvailable(service: string, available: boolean): void {
    for (const g of this.groups) this.setTracked(g, `service:${service}`, available);
  }

  private setTracked(g: GroupRuntime, key: string, up: boolean): void {
    const item = g.track.get(key);
    if (!item || item.up === up) return;
    g.track.set(key, { ...item, up });
    this.deps.log.info({ event: 'vrrp_track', group: g.name, item: item.name, up }, `tracked ${item.name} is ${up ? 'up' : 'down'}`);
    for (const m of g.members.values()) {
      const next = trackOutcome(m.configuredPriority, [...g.track.values()]);
      for (const event of trackEvents(m.outcome, next)) this.feed(g, { type: 'member', member: m.name, event });
      m.outcome = next;
    }
  }

  private scheduleScript(g: GroupRuntime, delayMs: number): void {
    const s = g.script;
    const gen = this.generation;
    if (!s || !this.running) return;
    s.timer = this.deps.clock.after(delayMs, () => {
      void this.deps.scripts.check(s.path, Math.max(100, s.intervalMs - 50)).then((ok) => {
        // A check that ends after a stop or restart belongs to a run that is over.
        if (gen !== this.generation) return;
        this.setTracked(g, 'script', ok);
        this.scheduleScript(g, s.intervalMs);
      });
    });
  }

  private memberOn(g: GroupRuntime, ifname: string): string {
    for (const m of g.members.values()) if (m.ifname === ifname) return m.name;
    return g.members.keys().next().value as string;
  }

  /**
   * While the instance stays master, a gratuitous ARP for its addresses every refresh
   * interval (keepalived's vrrp_garp_master_refresh, on here by default): a switch that lost
   * its table relearns where the VIPs are without waiting for a client to ask.
   */
  private garpRefresh(g: GroupRuntime, m: Member, addrs: string[]): void {
    if (g.garp.refreshMs <= 0) return;
    g.timers.after(`${m.name}/garp-refresh`, g.garp.refreshMs, () => {
      if (!this.running || g.state.members[m.name]?.state !== 'master') return;
      this.links.get(m.ifname)?.garp(addrs);
      this.garpRefreshes++;
      this.garpRefresh(g, m, addrs);
    });
  }

  /** Our instances as a liveness BEAT reports them, in config order (every node has the same order). */
  beatInstances(): BeatInstance[] {
    const out: BeatInstance[] = [];
    for (const g of this.groups) {
      for (const name of g.members.keys()) {
        const st = g.state.members[name];
        if (st) out.push({ vrid: st.config.vrid, state: this.running ? st.state : 'initialize', priority: this.running ? st.priority : 0 });
      }
    }
    return out;
  }

  /**
   * An fwlb peer is gone (its liveness BEATs stopped): every instance of ours whose master is
   * that peer (an advert from one of `addresses`) takes over as if the master had released it
   * (priority 0), at once if no live peer outranks us for that VRID (`outranked`), else after
   * Skew_Time so that the best of those left wins. Instances whose master is someone else are
   * left alone: a dead backup changes nothing.
   *
   * Never on the BEATs' word alone while the master's adverts still come: an instance that
   * heard its master within the master's advert interval waits until one interval has passed
   * since that advert, and takes over only if no advert came meanwhile and the peer is still
   * gone (`stillGone`). A sync link that breaks, or BEATs held up, while the master lives
   * then move nothing. Returns how many instances were released or are waiting to be.
   */
  peerGone(addresses: ReadonlySet<string>, why: string, outranked: (vrid: number, priority: number) => boolean, stillGone: () => boolean = () => true): number {
    if (!this.running) return 0;
    // Adverts waiting in the sockets (this loop held up) count as heard before we decide.
    this.drainLinks();
    let n = 0;
    const now = this.deps.clock.now();
    for (const g of this.groups) {
      for (const name of g.members.keys()) {
        const st = g.state.members[name];
        if (!st || st.state !== 'backup' || !st.master || !addresses.has(st.master.address)) continue;
        n++;
        const heardAt = st.master.seenAtMs;
        const release = () => {
          const cur = g.state.members[name];
          // An advert since (the master lives), another master, or the peer back: nothing to do.
          if (!this.running || !cur || cur.state !== 'backup' || cur.master?.address !== st.master!.address || cur.master.seenAtMs !== heardAt || !stillGone()) return;
          const skewMs = outranked(cur.config.vrid, cur.priority) ? undefined : 0;
          this.feed(g, { type: 'member', member: name, event: { type: 'master_released', why, ...(skewMs === undefined ? {} : { skewMs }) } });
        };
        const wait = heardAt + st.masterAdverIntervalMs - now;
        if (wait > 0) g.timers.after(`${name}/peer-gone`, Math.ceil(wait), release);
        else release();
      }
    }
    return n;
  }

  /** Reads every VRRP socket now (see arm_timer): adverts already received are not ignored. */
  private drainLinks(): void {
    for (const l of this.links.values()) {
      try {
        l.drain();
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'VRRP socket read failed');
      }
    }
  }

  private onLinkChange(ifname: string, up: boolean): void {
    if (!this.running) return;
    for (const g of this.groups) {
      if (!g.trackedInterfaces.has(ifname)) continue;
      const event = up ? ({ type: 'fault_cleared', source: `interface:${ifname}` } as const) : ({ type: 'fault', source: `interface:${ifname}` } as const);
      this.feed(g, { type: 'member', member: this.memberOn(g, ifname), event });
    }
    if (!up && ifname === this.syncIfname) {
      this.deps.log.warn({ event: 'sync_link_down', ifname }, 'carrier lost on the sync link: taking the peer for gone');
      for (const g of this.groups) this.feed(g, { type: 'all', event: { type: 'master_released', why: `carrier lost on the sync link ${ifname}` } });
    }
  }

  private onPacket(ifname: string, datagram: Buffer): void {
    const r = decodeIPv4Advert(datagram);
    if (!r.ok) {
      this.drop(r.reason);
      return;
    }
    const owner = this.byVrid.get(`${ifname}/${r.value.vrid}`);
    if (!owner) {
      // Another virtual router on this link (another cluster, a router): not ours to judge.
      this.foreign++;
      return;
    }
    if (r.ip.src === owner.member.primary) {
      this.drop('own_advert');
      return;
    }
    // An advert in an fwlb peer's name is held to what the peer says itself in its BEATs.
    const check = this.advertCheck?.(r.ip.src, r.value.vrid, r.value.priority) ?? 'ok';
    if (check !== 'ok') {
      const key = `${ifname}/${r.value.vrid}/${r.ip.src}`;
      if (check === 'release_unconfirmed') {
        // Perhaps genuine, and its BEAT not here yet: the next BEAT of that peer decides.
        this.held.set(key, { owner, advert: r.value, from: r.ip.src, atMs: this.deps.clock.now() });
        return;
      }
      this.refuseForged(check === 'priority_mismatch' ? 'forged_priority' : 'forged_vrid', r.ip.src, ifname, r.value.vrid, r.value.priority);
      return;
    }
    if (this.handover) {
      // Stopping: a new master on this virtual router lets its VIPs go from here.
      const key = `${ifname}/${r.value.vrid}`;
      const release = this.handover.get(key);
      if (release && r.value.priority > 0) {
        this.handover.delete(key);
        release();
        if (this.handover.size === 0) this.handoverDone?.();
      }
      return;
    }
    this.feed(owner.group, { type: 'member', member: owner.member.name, event: { type: 'advert_received', advert: r.value, from: r.ip.src } });
  }

  private drop(reason: VrrpDropReason): void {
    this.drops = recordDrop(this.drops, reason);
  }

  /** Checks adverts in fwlb peers' names against their BEATs (services/liveness.ts); unset: plain RFC. */
  private advertCheck: ((address: string, vrid: number, priority: number) => AdvertCheck) | undefined;
  /** Called when an instance's state or priority changes, before its adverts go out (a BEAT first). */
  private onOwnChange: (() => void) | undefined;
  /** Priority-0 adverts waiting for their sender's next BEAT, by interface/VRID/source. */
  private readonly held = new Map<string, { owner: { group: GroupRuntime; member: Member }; advert: VrrpAdvert; from: string; atMs: number }>();
  private lastForgedLogAt = -Infinity;

  /** Wires the liveness service in (main.ts): the advert check, and BEATs sent when our state changes. */
  useLiveness(o: { checkAdvert: (address: string, vrid: number, priority: number) => AdvertCheck; onOwnChange: () => void }): void {
    this.advertCheck = o.checkAdvert;
    this.onOwnChange = o.onOwnChange;
  }

  /**
   * A BEAT came from the peer at these addresses: held releases in its name are decided now
   * (taken if it now says it released or is leaving; refused as forged if it still says it
   * is master). Held ones older than `maxAgeMs` are refused too.
   */
  recheckHeld(addresses: ReadonlySet<string>, maxAgeMs: number): void {
    if (this.held.size === 0) return;
    const now = this.deps.clock.now();
    for (const [key, h] of this.held) {
      if (!addresses.has(h.from) && now - h.atMs < maxAgeMs) continue;
      this.held.delete(key);
      const check = this.advertCheck?.(h.from, h.advert.vrid, h.advert.priority) ?? 'ok';
      if (check === 'ok') this.feed(h.owner.group, { type: 'member', member: h.owner.member.name, event: { type: 'advert_received', advert: h.advert, from: h.from } });
      else this.refuseForged('forged_release', h.from, h.owner.member.ifname, h.advert.vrid, 0);
    }
  }

  private refuseForged(reason: 'forged_priority' | 'forged_vrid' | 'forged_release', from: string, ifname: string, vrid: number, priority: number): void {
    this.drop(reason);
    const now = this.deps.clock.now();
    if (now - this.lastForgedLogAt < 10_000) return;
    this.lastForgedLogAt = now;
    this.deps.log.warn({ event: 'forged_advert', reason, from, ifname, vrid, priority }, `advert in the name of fwlb peer ${from} refused: it contradicts the peer's own authenticated state (${reason})`);
  }

  /**
   * One event through a group's machine, and its effects carried out. A timer event comes
   * with its time from the driver (lib/timers.ts: never earlier than its deadline).
   */
  private feed(g: GroupRuntime, event: SyncGroupEvent, at?: number): void {
    const before = g.state;
    const r = stepGroup(g.state, event, at ?? this.deps.clock.now());
    g.state = r.state;
    // Our peers hear of a change in a BEAT before the adverts it causes (a release above all).
    if (this.onOwnChange && Object.entries(r.state.members).some(([n, m]) => before.members[n]?.state !== m.state || before.members[n]?.priority !== m.priority)) this.onOwnChange();
    // An instance that is no longer master stops advertising at once (before the effects:
    // its priority 0, if any, is the last advert of its run).
    for (const [n, m] of Object.entries(r.state.members)) {
      if (before.members[n]?.state === 'master' && m.state !== 'master') this.links.get(g.members.get(n)?.ifname ?? '')?.stopAdvertising(m.config.vrid);
    }
    for (const e of r.effects) this.effect(g, e);
  }

  private effect(g: GroupRuntime, e: SyncGroupEffect): void {
    const { log, net } = this.deps;
    if (e.type === 'log') {
      log[e.level]({ ...e.fields, group: g.name }, e.msg);
      return;
    }
    if (e.type === 'notify') {
      g.transitions++;
      this.notify(g, e.state);
      return;
    }
    const m = g.members.get(e.member);
    if (!m) return;
    const fx = e.effect;
    switch (fx.type) {
      case 'send_advert': {
        const link = this.links.get(m.ifname);
        if (!link) return;
        const dsts = m.unicast.length ? m.unicast : [VRRP_MCAST_GROUP_V4];
        const st = g.state.members[m.name];
        // A master's advert goes on by its own clock, renewed by each of ours; anything else
        // (priority 0, the advert of a machine no longer master) goes once, the clock stopped.
        const periodic = st?.state === 'master' && fx.advert.priority > 0;
        if (!periodic) link.stopAdvertising(fx.advert.vrid);
        for (const dst of dsts) {
          try {
            const payload = encodeAdvert(fx.advert, { src: m.primary, dst });
            // The machine's own advert timer only renews; any other advert (a new master, an
            // answer to a release) leaves now.
            if (periodic) link.advertise(fx.advert.vrid, payload, dst, st.config.advertIntervalMs, ADVERT_LEASE_INTERVALS * st.config.advertIntervalMs, !fx.scheduled);
            else link.send(payload, dst);
          } catch (err) {
            log.warn({ group: g.name, member: m.name, err: (err as Error).message }, 'advert not sent');
          }
        }
        return;
      }
      case 'add_vips':
        for (const a of fx.addresses) this.addressOp(() => net.addAddress(m.ifname, withLen(a)), `add ${a} on ${m.ifname}`);
        return;
      case 'remove_vips': {
        const release = () => {
          for (const a of fx.addresses) this.addressOp(() => net.delAddress(m.ifname, withLen(a)), `remove ${a} from ${m.ifname}`);
        };
        if (this.handover) this.handover.set(`${m.ifname}/${g.state.members[m.name]!.config.vrid}`, release);
        else release();
        return;
      }
      case 'send_garp': {
        const addrs = fx.addresses.map(bare);
        // After the addresses are in place: a GARP for an address we do not hold yet would mislead.
        this.addressOp(async () => {
          if (g.state.members[m.name]?.state !== 'master') return; // left master while the addresses were being added
          this.links.get(m.ifname)?.garp(addrs);
          for (let i = 1; i < g.garp.repeat; i++) {
            const key = `${m.name}/garp/${i}`;
            // Only while still master: a repeat that went out after the instance left master
            // (fault, a higher priority back) pointed the hosts at a node that no longer holds
            // the addresses.
            g.timers.after(key, i * g.garp.intervalMs, () => {
              if (this.running && g.state.members[m.name]?.state === 'master') this.links.get(m.ifname)?.garp(addrs);
            });
          }
          this.garpRefresh(g, m, addrs);
        }, `gratuitous ARP on ${m.ifname}`);
        return;
      }
      case 'arm_timer': {
        const key = `${m.name}/${fx.timer}`;
        g.timers.at(key, fx.atMs, (now) => {
          if (fx.timer === 'master_down') {
            // The adverts that came while this loop was held up are read before the master
            // is declared down: after a stall, timers run before the sockets are read, and
            // a master advertising on time would be taken for dead. One that re-armed the
            // timer leaves nothing to do.
            this.drainLinks();
            if (g.timers.has(key) || !this.running) return;
          }
          this.feed(g, { type: 'member', member: m.name, event: { type: TIMER_EVENT[fx.timer] } }, now);
        });
        return;
      }
      case 'cancel_timer': {
        g.timers.cancel(`${m.name}/${fx.timer}`);
        return;
      }
      case 'notify':
        return; // the group's own notify speaks for its members
      case 'log':
        log[fx.level]({ ...fx.fields, group: g.name, instance: m.name }, fx.msg);
        return;
      case 'count':
        this.counters.set(fx.counter, (this.counters.get(fx.counter) ?? 0) + 1);
        return;
      case 'drop':
        this.drop(fx.reason);
        return;
      default: {
        const never: never = fx;
        log.warn({ effect: never }, 'unknown VRRP effect');
      }
    }
  }

  /** Address changes run one at a time, in order; a failure is logged, never thrown. */
  private addressOp(op: () => Promise<void>, what: string): void {
    this.addressQueue = this.addressQueue.then(op).catch((err: Error) => this.deps.log.error({ err: err.message, what }, 'address change failed'));
  }

  private readonly stateListeners = new Set<GroupStateListener>();

  /**
   * Told of every group state change (master, backup, fault, stop), after it is logged, with
   * the group's VIPs and its notify hook (node/notify.ts runs it; the cluster events hear it).
   */
  onGroupState(cb: GroupStateListener): () => void {
    this.stateListeners.add(cb);
    return () => this.stateListeners.delete(cb);
  }

  private notify(g: GroupRuntime, state: string): void {
    const { log } = this.deps;
    log.info({ event: 'vrrp_group_state', group: g.name, state }, `group ${g.name} is ${state}`);
    const vips = Object.values(g.state.members).flatMap((m) => m.config.addresses);
    for (const cb of this.stateListeners) {
      try {
        cb(g.name, state, { vips, ...(g.notify ? { hook: g.notify } : {}) });
      } catch (err) {
        log.error({ err: (err as Error).message }, 'a group state listener failed');
      }
    }
  }

  status(): VrrpStatus {
    const now = this.deps.clock.now();
    return {
      maintenance: this.maintenance,
      syncDemoted: this.demoted,
      groups: this.groups.map((g) => ({
        name: g.name,
        state: g.state.state,
        transitions: g.transitions,
        instances: Object.entries(g.state.members).map(([mname, s]) => {
          const m = g.members.get(mname)!;
          return {
            name: mname,
            interface: m.ifname,
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
      counters: Object.fromEntries(this.counters),
      drops: Object.fromEntries(Object.entries(this.drops).filter(([, n]) => n > 0)),
      foreignAdverts: this.foreign,
      garpRefreshes: this.garpRefreshes,
      adverts: this.deps.net.advertTiming?.() ?? null,
    };
  }
}
