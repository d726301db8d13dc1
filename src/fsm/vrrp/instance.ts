/**
 * One VRRP instance (one virtual router on one interface): the state machine of RFC 5798
 * section 6.4 (and RFC 3768 6.4 for v2), plus what users rely on beyond the RFC: a fault
 * state, maintenance, preempt delay, sync groups.
 *
 * Pure: `step(state, event, nowMs) -> { state, effects }`. The service carries out the
 * effects (sends adverts, adds addresses, arms real timers) and feeds back events (a timer
 * firing is an event). Nothing here throws on any event, in any state: the unexpected is a
 * log line and a counter.
 *
 * States (RFC 5798 6.4): initialize (stopped), backup, master; and fault (a tracked interface,
 * service or script is down: no addresses, no adverts, no election).
 *
 * Timers (RFC 5798 6.2): master_down (backup only), advert (master only), preempt_delay
 * (backup only). The state records each armed timer's deadline; a timer event that does not
 * match an armed, due timer is stale and ignored, so a late callback can never act twice.
 */
import { compareAddresses, canonicalAddress } from '../../lib/ip-bytes.js';
import { VRRP_PRIO_OWNER, VRRP_PRIO_STOP } from '../../codec/vrrp/constants.js';
import type { InstanceDropReason } from '../../codec/vrrp/drop.js';
import type { VrrpAdvert } from '../../codec/vrrp/packet.js';
import { masterDownInterval, skewFor } from './timers.js';

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

export type VrrpStateName = 'initialize' | 'backup' | 'master' | 'fault';
export type VrrpTimer = 'master_down' | 'advert' | 'preempt_delay';
export type NotifyState = 'master' | 'backup' | 'fault' | 'stop';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Things worth counting besides dropped packets (those are `drop` effects). */
export const VRRP_COUNTERS = [
  'split_brain', // a master heard another master's advert
  'advert_from_lower_priority', // an advert lost to us and was discarded
  'priority_zero_received', // a master released the virtual router
  'priority_zero_sent', // we released it
  'became_master',
  'released_master',
  'preempt_delay_started',
  'held_by_sync_group', // we wanted master, the sync group did not (yet)
  'advert_ignored', // an advert while stopped or in fault
  'stale_timer', // a timer event for a timer no longer armed
  'unexpected_event', // an event that makes no sense in this state
] as const;
export type VrrpCounter = (typeof VRRP_COUNTERS)[number];

/** The fault source a sync group uses when it drags a member into fault (see group.ts). */
export const SYNC_GROUP_FAULT = 'sync_group';

export interface VrrpInstanceConfig {
  /** Instance name for logs ("edge.ext"). */
  name: string;
  version: 2 | 3;
  family: 4 | 6;
  vrid: number;
  /** Configured priority, 1..255; 255 = we own the addresses (RFC 5798 5.2.4). */
  priority: number;
  /** Advertisement_Interval (RFC 5798 6.1), in ms: whole centiseconds (v3) or seconds (v2). */
  advertIntervalMs: number;
  /** The virtual addresses, "a.b.c.d/len" or bare; sent without the length. */
  addresses: string[];
  /** Our own address on the interface: the source of our adverts and the election tie-break. */
  primaryAddress: string;
  /** Preempt_Mode (RFC 5798 6.1). The address owner always preempts, whatever this says. */
  preempt: boolean;
  /** Preempt delay (keepalived's preempt_delay): wait this long before preempting a live lower master. 0 = none. */
  preemptDelayMs: number;
  /** Accept_Mode (RFC 5798 6.1): as master, accept packets addressed to the virtual addresses. */
  acceptMode: boolean;
  /** Name of the sync group this instance belongs to; then becoming master is the group's decision. */
  syncGroup?: string;
  /** The MAY check of RFC 5798 7.1 (address list equals ours unless the sender is the owner). Default true. */
  checkAddresses?: boolean;
  /** v2 Auth Type we send and expect (RFC 3768 5.3.6). Default 0 (none). */
  authType?: number;
}

/** The master a backup follows, as last heard. */
export interface KnownMaster {
  address: string;
  priority: number;
  seenAtMs: number;
}

export interface Transition {
  from: VrrpStateName;
  to: VrrpStateName;
  why: string;
  atMs: number;
}

