/**
 * The VRRP service: runs the sync groups' pure machines (fsm/vrrp) against the real world.
 * It prepares and commits configurations (a reload: new groups and sockets made before the
 * running ones hand over), feeds the machines received adverts, link changes and tracking
 * (services/vrrp-track.ts), and has their effects carried out (services/vrrp-effects.ts);
 * what the liveness says of the peers applies through services/vrrp-peers.ts; every group
 * state change goes to its listeners (the cluster events, node/assemble.ts).
 *
 * Fast detection, besides short adverts: a peer's priority 0 on one member releases the
 * whole group (fsm/vrrp/group.ts), and carrier loss on the sync link (a cable between the
 * firewalls) releases every group at once, as the peer's power loss would show there first.
 * If the peer is in fact alive (only the cable failed), its adverts on the other links
 * restore order within an interval.
 */
import type { Logger } from 'pino';
import type { BeatInstance } from '../codec/sync/message.js';
import { emptyDropCounters, recordDrop, type DropCounters, type VrrpDropReason } from '../codec/vrrp/drop.js';
import type { NodeView } from '../config/node.js';
import type { Config } from '../config/schema.js';
import { stepGroup, VRRP_COUNTERS, type SyncGroupEvent, type VrrpCounter } from '../fsm/vrrp/index.js';
import type { Clock } from '../lib/clock.js';
import { FwlbError } from '../lib/errors.js';
import type { Failpoint } from '../lib/failpoints.js';
import type { ReceivedAdvert, ScriptRunner, VrrpNet } from '../ports/vrrp-net.js';
import { beatInstances, buildGroups, linkLocalFault, masterHeard, type GroupRuntime, type Member, type VrrpPlan } from './vrrp-groups.js';
import { VrrpLinks } from './vrrp-links.js';
import { vrrpStatus, type VrrpStatus } from './vrrp-status.js';
import { ForgedAdverts, releaseGonePeer, type AdvertChecker } from './vrrp-peers.js';
import { VrrpEffects, withLen } from './vrrp-effects.js';
import { memberOn, scheduleScript, setTracked, type TrackHost } from './vrrp-track.js';

export type { VrrpPlan } from './vrrp-groups.js';
export type { VrrpInstanceStatus, VrrpStatus } from './vrrp-status.js';

/** Why a node holds back from preempting a live master: its table is incomplete, or behind. */
export type PreemptHoldReason = 'table' | 'behind';

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

export { ADVERT_LEASE_INTERVALS } from './vrrp-effects.js';

export class VrrpService {
  private groups: GroupRuntime[] = [];
  /** The sockets, one per interface and family (services/vrrp-links.ts). */
  private readonly links: VrrpLinks;
  /** `${link}/${vrid}` -> the instance that owns it. */
  private readonly byVrid = new Map<string, { group: GroupRuntime; member: Member }>();
  private readonly counters = new Map<VrrpCounter, number>(VRRP_COUNTERS.map((c) => [c, 0]));
  private drops: DropCounters = emptyDropCounters();
  private foreign = 0;
  private unlisten: (() => void)[] = [];
  private syncIfname: string | undefined;
  private maintenance = false;
  private demoted = false;
  /** What the machines were last told (maintenance_on/off). */
  private demotionApplied = false;
  /** Why preemption is held, by reason (see setPreemptHold): held while any reason is. */
  private readonly preemptHolds = new Map<PreemptHoldReason, string>();
  private running = false;
  /** Bumped at every start and stop: callbacks of an earlier run find it changed and do nothing. */
  private generation = 0;
  /** During a graceful stop's handover (VrrpEffects.beginHandover): called when the last held-back release has happened. */
  private handoverDone: (() => void) | undefined;

  /** What the tracking (services/vrrp-track.ts) needs of the service. */
  private readonly trackHost: TrackHost;
  /** The groups' effects carried out (services/vrrp-effects.ts). */
  private readonly effects: VrrpEffects;

