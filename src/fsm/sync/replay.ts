/**
 * Replay protection and the epoch handshake for one peer: decides whether an authentic
 * message (its HMAC already verified) is fresh. Pure: `check(state, message) -> {state, verdict}`.
 *
 * Freshness has two parts.
 *
 * 1. Epochs. Each daemon draws a random epoch when it starts, and every message names both
 *    its sender's epoch and the epoch of the receiver as the sender knows it ("peer epoch").
 *    A message that names our current epoch was made after we started: it cannot be a
 *    capture from an earlier run. So:
 *    - everything but HELLO must name our current epoch (else `wrong_peer_epoch`);
 *    - a HELLO may name another epoch or none: it is how a peer that does not know us yet
 *      introduces itself ("bootstrap"). We learn its epoch from it, tentatively (unverified);
 *    - the peer's epoch becomes verified by the first message that names our epoch; from then
 *      on only another verified message can replace it (a peer restart: `peer_restarted`),
 *      and an unverified newcomer is refused (`unverified_epoch`) until it has heard us;
 *    - verified epochs the peer used before are remembered (bounded) and refused
 *      (`old_epoch`), so a message captured during one of its earlier runs cannot pass for a
 *      restart. (Before verification a replayed HELLO can displace the peer's tentative
 *      epoch; the real one wins again as soon as the peer names ours.)
 *    The handshake costs one HELLO each way (the link answers a bootstrap HELLO at once).
 *
 * 2. Packet numbers. Inside one epoch every message has a packet number, +1 per message sent
 *    (retransmissions get new numbers). We keep the highest number seen and a bitmap of the
 *    `windowSize` numbers below it, as IPsec does (RFC 4303 3.4.3): a number seen before is a
 *    `duplicate`, one below the window `too_old`. A new epoch starts a new window.
 */
import type { SyncMessage } from '../../codec/sync/message.js';
import { SYNC_REPLAY_WINDOW, SYNC_RETIRED_EPOCHS } from './common.js';

export interface ReplayConfig {
  /** Packet numbers remembered below the highest seen (reordering tolerance). */
  windowSize: number;
  /** Earlier epochs of the peer remembered and refused. */
  retiredEpochs: number;
}

export const DEFAULT_REPLAY_CONFIG: ReplayConfig = { windowSize: SYNC_REPLAY_WINDOW, retiredEpochs: SYNC_RETIRED_EPOCHS };

/** What we know of the peer's current epoch. */
export interface PeerEpoch {
  readonly epoch: number;
  /** The peer has named our current epoch in this epoch: it is live, not a replay. */
  readonly verified: boolean;
  /** Highest packet number accepted in this epoch. */
  readonly highest: number;
  /** Bit i set: packet number `highest - i` was accepted. */
  readonly seen: bigint;
}

export interface ReplayState {
  readonly config: ReplayConfig;
  /** Our own epoch. */
  readonly localEpoch: number;
  readonly peer?: PeerEpoch;
  /** The last epoch of the peer that was verified (the current one, or one now retired). */
  readonly lastVerifiedEpoch?: number;
  /** Epochs the peer used before, newest last. */
  readonly retired: readonly number[];
}

/** Why a fresh-looking, authentic message is refused; counted as `sync_rx_dropped_total{reason}`. */
export const REPLAY_REJECT_REASONS = [
  'wrong_peer_epoch', // not a HELLO, and does not name our current epoch: made for an earlier run of ours
  'old_epoch', // from an epoch the peer used before: a capture
  'unverified_epoch', // a new epoch that has not named ours yet, while the peer's current one is verified
  'duplicate', // a packet number seen before in this epoch
  'too_old', // a packet number below the window
] as const;
export type ReplayRejectReason = (typeof REPLAY_REJECT_REASONS)[number];

/**
 * What an accepted message changed:
 * - `epoch_learned`: a first or replacement epoch, not yet verified (a bootstrap HELLO);
 * - `session_started`: the peer's epoch is verified, and no epoch of it was verified before;
 * - `peer_restarted`: a verified epoch replaced another verified one (a restart);
 * - `none`: nothing new.
 */
export type ReplayNews = 'none' | 'epoch_learned' | 'session_started' | 'peer_restarted';