export interface VrrpInstanceState {
  readonly config: VrrpInstanceConfig;
  readonly state: VrrpStateName;
  /** What we would be if nothing held us back; differs from `state` only while a sync group holds us in backup. */
  readonly wantState: VrrpStateName;
  /** Effective priority (configured, adjusted by tracking). 1..255. */
  readonly priority: number;
  /** Master_Adver_Interval (RFC 5798 6.1): learned from the master's adverts in v3. */
  readonly masterAdverIntervalMs: number;
  /** Deadlines (ms) of the armed timers. */
  readonly timers: Readonly<Partial<Record<VrrpTimer, number>>>;
  /** Deadline of the preempt delay, kept after it expires until the next master change. */
  readonly preemptAtMs?: number;
  /** Active fault sources (interface names, "track:..." names, SYNC_GROUP_FAULT), sorted. */
  readonly faults: readonly string[];
  readonly maintenance: boolean;
  /**
   * Preemption held (issue 20): this node's connection table is not complete (its bulk sync
   * has not finished, or failed), so it must not take the VIPs from a live master that holds
   * the sessions, whatever the priorities. It still takes over when no master is heard.
   * Not for the address owner (RFC 5798: the owner always preempts).
   */
  readonly preemptHeld?: boolean;
  readonly master?: KnownMaster;
  readonly lastTransition?: Transition;
}

export type VrrpEvent =
  /** RFC 5798 6.4.1: the instance is enabled. */
  | { type: 'startup' }
  /** RFC 5798 6.4.2/6.4.3: graceful stop; a master sends priority 0 and releases the addresses. */
  | { type: 'shutdown' }
  /** A decoded advertisement; `from` is the IP source (the sender's primary address). */
  | { type: 'advert_received'; advert: VrrpAdvert; from: string }
  | { type: 'master_down_timer' }
  | { type: 'advert_timer' }
  | { type: 'preempt_delay_timer' }
  /** Effective priority from tracking; clamped to 1..255. */
  | { type: 'priority_changed'; priority: number }
  /** A fault source went bad (an interface down, a tracked service or script failed). */
  | { type: 'fault'; source: string }
  | { type: 'fault_cleared'; source: string }
  | { type: 'maintenance_on' }
  | { type: 'maintenance_off' }
  /** Hold preemption (the connection table is incomplete) or let it run again. */
  | { type: 'preempt_hold'; on: boolean; why?: string }
  /** From the sync group: follow the group to master or to backup (see group.ts). */
  | { type: 'group_state'; state: 'master' | 'backup' }
  /**
   * The master is known to be gone or leaving without an advert of its own on this link:
   * its sync group released another of its routers (priority 0), or the node lost carrier
   * on the link to the peers. A backup treats it as a priority-0 advert: Skew_Time, not
   * Master_Down_Interval. If the master is in fact alive, its next advert restores order.
   */
  | { type: 'master_released'; why: string; skewMs?: number };

export type VrrpEffect =
  /** Encode and send this advert (src = primaryAddress, dst = the VRRP group or the peers). */
  /** `scheduled`: the Adver_Timer's own advert (a clock of its own may send it); else one out of turn, due now. */
  | { type: 'send_advert'; priority: number; advert: VrrpAdvert; scheduled?: true }
  /** Add the virtual addresses; `accept` = accept traffic addressed to them (Accept_Mode or owner). */
  | { type: 'add_vips'; addresses: string[]; accept: boolean }
  | { type: 'remove_vips'; addresses: string[] }
  /** Gratuitous ARP (IPv4) / unsolicited Neighbor Advertisement with R flag (IPv6), RFC 5798 6.4.2. */
  | { type: 'send_garp'; addresses: string[] }
  | { type: 'arm_timer'; timer: VrrpTimer; atMs: number }
  | { type: 'cancel_timer'; timer: VrrpTimer }
  | { type: 'notify'; state: NotifyState }
  | { type: 'log'; level: LogLevel; msg: string; fields: Record<string, unknown> }
  | { type: 'count'; counter: VrrpCounter }
  /**
   * A priority 0 was heard: the router advertising this virtual router let it go. The sync
   * group (group.ts) reads it: the peer is releasing every member, not this one alone.
   */
  | { type: 'released_heard'; from: string }
  /** A received advert rejected by the instance's own checks; count it as vrrp_rx_dropped_total{reason}. */
  | { type: 'drop'; reason: InstanceDropReason };

export interface VrrpStepResult {
  state: VrrpInstanceState;
  effects: VrrpEffect[];
}

// ---------------------------------------------------------------------------------------
// Construction and queries
// ---------------------------------------------------------------------------------------

/** A stopped instance (RFC 5798 6.4.1, Initialize); send it `startup` to begin. */
export function initialState(config: VrrpInstanceConfig): VrrpInstanceState {
  return {
    config,
    state: 'initialize',
    wantState: 'initialize',
    priority: clampPriority(config.priority),
    masterAdverIntervalMs: config.advertIntervalMs,
    timers: {},
    faults: [],
    maintenance: false,
  };
}

