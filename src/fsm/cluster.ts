/**
 * The node's place in the cluster, as one pure machine (issue 21): what the subsystems report
 * goes in (the liveness's peers, VRRP's group states, the bulk sync's progress, the shared
 * links, the buckets the kernel owns, reloads, the stop), and the cluster events come out,
 * each said once, when it becomes true: ready / not ready (with the reason), VIPs held /
 * released (per VRRP group), buckets owned / given up (the difference, not the whole set),
 * peer up / down / leaving, config applied / refused, stopping. Consumers (notify hooks,
 * metrics, status, the status page, BIRD, config distribution) subscribe to the events; none
 * reads another subsystem's counters or state to find out.
 *
 *   step(state, input, now) -> { state, events }
 *
 * Readiness is the conjunction the daemon has always used, now in one place: started, not
 * stopping, VRRP running where configured, the connection table complete (bulk sync done or
 * alone), every shared link up. Its reason names the first condition that fails.
 */

export type PeerState = 'up' | 'down' | 'leaving';

export type ClusterInput =
  | { type: 'started'; vrrp: boolean; sync: boolean; sharedLinks: readonly string[] }
  /** VRRP started or stopped (a start, a reload's restart, a failed one); `configured`: the config has VRRP groups now. */
  | { type: 'vrrp_running'; running: boolean; configured?: boolean }
  | { type: 'peer'; peer: string; state: PeerState }
  | { type: 'group'; group: string; state: string; vips: readonly string[]; hook?: string }
  | { type: 'table'; complete: boolean; progress: string }
  | { type: 'link'; ifname: string; up: boolean }
  | { type: 'buckets'; owned: readonly number[] }
  | { type: 'config'; ok: true; digest: string; changed: boolean }
  | { type: 'config'; ok: false; reason: string }
  | { type: 'stopping'; why: string };

export type ClusterEvent =
  | { type: 'ready'; ready: boolean; reason: string }
  | { type: 'vips_held'; group: string; vips: readonly string[] }
  | { type: 'vips_released'; group: string; vips: readonly string[] }
  | { type: 'buckets_owned'; buckets: readonly number[] }
  | { type: 'buckets_given_up'; buckets: readonly number[] }
  | { type: 'peer_up' | 'peer_down' | 'peer_leaving'; peer: string }
  /** A VRRP group's state changed; its VIPs as configured, and its notify hook where it has one. */
  | { type: 'group_state'; group: string; from: string; to: string; vips: readonly string[]; hook?: string }
  | { type: 'config_applied'; digest: string; changed: boolean }
  | { type: 'config_refused'; reason: string }
  | { type: 'stopping'; why: string };

/** An event as the stream carries it: what, and when (the clock's ms). */
export type Stamped = ClusterEvent & { at: number };

export interface ClusterState {
  started: boolean;
  stopping: boolean;
  /** Parts configured (a part not configured never holds readiness back). */
  has: { vrrp: boolean; sync: boolean };
  vrrpRunning: boolean;
  table: { complete: boolean; progress: string };
  /** Shared links that are down. */
  linksDown: readonly string[];
  peers: Readonly<Record<string, PeerState>>;
  /** Per VRRP group: its state and the VIPs it holds now (none unless master). */
  groups: Readonly<Record<string, { state: string; held: readonly string[] }>>;
  owned: readonly number[];
  ready: ReadyVerdict;
}

export function initialCluster(): ClusterState {
  return {
    started: false,
    stopping: false,
    has: { vrrp: false, sync: false },
    vrrpRunning: false,
    table: { complete: false, progress: 'not started' },
    linksDown: [],
    peers: {},
    groups: {},
    owned: [],
    ready: { ready: false, reason: 'starting', blocker: 'starting' },
  };
}

/** Which condition holds readiness back (null when ready): a status may say more of it (the bulk sync's progress). */
export type Blocker = 'stopping' | 'starting' | 'vrrp' | 'table' | 'links';

export interface ReadyVerdict {
  ready: boolean;
  reason: string;
  blocker: Blocker | null;
}

const notReady = (blocker: Blocker, reason: string): ReadyVerdict => ({ ready: false, reason, blocker });

