/**
 * A sync group: VRRP instances that move together, so that a node is master for all of its
 * virtual routers or for none (keepalived's vrrp_sync_group, freevrrpd's vridsdep). Without it
 * a firewall could be master on the outside and backup on the inside, and drop everything.
 *
 * Pure, like the instance machine: `stepGroup(group, event, nowMs) -> { state, effects }`,
 * where effects are the members' effects (tagged with the member) plus the group's own
 * notify and log lines.
 *
 * The rules, after keepalived's (vrrp_sync.c), applied after every event in this order:
 *
 *  1. Fault: if any member has a fault of its own, every member is in fault (we add the
 *     SYNC_GROUP_FAULT source to each). When no member has a fault of its own any more, the
 *     group source is cleared and every member starts over as from Initialize.
 *  2. Backup: when a member leaves master by itself (a higher-priority advert, maintenance,
 *     shutdown), the other masters follow it to backup. They send priority 0 as they go, so
 *     the peer's members all take over after Skew_Time, together.
 *  3. Master: a member never becomes master alone. When it would (its Master_Down_Timer
 *     fired, its preempt delay ran out, it owns the addresses), it stays in backup with
 *     wantState 'master'. When every member is master or wants to be, the group promotes all
 *     of them at once. Preferring backup this way avoids thrashing: a member that still hears
 *     a better master holds the whole group back.
 *
 * Maintenance and shutdown are node-wide: send them with `{ type: 'all' }`.
 */
import {
  initialState,
  step,
  SYNC_GROUP_FAULT,
  type LogLevel,
  type NotifyState,
  type VrrpEffect,
  type VrrpEvent,
  type VrrpInstanceConfig,
  type VrrpInstanceState,
  type VrrpStateName,
} from './instance.js';

export type SyncGroupStateName = VrrpStateName;

export interface SyncGroupState {
  readonly name: string;
  /** Derived: fault if any member is, master if all are, initialize if all are, else backup. */
  readonly state: SyncGroupStateName;
  /** Members by name, in configuration order. */
  readonly members: Readonly<Record<string, VrrpInstanceState>>;
}

export type SyncGroupEvent =
  /** An event for one member (its advert, its timer, its interface). */
  | { type: 'member'; member: string; event: VrrpEvent }
  /** An event for every member (startup, shutdown, maintenance). */
  | { type: 'all'; event: VrrpEvent };

export type SyncGroupEffect =
  | { type: 'member'; member: string; effect: VrrpEffect }
  /** The group's own notify hook (the config's group-level `notify`). */
  | { type: 'notify'; group: string; state: NotifyState }
  | { type: 'log'; level: LogLevel; msg: string; fields: Record<string, unknown> };

export interface SyncGroupStepResult {
  state: SyncGroupState;
  effects: SyncGroupEffect[];
}

/** A stopped group; each member's config gets `syncGroup` set to the group's name. */
export function initialGroupState(name: string, members: Record<string, VrrpInstanceConfig>): SyncGroupState {
  const states = Object.fromEntries(Object.entries(members).map(([m, c]) => [m, initialState({ ...c, syncGroup: name })]));
  return { name, state: 'initialize', members: states };
}

/** Feeds one event to the group at time `nowMs`. Never throws. */
export function stepGroup(group: SyncGroupState, event: SyncGroupEvent, nowMs: number): SyncGroupStepResult {
  const members: Record<string, VrrpInstanceState> = { ...group.members };
  const names = Object.keys(members);
  const fx: SyncGroupEffect[] = [];
  const fields = (extra: Record<string, unknown> = {}) => ({ group: group.name, ...extra });

  const stepMember = (name: string, ev: VrrpEvent): { before: VrrpInstanceState; after: VrrpInstanceState } => {
    const before = members[name] as VrrpInstanceState;
    const r = step(before, ev, nowMs);
    members[name] = r.state;
    for (const effect of r.effects) fx.push({ type: 'member', member: name, effect });
    return { before, after: r.state };
  };

  let targets: string[];
  if (event.type === 'all') {
    targets = names;
  } else if (event.member in members) {
    targets = [event.member];
  } else {
    fx.push({ type: 'log', level: 'warn', msg: 'event for an unknown sync group member', fields: fields({ member: event.member, event: event.event.type }) });
    return { state: group, effects: fx };
  }

  let leftMaster = false;
  let released: string | undefined;
  for (const name of targets) {
    const mark = fx.length;
    const { before, after } = stepMember(name, event.event);
    if (before.state === 'master' && after.state !== 'master') leftMaster = true;
    if (fx.slice(mark).some((e) => e.type === 'member' && e.effect.type === 'released_heard')) released = name;
  }

  // Rule 0: the peer's group moves together too, so a priority 0 heard on one member means
  // the peer is releasing all of them: the other backups take over after Skew_Time as well,
  // instead of waiting for Master_Down_Interval on a link the peer may no longer reach.
  if (released !== undefined) {
    for (const name of names) {
      if (name !== released && (members[name] as VrrpInstanceState).state === 'backup') {
        stepMember(name, { type: 'master_released', why: `the master released ${released} (priority 0)` });
      }
    }
  }

  // Rule 1: one member's fault is everyone's; the last one cleared frees everyone.
  const ownFault = names.some((n) => (members[n] as VrrpInstanceState).faults.some((f) => f !== SYNC_GROUP_FAULT));
  for (const name of names) {
    const has = (members[name] as VrrpInstanceState).faults.includes(SYNC_GROUP_FAULT);
    if (ownFault && !has) stepMember(name, { type: 'fault', source: SYNC_GROUP_FAULT });
    else if (!ownFault && has) stepMember(name, { type: 'fault_cleared', source: SYNC_GROUP_FAULT });
  }

  // Rule 2: a member left master by itself: the other masters follow it to backup.
  if (leftMaster) {
    for (const name of names) {
      if ((members[name] as VrrpInstanceState).state === 'master') stepMember(name, { type: 'group_state', state: 'backup' });
    }
  }

  // Rule 3: promote everyone together once everyone is master or wants to be.
  const all = names.map((n) => members[n] as VrrpInstanceState);
  const wants = (m: VrrpInstanceState) => m.state === 'backup' && m.wantState === 'master';
  if (all.some(wants) && all.every((m) => m.state === 'master' || wants(m))) {
    fx.push({ type: 'log', level: 'info', msg: 'every member wants master: promoting the group', fields: fields() });
    for (const name of names) {
      if ((members[name] as VrrpInstanceState).state === 'backup') stepMember(name, { type: 'group_state', state: 'master' });
    }
  }

  const state = derive(names.map((n) => members[n] as VrrpInstanceState));
  if (state !== group.state) {
    const why = event.type === 'all' ? `${event.event.type} (all members)` : `${event.event.type} on ${event.member}`;
    fx.push({ type: 'log', level: 'info', msg: `sync group ${group.state} -> ${state}`, fields: fields({ from: group.state, to: state, why }) });
    fx.push({ type: 'notify', group: group.name, state: state === 'initialize' ? 'stop' : state });
  }
  return { state: { name: group.name, state, members }, effects: fx };
}

function derive(members: readonly VrrpInstanceState[]): SyncGroupStateName {
  if (members.some((m) => m.state === 'fault')) return 'fault';
  if (members.every((m) => m.state === 'initialize')) return 'initialize';
  if (members.every((m) => m.state === 'master')) return 'master';
  return 'backup';
}