/** True when this router owns the virtual addresses (RFC 5798 5.2.4). */
export function isOwner(s: VrrpInstanceState): boolean {
  return s.config.priority === VRRP_PRIO_OWNER;
}

/** Whether a master accepts packets addressed to the virtual addresses (RFC 5798 6.4.3). */
export function acceptsTraffic(s: VrrpInstanceState): boolean {
  return s.state === 'master' && (s.config.acceptMode || isOwner(s));
}

/** The advert this instance sends with the given priority. */
export function ownAdvert(s: VrrpInstanceState, priority: number): VrrpAdvert {
  const c = s.config;
  const addresses = c.addresses.map((a) => canonicalAddress(a) ?? a.split('/')[0] ?? a);
  return c.version === 3
    ? { version: 3, family: c.family, vrid: c.vrid, priority, maxAdvertIntervalMs: c.advertIntervalMs, addresses }
    : { version: 2, family: 4, vrid: c.vrid, priority, advertIntervalMs: c.advertIntervalMs, addresses, authType: c.authType ?? 0 };
}

// ---------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------

/** Feeds one event to the instance at time `nowMs`. Never throws. */
export function step(state: VrrpInstanceState, event: VrrpEvent, nowMs: number): VrrpStepResult {
  const fx: VrrpEffect[] = [];
  const next = dispatch(state, event, nowMs, fx);
  return { state: next, effects: fx };
}


