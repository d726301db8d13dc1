/**
 * Liveness of the peers (BFD-like, RFC 5880 in spirit): each node sends an authenticated BEAT
 * on the sync link every `intervalMs`; a peer not heard for its own interval x multiplier
 * (what its last BEAT announced, as BFD's detection time uses the remote's) is down. Down is
 * what carrier loss on a cable says today, with no cable needed: a node behind a switch that
 * hangs, or whose processes die, is seen gone in tens of milliseconds.
 *
 * Pure: events in, state and effects out; the service owns the timer and the socket.
 *
 * The rule for a peer that is in fact alive (the sync link broken, adverts still flowing on
 * the data links): `down` only says "no BEAT"; the VRRP service releases the peer's
 * mastership once per down transition (services/vrrp.ts), and the peer's next advert, at
 * most one advert interval later, outranks ours and puts us back to backup. Beats must come
 * back before another release: two masters for at most one advert interval, never a flap.
 */
import type { BeatInstance } from '../codec/sync/message.js';

export type LivenessStateName = 'unknown' | 'up' | 'down';

export interface PeerLiveness {
  readonly state: LivenessStateName;
  /** When the last BEAT came (ms); -Infinity before the first. */
  readonly lastBeatAtMs: number;
  /** The peer's detection time: its announced interval x multiplier. */
  readonly detectMs: number;
  /** What the last BEAT said, and the one before (a change may race an advert). */
  readonly instances: readonly BeatInstance[];
  readonly previous: readonly BeatInstance[];
  /** The peer said it is stopping. */
  readonly leaving: boolean;
  /** When the state last changed (ms). */
  readonly sinceMs: number;
  readonly beats: number;
  readonly downs: number;
}

export type LivenessEvent =
  | { type: 'beat'; intervalMs: number; multiplier: number; leaving: boolean; instances: readonly BeatInstance[] }
  /** The detection timer fired (armed by the `arm` effect). */
  | { type: 'detect' };

export type LivenessEffect =
  | { type: 'up' }
  /** `left`: it said it was stopping; `silent`: no BEAT for its detection time. */
  | { type: 'down'; why: 'left' | 'silent'; silentMs: number }
  /** (Re)arm the detection timer at this time. */
  | { type: 'arm'; atMs: number };

export function initialLiveness(): PeerLiveness {
  return { state: 'unknown', lastBeatAtMs: -Infinity, detectMs: 0, instances: [], previous: [], leaving: false, sinceMs: 0, beats: 0, downs: 0 };
}

export function stepLiveness(s: PeerLiveness, e: LivenessEvent, nowMs: number): { state: PeerLiveness; effects: LivenessEffect[] } {
  const fx: LivenessEffect[] = [];
  if (e.type === 'beat') {
    const detectMs = e.intervalMs * e.multiplier;
    const next: PeerLiveness = {
      ...s,
      state: 'up',
      lastBeatAtMs: nowMs,
      detectMs,
      previous: s.instances,
      instances: e.instances,
      leaving: e.leaving,
      sinceMs: s.state === 'up' ? s.sinceMs : nowMs,
      beats: s.beats + 1,
    };
    if (s.state !== 'up') fx.push({ type: 'up' });
    fx.push({ type: 'arm', atMs: nowMs + detectMs });
    return { state: next, effects: fx };
  }
  // detect
  if (s.state !== 'up') return { state: s, effects: fx };
  const silentMs = nowMs - s.lastBeatAtMs;
  if (silentMs < s.detectMs) {
    // Fired early (timers may), or a BEAT came meanwhile: wait for the rest.
    fx.push({ type: 'arm', atMs: s.lastBeatAtMs + s.detectMs });
    return { state: s, effects: fx };
  }
  fx.push({ type: 'down', why: s.leaving ? 'left' : 'silent', silentMs });
  return { state: { ...s, state: 'down', sinceMs: nowMs, downs: s.downs + 1 }, effects: fx };
}

/**
 * Is an advert that claims to come from this peer consistent with what the peer itself says
 * (authenticated) about that virtual router? Only while the peer is up: without its BEATs
 * there is nothing to check against, and plain RFC behaviour applies.
 *  - 'ok': consistent, or nothing to check against;
 *  - 'priority_mismatch': the peer says another priority for that VRID (a spoofed advert,
 *    e.g. "priority 254" in a backup's name);
 *  - 'release_unconfirmed': priority 0 (a release) while the peer says it is master at a
 *    higher priority and is not leaving: hold it until the next BEAT confirms or not.
 *  - 'unknown_vrid': the peer runs no such virtual router.
 */
export type AdvertCheck = 'ok' | 'priority_mismatch' | 'release_unconfirmed' | 'unknown_vrid';

export function checkAdvert(s: PeerLiveness, vrid: number, priority: number, family: 4 | 6 = 4): AdvertCheck {
  if (s.state !== 'up') return 'ok';
  // IPv4 and IPv6 virtual routers are apart, also with the same VRID (IPv6 ones carry a source).
  const match = (i: BeatInstance) => i.vrid === vrid && (i.source !== undefined) === (family === 6);
  const now = s.instances.find(match);
  const before = s.previous.find(match);
  if (!now && !before) return 'unknown_vrid';
  if (priority === 0) {
    if (s.leaving) return 'ok';
    const released = (i: BeatInstance | undefined) => i !== undefined && (i.priority === 0 || i.state !== 'master');
    return released(now) || released(before) ? 'ok' : 'release_unconfirmed';
  }
  if (now?.priority === priority || before?.priority === priority) return 'ok';
  return 'priority_mismatch';
}