export type ReplayVerdict = { accept: true; news: ReplayNews; bootstrap: boolean } | { accept: false; reason: ReplayRejectReason; bootstrap: boolean };

/** The header fields the check needs. */
export type ReplayInput = Pick<SyncMessage, 'type' | 'epoch' | 'peerEpoch' | 'packet'>;

export function initialReplayState(localEpoch: number, config: ReplayConfig = DEFAULT_REPLAY_CONFIG): ReplayState {
  return { config, localEpoch, retired: [] };
}

/** True when a session with the peer is up: its epoch is known and verified. */
export function sessionUp(s: ReplayState): boolean {
  return s.peer?.verified === true;
}

/**
 * Checks one authentic message from the peer. `bootstrap` in the verdict says the peer did
 * not name our epoch (a HELLO from a peer that does not know us yet): the link answers it
 * with a HELLO of its own so the handshake completes quickly. Never throws.
 */
export function check(s: ReplayState, m: ReplayInput): { state: ReplayState; verdict: ReplayVerdict } {
  const bound = m.peerEpoch === s.localEpoch;
  const bootstrap = !bound;
  const reject = (reason: ReplayRejectReason) => ({ state: s, verdict: { accept: false as const, reason, bootstrap } });
  const accept = (state: ReplayState, news: ReplayNews) => ({ state, verdict: { accept: true as const, news, bootstrap } });

  // Only a HELLO may come from a peer that does not know our current epoch.
  if (!bound && m.type !== 'hello') return reject('wrong_peer_epoch');
  // An epoch the peer has left behind is never accepted again.
  if (s.retired.includes(m.epoch)) return reject('old_epoch');

  const peer = s.peer;
  if (peer === undefined) {
    // First contact: adopt its epoch, verified if it already names ours.
    const fresh = newWindow(m.epoch, bound, m.packet);
    return accept({ ...s, peer: fresh, lastVerifiedEpoch: bound ? m.epoch : s.lastVerifiedEpoch }, bound ? sessionNews(s, m.epoch) : 'epoch_learned');
  }

  if (m.epoch === peer.epoch) {
    // The epoch we know: the packet number must be new and inside the window.
    const w = s.config.windowSize;
    let next: PeerEpoch;
    if (m.packet > peer.highest) {
      const shift = m.packet - peer.highest;
      const seen = shift >= w ? 1n : ((peer.seen << BigInt(shift)) | 1n) & ((1n << BigInt(w)) - 1n);
      next = { ...peer, highest: m.packet, seen };
    } else {
      const back = peer.highest - m.packet;
      if (back >= w) return reject('too_old');
      const bit = 1n << BigInt(back);
      if ((peer.seen & bit) !== 0n) return reject('duplicate');
      next = { ...peer, seen: peer.seen | bit };
    }
    if (bound && !peer.verified) {
      // The peer has heard us in this epoch: the session is up.
      return accept({ ...s, peer: { ...next, verified: true }, lastVerifiedEpoch: m.epoch }, sessionNews(s, m.epoch));
    }
    return accept({ ...s, peer: next }, 'none');
  }

  // A new epoch. A verified one can only be replaced by a message that proves it is live.
  if (peer.verified && !bound) return reject('unverified_epoch');
  // Only a verified epoch is known to be the peer's past. An unverified one may be the
  // peer's real current epoch, displaced by a replayed HELLO: retiring it would lock the
  // peer out until it restarts.
  const retired = peer.verified ? [...s.retired, peer.epoch].slice(-s.config.retiredEpochs) : s.retired;
  const replaced: ReplayState = { ...s, retired, peer: newWindow(m.epoch, bound, m.packet), lastVerifiedEpoch: bound ? m.epoch : s.lastVerifiedEpoch };
  return accept(replaced, bound ? sessionNews(s, m.epoch) : 'epoch_learned');
}

function newWindow(epoch: number, verified: boolean, packet: number): PeerEpoch {
  return { epoch, verified, highest: packet, seen: 1n };
}

/** A newly verified epoch is a restart when another epoch of the peer was verified before. */
function sessionNews(s: ReplayState, epoch: number): ReplayNews {
  return s.lastVerifiedEpoch !== undefined && s.lastVerifiedEpoch !== epoch ? 'peer_restarted' : 'session_started';
}