  constructor(readonly deps: VrrpDeps) {
    this.links = new VrrpLinks({ net: deps.net, log: deps.log, onPacket: (link, r) => this.onPacket(link, r) });
    this.trackHost = { log: deps.log, clock: deps.clock, scripts: deps.scripts, running: () => this.running, generation: () => this.generation, feed: (g, e) => this.feed(g, e) };
    this.effects = new VrrpEffects({
      deps,
      links: this.links.io,
      running: () => this.running,
      feed: (g, event, at) => this.feed(g, event, at),
      drainLinks: () => this.drainLinks(),
      count: (counter) => this.counters.set(counter, (this.counters.get(counter) ?? 0) + 1),
      drop: (reason) => this.drop(reason),
      notify: (g, state) => this.notify(g, state),
    });
    this.forged = new ForgedAdverts({
      clock: deps.clock,
      log: deps.log,
      drop: (reason) => this.drop(reason),
      accept: (owner, advert, from) => this.feed(owner.group, { type: 'member', member: owner.member.name, event: { type: 'advert_received', advert, from } }),
    });
  }

  /**
   * Everything of a new VRRP configuration that can fail, with nothing of the running one
   * touched: the groups built, each interface checked, the sockets of links not open yet
   * opened. Throws (ERR_VRRP_PREPARE, the reason) with whatever it opened closed again.
   */
  prepare(c: Config, view: NodeView): VrrpPlan {
    const plan = buildGroups(c, view, this.deps.clock, (ifname) => this.deps.net.linkLocals(ifname));
    try {
      for (const g of plan.groups) this.links.open(g.members.values(), plan.opened);
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
    const used = new Set(plan.groups.flatMap((g) => [...g.members.values()].map((m) => m.link)));
    const keep = new Set([...used].filter((i) => !plan.opened.has(i)));
    if (this.running) await this.shutdown(keep);
    if (this.deps.failpoint?.('vrrp.commit')) {
      // Half-way: the running groups are gone, the new ones not started (FWLB_FAILPOINTS).
      this.discard(plan);
      throw new FwlbError('ERR_FAILPOINT', 'failpoint vrrp.commit (FWLB_FAILPOINTS)');
    }
    this.links.closeExcept(keep);
    this.install(plan);
    await this.start();
  }

  private install(plan: VrrpPlan): void {
    this.groups = plan.groups;
    this.byVrid.clear();
    for (const [k, v] of plan.byVrid) this.byVrid.set(k, v);
    this.syncIfname = plan.syncIfname;
    for (const [link, l] of plan.opened) this.links.set(link, l.io, l.primary);
    plan.opened.clear();
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
      for (const g of this.groups) this.links.open(g.members.values());
    } catch (e) {
      this.links.closeExcept();
      throw e;
    }
    this.running = true;
    this.generation++;
    this.unlisten = [net.onLinkChange((ifname, up) => this.onLinkChange(ifname, up)), net.onLinkLocal((ifname) => this.running && this.links.linkLocalChanged(this.groups, ifname, net.linkLocals(ifname), (g, e) => this.feed(g, e)))];
    // Maintenance (a runtime change replayed at start) and the sync's hold are in place before
    // the startup: an address owner in maintenance never takes over, even for a moment.
    this.demotionApplied = false;
    this.applyDemotion();
    for (const g of this.groups) {
      // Interfaces already down, and IPv6 members without a link-local address yet, start as faults.
      for (const ifname of g.trackedInterfaces) if (net.linkUp(ifname) === false) this.feed(g, { type: 'member', member: memberOn(g, ifname), event: { type: 'fault', source: `interface:${ifname}` } });
      for (const m of g.members.values()) if (!m.primary) this.feed(g, { type: 'member', member: m.name, event: { type: 'fault', source: linkLocalFault(m.ifname) } });
      this.feed(g, { type: 'all', event: { type: 'startup' } });
      scheduleScript(g, 0, this.trackHost);
    }
    // Link-local addresses that came or went since the prepare read them (DAD passing while
    // the stale VIPs were cleared above, before we listened): taken now, not waited for.
    const feed = (g: GroupRuntime, e: SyncGroupEvent) => this.feed(g, e);
    for (const ifname of new Set(this.groups.flatMap((g) => [...g.members.values()].filter((m) => m.family === 6).map((m) => m.ifname)))) this.links.linkLocalChanged(this.groups, ifname, net.linkLocals(ifname), feed);
    if (this.preemptHolds.size) for (const g of this.groups) this.feed(g, { type: 'all', event: { type: 'preempt_hold', on: true, why: this.holdWhy() } });
    log.info({ event: 'vrrp_started', groups: this.groups.map((g) => g.name) }, 'VRRP running');
  }