/** Stopping (RFC 5798 6.4.3's Shutdown event): to Initialize; nothing to do when stopped already. */
function shutdown(s: VrrpInstanceState, now: number, fx: VrrpEffect[]): VrrpInstanceState {
  if (s.state === 'initialize') {
    log(s, fx, 'debug', 'shutdown while already stopped');
    return s;
  }
  return enterInitialize(s, now, fx, 'shutdown');
}
function dispatch(s: VrrpInstanceState, ev: VrrpEvent, now: number, fx: VrrpEffect[]): VrrpInstanceState {
  switch (ev.type) {
    case 'startup':
      // RFC 5798 6.4.1: only meaningful when stopped.
      if (s.state !== 'initialize') return unexpected(s, fx, ev.type);
      return becomeActive(s, now, fx, 'startup');

    case 'shutdown':
      return shutdown(s, now, fx);

    case 'advert_received':
      return onAdvert(s, ev.advert, ev.from, now, fx);

    case 'master_down_timer': {
      if (!timerDue(s, 'master_down', now, fx)) return s;
      const fired = withoutTimer(s, 'master_down');
      if (fired.state !== 'backup' || fired.maintenance) return unexpected(fired, fx, ev.type);
      // RFC 5798 6.4.2: the Master_Down_Timer fired: we become master.
      const why = fired.master ? `no advertisement from master ${fired.master.address} for Master_Down_Interval` : 'no master heard (Master_Down_Interval expired)';
      return promote(fired, now, fx, why);
    }

    case 'advert_timer': {
      if (!timerDue(s, 'advert', now, fx)) return s;
      const fired = withoutTimer(s, 'advert');
      if (fired.state !== 'master') return unexpected(fired, fx, ev.type);
      // RFC 5798 6.4.3: the Adver_Timer fired: send an advertisement, reset the timer.
      sendAdvert(fired, fx, fired.priority, true);
      return arm(fired, fx, 'advert', now + fired.config.advertIntervalMs);
    }

    case 'preempt_delay_timer': {
      if (!timerDue(s, 'preempt_delay', now, fx)) return s;
      const fired = withoutTimer(s, 'preempt_delay');
      if (fired.state !== 'backup') return unexpected(fired, fx, ev.type);
      // The delay is over. If the master we follow is still below us, take over now (it will
      // hear our higher priority and step down); otherwise there is nothing left to preempt.
      const m = fired.master;
      if (m && m.priority < fired.priority && preemptMode(fired) && !fired.maintenance) {
        return promote(fired, now, fx, `preempt delay over: our priority ${fired.priority} beats master ${m.address} (${m.priority})`);
      }
      log(fired, fx, 'debug', 'preempt delay over, nothing to preempt');
      return { ...fired, preemptAtMs: undefined };
    }

    case 'priority_changed':
      return onPriorityChanged(s, ev.priority, fx);

    case 'fault': {
      if (s.faults.includes(ev.source)) return s;
      const faulted = { ...s, faults: [...s.faults, ev.source].sort() };
      log(faulted, fx, 'info', 'fault raised', { source: ev.source, faults: faulted.faults });
      // Stopped or already in fault: just remember it; startup / clearing will look at it.
      if (s.state === 'initialize' || s.state === 'fault') return faulted;
      return enterFault(faulted, now, fx, `fault: ${ev.source}`);
    }

    case 'fault_cleared': {
      if (!s.faults.includes(ev.source)) return s;
      const cleared = { ...s, faults: s.faults.filter((f) => f !== ev.source) };
      log(cleared, fx, 'info', 'fault cleared', { source: ev.source, faults: cleared.faults });
      if (cleared.state !== 'fault' || cleared.faults.length > 0) return cleared;
      // Out of fault: start over as from Initialize (owner -> master, others -> backup).
      return becomeActive(cleared, now, fx, `fault cleared: ${ev.source}`);
    }

    case 'maintenance_on': {
      if (s.maintenance) return s;
      const m = { ...s, maintenance: true };
      log(m, fx, 'info', 'maintenance on');
      // A master steps down as on a graceful stop (priority 0, so a backup takes over after
      // Skew_Time) but stays in backup; a backup stops its timers so it never takes over.
      if (m.state === 'master') return enterBackup(m, now, fx, 'maintenance on', { releaseWithPriorityZero: true });
      if (m.state === 'backup') return { ...cancel(cancel(m, fx, 'master_down'), fx, 'preempt_delay'), preemptAtMs: undefined, wantState: 'backup' };
      return m;
    }

    case 'maintenance_off': {
      if (!s.maintenance) return s;
      const m = { ...s, maintenance: false };
      log(m, fx, 'info', 'maintenance off');
      if (m.state !== 'backup') return m;
      // Back in the election as if just started: the owner takes over at once, others wait
      // Master_Down_Interval for a master's advert.
      if (isOwner(m)) return promote(m, now, fx, 'maintenance off (address owner)');
      return arm(m, fx, 'master_down', now + masterDownInterval(m.priority, m.masterAdverIntervalMs, m.config.version));
    }

    case 'preempt_hold': {
      if ((s.preemptHeld ?? false) === ev.on) return s;
      const h = { ...s, preemptHeld: ev.on };
      log(h, fx, 'info', ev.on ? `preemption held: ${ev.why ?? 'our connection table is incomplete'}` : `preemption allowed again${ev.why ? `: ${ev.why}` : ''}`);
      // A preempt delay under way ends here; when released, the next advert of a lower master starts it anew.
      if (ev.on && h.preemptAtMs !== undefined) return { ...cancel(h, fx, 'preempt_delay'), preemptAtMs: undefined };
      return h;
    }

    case 'group_state':
      return onGroupState(s, ev.state, now, fx);

    case 'master_released': {
      if (s.state !== 'backup' || s.maintenance) return s;
      // A caller that knows we are the best of those left (liveness) takes over at once.
      const skew = ev.skewMs ?? skewFor(s.config.version, s.priority, s.masterAdverIntervalMs);
      const at = now + skew;
      const armed = s.timers.master_down;
      if (armed !== undefined && armed <= at) return s;
      log(s, fx, 'info', 'master released; taking over after Skew_Time', { why: ev.why, skewMs: skew });
      return arm({ ...cancel(s, fx, 'preempt_delay'), preemptAtMs: undefined, master: undefined }, fx, 'master_down', at);
    }

    default: {
      const never: never = ev;
      return unexpected(s, fx, String((never as { type?: unknown })?.type));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Advertisements (RFC 5798 6.4.2, 6.4.3, 7.1)
// ---------------------------------------------------------------------------------------

function onAdvert(s: VrrpInstanceState, adv: VrrpAdvert, from: string, now: number, fx: VrrpEffect[]): VrrpInstanceState {
  const reason = instanceCheck(s, adv, from);
  if (reason) {
    fx.push({ type: 'drop', reason });
    // An owner discards every advert (RFC 5798 7.1), but another master on the wire is
    // still a split brain worth shouting about.
    if (reason === 'local_owner' && s.state === 'master' && adv.priority !== VRRP_PRIO_STOP) {
      fx.push({ type: 'count', counter: 'split_brain' });
      log(s, fx, 'warn', 'split brain: another master advertises our addresses; we own them and stay master', {
        peer: from,
        peerPriority: adv.priority,
      });
    } else {
      log(s, fx, 'debug', 'advertisement dropped', { reason, from });
    }
    return s;
  }
  switch (s.state) {
    case 'initialize':
    case 'fault':
      fx.push({ type: 'count', counter: 'advert_ignored' });
      log(s, fx, 'debug', `advertisement ignored in ${s.state}`, { from, priority: adv.priority });
      return s;
    case 'backup':
      return backupAdvert(s, adv, from, now, fx);
    case 'master':
      return masterAdvert(s, adv, from, now, fx);
  }
}

/** The receive checks that need our configuration (RFC 5798 7.1, RFC 3768 7.1). */
function instanceCheck(s: VrrpInstanceState, adv: VrrpAdvert, from: string): InstanceDropReason | undefined {
  const c = s.config;
  if (adv.version !== c.version) return 'version_mismatch';
  if (adv.family !== c.family) return 'family_mismatch';
  if (adv.vrid !== c.vrid) return 'vrid_mismatch';
  if (compareAddresses(from, c.primaryAddress) === 0) return 'own_advert';
  if (adv.version === 2) {
    // RFC 3768 7.1: the auth type and the interval MUST match ours.
    if ((adv.authType ?? 0) !== (c.authType ?? 0)) return 'auth_mismatch';
    if (adv.advertIntervalMs !== c.advertIntervalMs) return 'interval_mismatch';
  }
  // MUST verify that the local router is not the address owner (RFC 5798 7.1).
  if (isOwner(s)) return 'local_owner';
  // MAY verify the address list; if it differs and the sender is not the owner, MUST drop.
  if (c.checkAddresses !== false && adv.priority !== VRRP_PRIO_OWNER && !sameAddressSet(adv.addresses, c.addresses)) return 'address_mismatch';
  return undefined;
}

/** RFC 5798 6.4.2, Backup: "If an ADVERTISEMENT is received". */
function backupAdvert(s: VrrpInstanceState, adv: VrrpAdvert, from: string, now: number, fx: VrrpEffect[]): VrrpInstanceState {
  const v3Interval = adv.version === 3 ? adv.maxAdvertIntervalMs : s.config.advertIntervalMs;

  // The master let go (priority 0): set the Master_Down_Timer to Skew_Time, so the best
  // backup takes over after a fraction of an interval instead of Master_Down_Interval.
  if (adv.priority === VRRP_PRIO_STOP) {
    fx.push({ type: 'count', counter: 'priority_zero_received' }, { type: 'released_heard', from });
    let r: VrrpInstanceState = { ...cancel(s, fx, 'preempt_delay'), preemptAtMs: undefined, master: undefined };
    if (r.maintenance) {
      log(r, fx, 'info', 'master released the virtual router; in maintenance, not taking over', { from });
      return r;
    }
    const skew = skewFor(r.config.version, r.priority, r.masterAdverIntervalMs);
    log(r, fx, 'info', 'master released the virtual router (priority 0); taking over after Skew_Time', { from, skewMs: skew });
    r = arm(r, fx, 'master_down', now + skew);
    return r;
  }

  const preempt = preemptMode(s);
  const delayRunning = preempt && s.config.preemptDelayMs > 0 && (s.preemptAtMs === undefined || now < s.preemptAtMs);
  const accept = !preempt || adv.priority >= s.priority || delayRunning;

  if (!accept) {
    // Preempt_Mode and a lower priority: discard it. Our Master_Down_Timer keeps running and
    // we take over when it fires.
    fx.push({ type: 'count', counter: 'advert_from_lower_priority' });
    log(s, fx, 'debug', 'discarding advertisement from lower-priority master (preempt)', { from, priority: adv.priority, ours: s.priority });
    return { ...s, master: { address: from, priority: adv.priority, seenAtMs: now } };
  }

  // Accept: Set Master_Adver_Interval to the advert's (v3), recompute Master_Down_Interval,
  // reset the Master_Down_Timer. Following a live master ends any wish to become master.
  let r: VrrpInstanceState = {
    ...s,
    masterAdverIntervalMs: v3Interval,
    master: { address: from, priority: adv.priority, seenAtMs: now },
    wantState: 'backup',
  };
  if (v3Interval !== s.masterAdverIntervalMs) {
    log(r, fx, 'info', 'Master_Adver_Interval learned from master', { from, was: s.masterAdverIntervalMs, now: v3Interval });
  }
  if (r.maintenance) return r;
  r = arm(r, fx, 'master_down', now + masterDownInterval(r.priority, r.masterAdverIntervalMs, r.config.version));

  // Preempt delay: a master below us starts the delay once; one at or above us cancels it.
  if (preempt && r.config.preemptDelayMs > 0) {
    if (adv.priority >= r.priority) {
      if (r.preemptAtMs !== undefined) {
        log(r, fx, 'info', 'preempt delay cancelled: master is not below us', { from, priority: adv.priority });
        r = { ...cancel(r, fx, 'preempt_delay'), preemptAtMs: undefined };
      }
    } else if (r.preemptAtMs === undefined) {
      const at = now + r.config.preemptDelayMs;
      fx.push({ type: 'count', counter: 'preempt_delay_started' });
      log(r, fx, 'info', 'lower-priority master; preempting after the delay', { from, priority: adv.priority, ours: r.priority, delayMs: r.config.preemptDelayMs });
      r = arm({ ...r, preemptAtMs: at }, fx, 'preempt_delay', at);
    }
  }
  return r;
}

/** RFC 5798 6.4.3, Master: "If an ADVERTISEMENT is received". */
function masterAdvert(s: VrrpInstanceState, adv: VrrpAdvert, from: string, now: number, fx: VrrpEffect[]): VrrpInstanceState {
  // A router is stepping down: answer at once so the backups see a master (and don't take
  // over after Skew_Time), then reset the Adver_Timer.
  if (adv.priority === VRRP_PRIO_STOP) {
    fx.push({ type: 'count', counter: 'priority_zero_received' }, { type: 'released_heard', from });
    sendAdvert(s, fx, s.priority);
    return arm(s, fx, 'advert', now + s.config.advertIntervalMs);
  }

  // Two masters: a split brain. The RFC decides who stays; we log and count it either way.
  const theyWin = adv.priority > s.priority || (adv.priority === s.priority && compareAddresses(from, s.config.primaryAddress) > 0);
  fx.push({ type: 'count', counter: 'split_brain' });
  log(s, fx, 'warn', 'split brain: another master is advertising', {
    peer: from,
    peerPriority: adv.priority,
    ourPriority: s.priority,
    winner: theyWin ? 'peer' : 'us',
  });

  if (theyWin) {
    // Higher priority, or equal priority and a higher primary address: cancel the Adver_Timer,
    // learn Master_Adver_Interval, recompute Skew_Time and Master_Down_Interval, go Backup.
    const interval = adv.version === 3 ? adv.maxAdvertIntervalMs : s.config.advertIntervalMs;
    const r: VrrpInstanceState = { ...s, masterAdverIntervalMs: interval, master: { address: from, priority: adv.priority, seenAtMs: now } };
    const why =
      adv.priority > s.priority
        ? `higher-priority master ${from} (${adv.priority} > ${s.priority})`
        : `equal-priority master ${from} with a higher address (${adv.priority})`;
    return enterBackup(r, now, fx, why, { releaseWithPriorityZero: false });
  }

  // We win: discard it, but answer at once so the other master hears us and steps down, and
  // refresh the hosts' ARP/ND caches, which the other master may have taken over.
  fx.push({ type: 'count', counter: 'advert_from_lower_priority' });
  sendAdvert(s, fx, s.priority);
  fx.push({ type: 'send_garp', addresses: [...s.config.addresses] });
  return s;
}

// ---------------------------------------------------------------------------------------
// Other events
// ---------------------------------------------------------------------------------------

function onPriorityChanged(s: VrrpInstanceState, wanted: number, fx: VrrpEffect[]): VrrpInstanceState {
  const p = clampPriority(wanted);
  if (p === s.priority) return s;
  const r: VrrpInstanceState = { ...s, priority: p };
  log(r, fx, 'info', 'priority changed', { from: s.priority, to: p, asked: wanted });
  if (r.state === 'master') {
    // Tell the backups now rather than at the next interval: a backup that now outranks us
    // (and preempts) discards our adverts and takes over when its timer fires.
    sendAdvert(r, fx, p);
    return r;
  }
  if (r.state === 'backup' && r.preemptAtMs !== undefined && (!r.master || r.master.priority >= p)) {
    log(r, fx, 'info', 'preempt delay cancelled: master is no longer below us');
    return { ...cancel(r, fx, 'preempt_delay'), preemptAtMs: undefined };
  }
  return r;
}

function onGroupState(s: VrrpInstanceState, want: 'master' | 'backup', now: number, fx: VrrpEffect[]): VrrpInstanceState {
  const group = s.config.syncGroup;
  if (!group) return unexpected(s, fx, `group_state ${want}`);
  if (want === 'master') {
    if (s.state === 'master') return s;
    if (s.state === 'backup' && !s.maintenance && s.faults.length === 0) return enterMaster(s, now, fx, `sync group ${group} goes master`);
    log(s, fx, 'info', 'sync group goes master; this member cannot', { group, state: s.state, maintenance: s.maintenance });
    return s;
  }
  if (s.state === 'master') {
    // A sibling lost mastership: follow it to backup, and say so with priority 0 so the
    // peer's members take over after Skew_Time, together.
    return enterBackup(s, now, fx, `sync group ${group} went to backup`, { releaseWithPriorityZero: true });
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Entering states
// ---------------------------------------------------------------------------------------

/**
 * RFC 5798 6.4.1, "If a Startup event is received": the owner becomes master at once; any
 * other router sets Master_Adver_Interval to Advertisement_Interval, arms the
 * Master_Down_Timer and becomes backup. Also used when a fault clears. With a fault present
 * we go to fault instead.
 */
function becomeActive(s: VrrpInstanceState, now: number, fx: VrrpEffect[], why: string): VrrpInstanceState {
  if (s.faults.length > 0) return enterFault(s, now, fx, `${why}, but faulted (${s.faults.join(', ')})`);
  const r: VrrpInstanceState = { ...s, masterAdverIntervalMs: s.config.advertIntervalMs };
  if (isOwner(r) && !r.maintenance) return promote(r, now, fx, `${why} (address owner, priority 255)`);
  return enterBackup(r, now, fx, why, { releaseWithPriorityZero: false });
}

/**
 * We would become master. Alone, we do. In a sync group the group decides: we stay in backup
 * with wantState 'master', re-arm the Master_Down_Timer, and the group promotes all members
 * together once every one of them wants it (see group.ts).
 */
function promote(s: VrrpInstanceState, now: number, fx: VrrpEffect[], why: string): VrrpInstanceState {
  if (!s.config.syncGroup) return enterMaster(s, now, fx, why);
  // Stay (or become) backup with the Master_Down_Timer re-armed, so the wish is renewed.
  const r =
    s.state === 'backup'
      ? arm(s, fx, 'master_down', now + masterDownInterval(s.priority, s.masterAdverIntervalMs, s.config.version))
      : enterBackup(s, now, fx, why, { releaseWithPriorityZero: false });
  fx.push({ type: 'count', counter: 'held_by_sync_group' });
  // Loud the first time only: a held member renews its wish every Master_Down_Interval.
  log(r, fx, s.wantState === 'master' ? 'debug' : 'info', 'wants master; waiting for the sync group', { group: s.config.syncGroup, why });
  return { ...r, wantState: 'master' };
}

/** RFC 5798 6.4.2 (Master_Down_Timer fired) and 6.4.1 (owner startup): take over. */
function enterMaster(s: VrrpInstanceState, now: number, fx: VrrpEffect[], why: string): VrrpInstanceState {
  let r = cancel(cancel(s, fx, 'master_down'), fx, 'preempt_delay');
  r = { ...r, preemptAtMs: undefined, master: undefined, wantState: 'master' };
  logTransition(r, fx, 'master', why);
  const addresses = [...r.config.addresses];
  fx.push({ type: 'add_vips', addresses, accept: r.config.acceptMode || isOwner(r) });
  // Send an ADVERTISEMENT; gratuitous ARP / unsolicited NA for each address; Adver_Timer.
  sendAdvert(r, fx, r.priority);
  fx.push({ type: 'send_garp', addresses });
  r = arm(r, fx, 'advert', now + r.config.advertIntervalMs);
  fx.push({ type: 'count', counter: 'became_master' });
  return finishTransition(r, fx, 'master', why, now);
}

/**
 * Become backup: from master (lost an election, maintenance, sync group), from initialize
 * (startup) or from fault (cleared). Arms the Master_Down_Timer unless in maintenance.
 */
function enterBackup(
  s: VrrpInstanceState,
  now: number,
  fx: VrrpEffect[],
  why: string,
  opts: { releaseWithPriorityZero: boolean },
): VrrpInstanceState {
  logTransition(s, fx, 'backup', why);
  let r = s.state === 'master' ? leaveMaster(s, fx, opts.releaseWithPriorityZero) : s;
  r = { ...cancel(r, fx, 'preempt_delay'), preemptAtMs: undefined, wantState: 'backup' };
  if (r.maintenance) r = cancel(r, fx, 'master_down');
  else r = arm(r, fx, 'master_down', now + masterDownInterval(r.priority, r.masterAdverIntervalMs, r.config.version));
  return finishTransition(r, fx, 'backup', why, now);
}

/** A fault: no addresses, no adverts, no timers. A master says priority 0 on the way out. */
function enterFault(s: VrrpInstanceState, now: number, fx: VrrpEffect[], why: string): VrrpInstanceState {
  logTransition(s, fx, 'fault', why);
  let r = s.state === 'master' ? leaveMaster(s, fx, true) : s;
  r = { ...cancelAll(r, fx), preemptAtMs: undefined, master: undefined, wantState: 'fault' };
  return finishTransition(r, fx, 'fault', why, now);
}

/** RFC 5798 6.4.2/6.4.3, Shutdown: cancel the timers; a master sends priority 0 first. */
function enterInitialize(s: VrrpInstanceState, now: number, fx: VrrpEffect[], why: string): VrrpInstanceState {
  logTransition(s, fx, 'initialize', why);
  let r = s.state === 'master' ? leaveMaster(s, fx, true) : s;
  r = { ...cancelAll(r, fx), preemptAtMs: undefined, master: undefined, wantState: 'initialize' };
  return finishTransition(r, fx, 'initialize', why, now);
}

/** Leaving master: cancel the Adver_Timer, maybe send priority 0, release the addresses. */
function leaveMaster(s: VrrpInstanceState, fx: VrrpEffect[], priorityZero: boolean): VrrpInstanceState {
  const r = cancel(s, fx, 'advert');
  if (priorityZero) {
    sendAdvert(r, fx, VRRP_PRIO_STOP);
    fx.push({ type: 'count', counter: 'priority_zero_sent' });
  }
  fx.push({ type: 'remove_vips', addresses: [...r.config.addresses] });
  fx.push({ type: 'count', counter: 'released_master' });
  return r;
}

function logTransition(s: VrrpInstanceState, fx: VrrpEffect[], to: VrrpStateName, why: string): void {
  log(s, fx, 'info', `${s.state} -> ${to}`, { from: s.state, to, why });
}

function finishTransition(s: VrrpInstanceState, fx: VrrpEffect[], to: VrrpStateName, why: string, now: number): VrrpInstanceState {
  fx.push({ type: 'notify', state: to === 'initialize' ? 'stop' : to });
  return { ...s, state: to, lastTransition: { from: s.state, to, why, atMs: now } };
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/** Preempt_Mode, except that the address owner always preempts (RFC 5798 6.1). */
function preemptMode(s: VrrpInstanceState): boolean {
  return isOwner(s) || (s.config.preempt && !s.preemptHeld);
}

function sendAdvert(s: VrrpInstanceState, fx: VrrpEffect[], priority: number, scheduled = false): void {
  fx.push({ type: 'send_advert', priority, advert: ownAdvert(s, priority), ...(scheduled ? { scheduled: true as const } : {}) });
}

function arm(s: VrrpInstanceState, fx: VrrpEffect[], timer: VrrpTimer, atMs: number): VrrpInstanceState {
  fx.push({ type: 'arm_timer', timer, atMs });
  return { ...s, timers: { ...s.timers, [timer]: atMs } };
}

function cancel(s: VrrpInstanceState, fx: VrrpEffect[], timer: VrrpTimer): VrrpInstanceState {
  if (s.timers[timer] === undefined) return s;
  fx.push({ type: 'cancel_timer', timer });
  return withoutTimer(s, timer);
}

function cancelAll(s: VrrpInstanceState, fx: VrrpEffect[]): VrrpInstanceState {
  return cancel(cancel(cancel(s, fx, 'master_down'), fx, 'advert'), fx, 'preempt_delay');
}

function withoutTimer(s: VrrpInstanceState, timer: VrrpTimer): VrrpInstanceState {
  const timers = { ...s.timers };
  delete timers[timer];
  return { ...s, timers };
}

/** A timer event counts only if that timer is armed and due; anything else is stale. */
function timerDue(s: VrrpInstanceState, timer: VrrpTimer, now: number, fx: VrrpEffect[]): boolean {
  const at = s.timers[timer];
  if (at !== undefined && now >= at) return true;
  fx.push({ type: 'count', counter: 'stale_timer' });
  log(s, fx, 'debug', 'stale timer event ignored', { timer, armedAt: at ?? null, now });
  // Early: the deadline stands, so it is armed again (a timer must never be lost to an early firing).
  if (at !== undefined) fx.push({ type: 'arm_timer', timer, atMs: at });
  return false;
}

function unexpected(s: VrrpInstanceState, fx: VrrpEffect[], what: string): VrrpInstanceState {
  fx.push({ type: 'count', counter: 'unexpected_event' });
  log(s, fx, 'warn', `unexpected event ${what} in state ${s.state}`, { event: what, state: s.state });
  return s;
}

function log(s: VrrpInstanceState, fx: VrrpEffect[], level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  fx.push({ type: 'log', level, msg, fields: { instance: s.config.name, vrid: s.config.vrid, ...fields } });
}

function clampPriority(p: number): number {
  if (!Number.isFinite(p)) return 1;
  return Math.min(VRRP_PRIO_OWNER, Math.max(1, Math.round(p)));
}

function sameAddressSet(received: readonly string[], configured: readonly string[]): boolean {
  const norm = (list: readonly string[]) => [...new Set(list.map((a) => canonicalAddress(a) ?? a))].sort();
  const a = norm(received);
  const b = norm(configured);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