/** Ready, or the first reason it is not: the node's one readiness (the daemon's status and `--wait-ready` read it). */
export function readiness(s: ClusterState): ReadyVerdict {
  if (s.stopping) return notReady('stopping', 'stopping');
  if (!s.started) return notReady('starting', 'starting');
  if (s.has.vrrp && !s.vrrpRunning) return notReady('vrrp', 'VRRP not running');
  if (s.has.sync && !s.table.complete) return notReady('table', s.table.progress);
  if (s.linksDown.length) return notReady('links', `shared link${s.linksDown.length > 1 ? 's' : ''} down: ${s.linksDown.join(', ')}`);
  return { ready: true, reason: 'ready', blocker: null };
}

const sortedDiff = (a: readonly number[], b: readonly number[]): number[] => {
  const inB = new Set(b);
  return a.filter((x) => !inB.has(x));
};

export function stepCluster(s: ClusterState, input: ClusterInput): { state: ClusterState; events: ClusterEvent[] } {
  const events: ClusterEvent[] = [];
  let next: ClusterState = s;
  switch (input.type) {
    case 'started':
      next = { ...s, started: true, has: { vrrp: input.vrrp, sync: input.sync }, table: input.sync ? s.table : { complete: true, progress: 'no state sync' }, linksDown: input.sharedLinks };
      break;
    case 'vrrp_running':
      next = { ...s, vrrpRunning: input.running, has: input.configured === undefined ? s.has : { ...s.has, vrrp: input.configured } };
      break;
    case 'table':
      next = { ...s, table: { complete: input.complete, progress: input.progress } };
      break;
    case 'link': {
      const down = s.linksDown.filter((l) => l !== input.ifname);
      next = { ...s, linksDown: input.up ? down : [...down, input.ifname].sort() };
      break;
    }
    case 'peer': {
      const was = s.peers[input.peer];
      if (was === input.state) break;
      next = { ...s, peers: { ...s.peers, [input.peer]: input.state } };
      events.push({ type: input.state === 'up' ? 'peer_up' : input.state === 'down' ? 'peer_down' : 'peer_leaving', peer: input.peer });
      break;
    }
    case 'group': {
      const was = s.groups[input.group] ?? { state: 'init', held: [] };
      const held = input.state === 'master' ? [...input.vips].sort() : [];
      if (was.state !== input.state) events.push({ type: 'group_state', group: input.group, from: was.state, to: input.state, vips: input.vips, ...(input.hook ? { hook: input.hook } : {}) });
      const gained = held.filter((v) => !was.held.includes(v));
      const lost = was.held.filter((v) => !held.includes(v));
      if (lost.length) events.push({ type: 'vips_released', group: input.group, vips: lost });
      if (gained.length) events.push({ type: 'vips_held', group: input.group, vips: gained });
      next = { ...s, groups: { ...s.groups, [input.group]: { state: input.state, held } } };
      break;
    }
    case 'buckets': {
      const owned = [...new Set(input.owned)].sort((a, b) => a - b);
      const given = sortedDiff(s.owned, owned);
      const taken = sortedDiff(owned, s.owned);
      if (given.length) events.push({ type: 'buckets_given_up', buckets: given });
      if (taken.length) events.push({ type: 'buckets_owned', buckets: taken });
      next = { ...s, owned };
      break;
    }
    case 'config':
      events.push(input.ok ? { type: 'config_applied', digest: input.digest, changed: input.changed } : { type: 'config_refused', reason: input.reason });
      break;
    case 'stopping':
      if (s.stopping) break;
      next = { ...s, stopping: true };
      events.push({ type: 'stopping', why: input.why });
      break;
    default: {
      const never: never = input;
      throw new Error(`unknown cluster input ${JSON.stringify(never)}`);
    }
  }
  const r = readiness(next);
  if (r.ready !== next.ready.ready || (!r.ready && r.reason !== next.ready.reason)) {
    // Readiness is said when it changes, and while not ready when its reason does.
    events.push({ type: 'ready', ready: r.ready, reason: r.reason });
    next = { ...next, ready: r };
  }
  return { state: next, events };
}