  /**
   * Graceful stop: priority 0 on every link a master holds, so the best backup takes over
   * after Skew_Time; our VIPs stay (and we forward on) until that new master is heard on
   * each virtual router, at most Master_Down_Interval; then they go and the sockets close.
   */
  async shutdown(keepLinks: ReadonlySet<string> = new Set()): Promise<void> {
    if (!this.running) return;
    this.effects.beginHandover();
    for (const g of this.groups) this.feed(g, { type: 'all', event: { type: 'shutdown' } });
    this.generation++;
    for (const g of this.groups) {
      g.timers.cancelAll();
      g.script?.timer?.cancel();
    }
    if (this.effects.held().length > 0) {
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
      const unconfirmed = this.effects.held();
      this.deps.log.info({ event: 'handover', waitedMs: Math.round(this.deps.clock.now() - t0), unconfirmed }, unconfirmed.length ? 'handover: no new master heard on some links, releasing anyway' : 'handover confirmed by the new master');
    }
    this.effects.endHandover();
    await this.effects.settled();
    for (const u of this.unlisten.splice(0)) u();
    // A reload's new configuration may go on with some links (commit): those stay open.
    this.links.closeExcept(keepLinks);
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
   * By the state sync: while this node's connection table is incomplete (`table`), or it is
   * behind a peer's changes by more than the lag bound (`behind`: the BEATs say so, or its
   * kernel writes wait), it must not take the VIPs from a live master that holds the
   * sessions (a higher priority with preempt would otherwise do so as soon as the demotion
   * ends, even when the bulk sync gave up). It still takes over when no master is heard: an
   * incomplete table beats no firewall. Held while any reason is.
   */
  setPreemptHold(on: boolean, why: string, reason: PreemptHoldReason = 'table'): void {
    if (on === this.preemptHolds.has(reason)) return;
    const before = this.preemptHolds.size > 0;
    if (on) this.preemptHolds.set(reason, why);
    else this.preemptHolds.delete(reason);
    const held = this.preemptHolds.size > 0;
    const all = this.holdWhy();
    this.deps.log.info({ event: 'preempt_hold', on: held, reason, reasonOn: on, why }, held ? `preemption held: ${all}` : `preemption allowed: ${why}`);
    if (this.running && held !== before) for (const g of this.groups) this.feed(g, { type: 'all', event: { type: 'preempt_hold', on: held, why: held ? all : why } });
  }

  /** Whether preemption is held, and why (every reason). */
  preemptHold(): { held: boolean; why: string[] } {
    return { held: this.preemptHolds.size > 0, why: [...this.preemptHolds.values()] };
  }

  private holdWhy(): string {
    return [...this.preemptHolds.values()].join('; ');
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
    return masterHeard(this.groups, this.deps.clock.now());
  }

  /** Our instances as a liveness BEAT reports them, in config order (every node has the same order). */
  beatInstances(): BeatInstance[] {
    return beatInstances(this.groups, this.running);
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
    for (const g of this.groups) setTracked(g, `service:${service}`, available, this.trackHost);
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
    return releaseGonePeer(this.groups, this.deps.clock.now(), { addresses, why, outranked, stillGone }, { running: () => this.running, feed: (g, e) => this.feed(g, e) });
  }

  /** Reads every VRRP socket now (see arm_timer): adverts already received are not ignored. */
  private drainLinks(): void {
    this.links.drain();
  }

  private onLinkChange(ifname: string, up: boolean): void {
    if (!this.running) return;
    for (const g of this.groups) {
      if (!g.trackedInterfaces.has(ifname)) continue;
      const event = up ? ({ type: 'fault_cleared', source: `interface:${ifname}` } as const) : ({ type: 'fault', source: `interface:${ifname}` } as const);
      this.feed(g, { type: 'member', member: memberOn(g, ifname), event });
    }
    if (!up && ifname === this.syncIfname) {
      this.deps.log.warn({ event: 'sync_link_down', ifname }, 'carrier lost on the sync link: taking the peer for gone');
      for (const g of this.groups) this.feed(g, { type: 'all', event: { type: 'master_released', why: `carrier lost on the sync link ${ifname}` } });
    }
  }

  private onPacket(link: string, r: ReceivedAdvert): void {
    if (!r.ok) {
      this.drop(r.reason);
      return;
    }
    const owner = this.byVrid.get(`${link}/${r.value.vrid}`);
    if (!owner) {
      // Another virtual router on this link (another cluster, a router): not ours to judge.
      this.foreign++;
      return;
    }
    if (r.src === owner.member.primary) {
      this.drop('own_advert');
      return;
    }
    // An advert in an fwlb peer's name is held to what the peer says itself in its BEATs.
    if (!this.forged.judge(owner, owner.member.ifname, r.value, r.src)) return;
    if (this.effects.handingOver()) {
      // Stopping: a new master on this virtual router lets its VIPs go from here.
      if (this.effects.handoverStep({ type: 'master_heard', key: `${link}/${r.value.vrid}`, priority: r.value.priority })) this.handoverDone?.();
      return;
    }
    this.feed(owner.group, { type: 'member', member: owner.member.name, event: { type: 'advert_received', advert: r.value, from: r.src } });
  }

  private drop(reason: VrrpDropReason): void {
    this.drops = recordDrop(this.drops, reason);
  }

  /** Adverts in fwlb peers' names, held to their BEATs (services/vrrp-forged.ts). */
  private readonly forged: ForgedAdverts<{ group: GroupRuntime; member: Member }>;
  /** Called when an instance's state or priority changes, before its adverts go out (a BEAT first). */
  private onOwnChange: (() => void) | undefined;

  /** Wires the liveness service in (node/assemble.ts): the advert check, and BEATs sent when our state changes. */
  useLiveness(o: { checkAdvert: AdvertChecker; onOwnChange: () => void; wantBeat?: () => void }): void {
    this.forged.use(o.checkAdvert, o.wantBeat);
    this.onOwnChange = o.onOwnChange;
  }

  /** A BEAT came from the peer at these addresses: its held releases are decided now (ForgedAdverts.recheck). */
  recheckHeld(addresses: ReadonlySet<string>, maxAgeMs: number): void {
    this.forged.recheck(addresses, maxAgeMs);
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
      if (before.members[n]?.state === 'master' && m.state !== 'master') this.links.io.get(g.members.get(n)?.link ?? '')?.stopAdvertising(m.config.vrid);
    }
    for (const e of r.effects) this.effects.run(g, e);
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
    return vrrpStatus({ preemptHold: this.preemptHold(), groups: this.groups, now: this.deps.clock.now(), maintenance: this.maintenance, demoted: this.demoted, counters: this.counters, drops: this.drops, foreign: this.foreign, garpRefreshes: this.effects.garpRefreshes, adverts: this.deps.net.advertTiming?.() ?? null });
  }
}
