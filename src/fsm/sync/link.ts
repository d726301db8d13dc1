/**
 * One peer link: the replay check, the epoch handshake, keepalives and liveness, the reliable
 * sender and receiver, put together and turned into whole messages. Pure: `step(state, event,
 * nowMs)`. The service keeps one link per peer; it decodes datagrams (`codec/sync`) and feeds
 * them in as `received`, encodes and sends the `send` effects, runs the timers, and passes the
 * rest (deliveries, bulk requests, sessions, liveness) to the conntrack writer and the bulk
 * machine (bulk.ts), which is one per node, not per link.
 *
 * What happens to a received message, in order:
 *  1. it must come from our peer and be addressed to us (`misdirected`);
 *  2. replay.ts decides if it is fresh (epochs, packet numbers);
 *  3. a newly verified peer epoch resets both streams (`session` effect: first contact or
 *     restart) and is greeted with a HELLO (which verifies us to the peer, if need be);
 *     the peer counts as alive until `deadIntervalMs` passes without a message;
 *  4. without a session only the HELLO handshake runs; with one, a piggybacked ack goes to
 *     the sender, DATA and BULK_END to the receiver, any other header's sequence to the
 *     receiver as the peer's next sequence (tail-loss detection);
 *  5. a HELLO that did not name our epoch is answered at once with ours.
 *
 * Every message we send names the peer's epoch as we know it, gets the next packet number,
 * and carries our cumulative ack once a session exists.
 */
import type { SeqRange, SyncMessage, SyncRecord } from '../../codec/sync/message.js';
import type { LogEffect, LogLevel } from './common.js';
import { type StreamUnit, SYNC_DEAD_INTERVAL_MS, SYNC_HELLO_INTERVAL_MS } from './common.js';
import { check, initialReplayState, sessionUp, type ReplayConfig, type ReplayRejectReason, type ReplayState, DEFAULT_REPLAY_CONFIG } from './replay.js';
import * as receiver from './receiver.js';
import * as sender from './sender.js';

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

/** A receive window told below this many messages is told again at once when it opens. */
const WINDOW_UPDATE_BELOW = 8;

export interface LinkConfig {
  /** Peer name for logs. */
  name: string;
  /** Our node id and the peer's (positions in the config's node list). */
  self: number;
  peer: number;
  /** Our epoch: random, non-zero, drawn once per daemon start (by main, not here). */
  epoch: number;
  helloIntervalMs: number;
  deadIntervalMs: number;
  /** Shortest gap between two HELLOs sent to answer a bootstrap HELLO. */
  helloReplyHoldoffMs: number;
  sender?: Partial<sender.SenderConfig>;
  receiver?: Partial<receiver.ReceiverConfig>;
  replay?: ReplayConfig;
}

export const LINK_TIMERS = ['hello', 'dead', 'retransmit', 'ack'] as const;
export type LinkTimer = (typeof LINK_TIMERS)[number];

export interface LinkState {
  readonly config: LinkConfig;
  readonly started: boolean;
  readonly replay: ReplayState;
  readonly sender: sender.SenderState;
  readonly receiver: receiver.ReceiverState;
  /** Packet number of the next message we send. */
  readonly nextPacket: number;
  /** The peer has been heard within the dead interval. */
  readonly peerAlive: boolean;
  readonly lastHeardAtMs?: number;
  readonly lastHelloAtMs?: number;
  /** The peer epoch our last HELLO named (0: none). */
  readonly lastHelloPeerEpoch: number;
  /** Our own bulk sync is complete (sent as the HELLO flag SYNCED). */
  readonly localSynced: boolean;
  /** The peer's, from its last HELLO. */
  readonly peerSynced: boolean;
  /**
   * The peer said it is on its way out: its HELLO went from synced to not synced within one
   * session (a node's table only stops counting when it stops). Cleared by its next session.
   */
  readonly peerLeaving: boolean;
  /** Messages past our ack we can take now (our writes' room), sent with every ack; undefined: no limit. */
  readonly rxRoom?: number;
  /** The window our last message told the peer. */
  readonly rxRoomTold?: number;
  /** Deadlines of the link's own timers. */
  readonly timers: Readonly<Partial<Record<'hello' | 'dead', number>>>;
}

/** Why the link refuses an authentic message; with the codec's reasons, `sync_rx_dropped_total{reason}`. */
export type LinkDropReason = ReplayRejectReason | 'misdirected' | 'no_session';

export type LinkEvent =
  /** Begin: say hello. */
  | { type: 'start' }
  /** A decoded, authenticated message from the wire. */
  | { type: 'received'; msg: SyncMessage }
  /** Replicate these records to the peer. */
  | { type: 'enqueue'; records: readonly SyncRecord[]; bulk?: boolean }
  | { type: 'enqueue_bulk_end'; requestId: number; count: number }
  /** A bulk transfer to this peer begins (see sender.ts, resync). */
  | { type: 'bulk_begin' }
  /** The bulk machine asks this peer for its table. */
  | { type: 'send_bulk_request'; requestId: number }
  /** Our bulk sync is (no longer) complete. */
  | { type: 'set_synced'; synced: boolean }
  /** How many more messages we can take (the writes behind them have room); undefined: no limit. */
  | { type: 'rx_room'; room: number | undefined }
  | { type: 'timer'; timer: LinkTimer };

export type LinkEffect =
  /** Encode with the sync key and send to the peer's sync address. */
  | { type: 'send'; msg: SyncMessage }
  | { type: 'arm_timer'; timer: LinkTimer; atMs: number }
  | { type: 'cancel_timer'; timer: LinkTimer }
  /** Records from the peer, in order, exactly once: write them into conntrack. */
  | { type: 'deliver'; seq: number; bulk: boolean; records: readonly SyncRecord[] }
  /** The peer's BULK_END, in order after the transfer's records (for bulk.ts). */
  | { type: 'bulk_end'; requestId: number; count: number }
  /** The peer asks for our table (for bulk.ts, serving side). */
  | { type: 'bulk_request'; requestId: number }
  /** A session began: the first with this peer (`restarted` false) or after a restart. */
  | { type: 'session'; restarted: boolean; peerEpoch: number }
  | { type: 'peer_alive' }
  | { type: 'peer_dead' }
  /** Our queue to the peer overflowed / the peer caught up: see sender.ts. */
  | { type: 'resync_needed'; why: 'overflow' | 'peer_dead'; droppedRecords: number }
  | { type: 'resync_ready' }
  /** Live changes the peer acknowledged, with their lag (sender.ts). */
  | { type: 'acked'; lags: { ms: number; records: number }[] }
  | { type: 'drop'; reason: LinkDropReason }
  | LogEffect
  | { type: 'count'; counter: LinkCounter; by: number };

/** Counter names: the sub-machines' counters, prefixed, and the link's own. */
export type LinkCounter = `sender_${sender.SenderCounter}` | `receiver_${receiver.ReceiverCounter}` | 'stale_timer';

export interface LinkStepResult {
  state: LinkState;
  effects: LinkEffect[];
}

// ---------------------------------------------------------------------------------------
// Construction and queries
// ---------------------------------------------------------------------------------------

export function linkConfig(c: Pick<LinkConfig, 'name' | 'self' | 'peer' | 'epoch'> & Partial<LinkConfig>): LinkConfig {
  return {
    helloIntervalMs: SYNC_HELLO_INTERVAL_MS,
    deadIntervalMs: SYNC_DEAD_INTERVAL_MS,
    helloReplyHoldoffMs: SYNC_HELLO_INTERVAL_MS / 10,
    ...c,
  };
}

export function initialLinkState(config: LinkConfig): LinkState {
  return {
    config,
    started: false,
    replay: initialReplayState(config.epoch, config.replay ?? DEFAULT_REPLAY_CONFIG),
    sender: sender.initialSenderState({ name: config.name, ...config.sender }),
    receiver: receiver.initialReceiverState({ name: config.name, ...config.receiver }),
    nextPacket: 1,
    lastHelloPeerEpoch: 0,
    peerAlive: false,
    localSynced: false,
    peerSynced: false,
    peerLeaving: false,
    timers: {},
  };
}

/** A session with the peer is up (its epoch verified). */
export function hasSession(s: LinkState): boolean {
  return sessionUp(s.replay);
}

/** For `fwlb status` and metrics. */
export function linkStatus(s: LinkState, nowMs: number) {
  return {
    peer: s.config.name,
    session: hasSession(s),
    alive: s.peerAlive,
    peerEpoch: s.replay.peer?.epoch ?? 0,
    peerSynced: s.peerSynced,
    peerLeaving: s.peerLeaving,
    lagMs: sender.lagMs(s.sender, nowMs),
    queuedMessages: sender.queueSize(s.sender),
    queuedRecords: sender.queuedRecords(s.sender),
    inFlight: s.sender.inFlight.length,
    resync: s.sender.resync,
    receiveBuffered: s.receiver.buffer.length,
    delivered: s.receiver.delivered,
  };
}

// ---------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------

/** Feeds one event at time `nowMs`. Never throws. */
export function step(state: LinkState, event: LinkEvent, nowMs: number): LinkStepResult {
  const fx: LinkEffect[] = [];
  const s = dispatch(state, event, nowMs, fx);
  return { state: s, effects: fx };
}

function dispatch(s: LinkState, ev: LinkEvent, now: number, fx: LinkEffect[]): LinkState {
  switch (ev.type) {
    case 'start': {
      if (s.started) return s;
      log(s, fx, 'info', 'sync link starting', { self: s.config.self, peer: s.config.peer, epoch: s.config.epoch });
      return sendHello({ ...s, started: true }, now, fx);
    }

    case 'received':
      if (!s.started) {
        log(s, fx, 'debug', 'message before start ignored');
        return s;
      }
      return onReceived(s, ev.msg, now, fx);

    case 'enqueue':
      return runSender(s, { type: 'enqueue', records: ev.records, bulk: ev.bulk === true }, now, fx);

    case 'enqueue_bulk_end':
      return runSender(s, { type: 'enqueue_bulk_end', requestId: ev.requestId, count: ev.count }, now, fx);

    case 'bulk_begin':
      return runSender(s, { type: 'bulk_begin' }, now, fx);

    case 'send_bulk_request': {
      if (!hasSession(s)) {
        // The peer could not accept it (it must name its epoch): the bulk machine retries.
        log(s, fx, 'warn', 'bulk request without a session not sent', { requestId: ev.requestId });
        return s;
      }
      return emit(s, { type: 'bulk_request', requestId: ev.requestId, seq: s.sender.nextSeq }, now, fx);
    }

    case 'set_synced':
      if (s.localSynced === ev.synced) return s;
      // Tell the peer now rather than at the next keepalive.
      return sendHello({ ...s, localSynced: ev.synced }, now, fx);

    case 'timer':
      return onTimer(s, ev.timer, now, fx);

    case 'rx_room': {
      const r: LinkState = { ...s, rxRoom: ev.room };
      // A window we closed (or nearly) that opens again is told at once: the peer's sender
      // waits for it. Smaller changes ride on the next message.
      const told = s.rxRoomTold;
      const opened = told !== undefined && told < WINDOW_UPDATE_BELOW && (ev.room === undefined || ev.room >= 2 * told + WINDOW_UPDATE_BELOW);
      if (!opened || !hasSession(r)) return r;
      return emit(r, { type: 'ack', ack: receiver.cumulativeAck(r.receiver), nacks: [], seq: r.sender.nextSeq }, now, fx, { ackAlreadyTold: true });
    }

    default: {
      const never: never = ev;
      log(s, fx, 'warn', 'unexpected event', { event: String((never as { type?: unknown })?.type) });
      return s;
    }
  }
}

function onTimer(s: LinkState, timer: LinkTimer, now: number, fx: LinkEffect[]): LinkState {
  switch (timer) {
    case 'hello': {
      const at = s.timers.hello;
      if (at === undefined || now < at) return stale(s, fx, timer, at);
      return sendHello(s, now, fx);
    }
    case 'dead': {
      const at = s.timers.dead;
      if (at === undefined || now < at) return stale(s, fx, timer, at);
      log(s, fx, 'warn', 'peer silent for the dead interval', { deadIntervalMs: s.config.deadIntervalMs, lastHeardAtMs: s.lastHeardAtMs ?? null });
      fx.push({ type: 'peer_dead' });
      // Memory stays bounded while it is gone: the sender stops queueing for it.
      return runSender({ ...s, peerAlive: false, timers: { ...s.timers, dead: undefined } }, { type: 'peer_dead' }, now, fx);
    }
    case 'retransmit':
      return runSender(s, { type: 'retransmit_timer' }, now, fx);
    case 'ack':
      return runReceiver(s, { type: 'ack_timer' }, now, fx);
  }
}

/**
 * Would this link drop a message with these header fields, whatever its HMAC? Run on the
 * claimed (unauthenticated) header before the HMAC, so a flood costs no HMAC per datagram:
 * misdirected, and the replay refusals that have no side effect (wrong_peer_epoch, old_epoch,
 * duplicate, too_old). An unverified epoch is not refused here: its HELLO is answered
 * (the handshake of a restarted peer), which needs it authentic. Pure.
 */
export function precheck(s: LinkState, h: { type: SyncMessage['type'] | undefined; sender: number; receiver: number; epoch: number; peerEpoch: number; packet: number }): LinkDropReason | undefined {
  if (h.type === undefined) return undefined; // decode names it (bad_type)
  if (h.sender !== s.config.peer || h.receiver !== s.config.self) return 'misdirected';
  const { verdict } = check(s.replay, { type: h.type, epoch: h.epoch, peerEpoch: h.peerEpoch, packet: h.packet });
  if (!verdict.accept && verdict.reason !== 'unverified_epoch') return verdict.reason;
  return undefined;
}

function onReceived(s: LinkState, m: SyncMessage, now: number, fx: LinkEffect[]): LinkState {
  if (m.sender !== s.config.peer || m.receiver !== s.config.self) return drop(s, fx, 'misdirected', m);

  const { state: replay, verdict } = check(s.replay, m);
  if (!verdict.accept) {
    let r = drop(s, fx, verdict.reason, m);
    // A new run of the peer that does not know us yet: tell it who we are.
    if (verdict.reason === 'unverified_epoch') r = answerBootstrap(r, now, fx);
    return r;
  }
  let r: LinkState = { ...s, replay, lastHeardAtMs: now };

  switch (verdict.news) {
    case 'session_started':
    case 'peer_restarted': {
      const restarted = verdict.news === 'peer_restarted';
      log(r, fx, restarted ? 'warn' : 'info', restarted ? 'peer restarted: new session' : 'session up', { peerEpoch: m.epoch });
      r = runSender(r, { type: 'peer_restarted' }, now, fx);
      r = runReceiver(r, { type: 'peer_restarted' }, now, fx);
      fx.push({ type: 'session', restarted, peerEpoch: m.epoch });
      r = { ...r, peerSynced: false, peerLeaving: false };
      // Name the peer's epoch back at once: if it has not verified us yet, this does it,
      // and both sides are up within one round trip instead of a keepalive interval.
      r = sendHello(r, now, fx);
      break;
    }
    case 'epoch_learned':
      log(r, fx, 'info', 'peer epoch learned (not verified yet)', { peerEpoch: m.epoch });
      break;
    case 'none':
      break;
  }

  // Liveness: any fresh message counts.
  if (!r.peerAlive) {
    fx.push({ type: 'peer_alive' });
    log(r, fx, 'info', 'peer alive');
  }
  r = { ...r, peerAlive: true };
  r = armLink(r, fx, 'dead', now + r.config.deadIntervalMs);

  if (m.type === 'hello') r = { ...r, peerSynced: m.synced, peerLeaving: r.peerLeaving || (r.peerSynced && !m.synced) };

  if (!hasSession(r)) {
    // Handshake only: a HELLO taught us the peer's epoch; answer so it learns ours.
    if (m.type !== 'hello') return drop(r, fx, 'no_session', m);
    return verdict.bootstrap ? answerBootstrap(r, now, fx) : r;
  }

  // A piggybacked (or ACK's) cumulative ack, with the NACK ranges of an ACK. Only a message
  // that names our current epoch acks our current stream (a late HELLO may name an old one).
  if (m.ack !== undefined && !verdict.bootstrap) {
    const nacks: readonly SeqRange[] = m.type === 'ack' ? m.nacks : [];
    r = runSender(r, { type: 'ack', ack: m.ack, nacks, ...(m.window === undefined ? {} : { window: m.window }) }, now, fx);
  }

  switch (m.type) {
    case 'data':
      r = runReceiver(r, { type: 'data', seq: m.seq, unit: { kind: 'records', bulk: m.bulk, records: m.records } }, now, fx);
      break;
    case 'bulk_end':
      r = runReceiver(r, { type: 'data', seq: m.seq, unit: { kind: 'bulk_end', requestId: m.requestId, count: m.count } }, now, fx);
      break;
    case 'bulk_request':
      fx.push({ type: 'bulk_request', requestId: m.requestId });
      r = runReceiver(r, { type: 'hello', next: m.seq }, now, fx);
      break;
    case 'hello':
    case 'ack':
      r = runReceiver(r, { type: 'hello', next: m.seq }, now, fx);
      break;
  }
  if (m.type === 'hello' && verdict.bootstrap) r = answerBootstrap(r, now, fx);
  return r;
}

// ---------------------------------------------------------------------------------------
// Sub-machines
// ---------------------------------------------------------------------------------------

function runSender(s: LinkState, ev: sender.SenderEvent, now: number, fx: LinkEffect[]): LinkState {
  const res = sender.step(s.sender, ev, now);
  let r: LinkState = { ...s, sender: res.state };
  for (const e of res.effects) {
    switch (e.type) {
      case 'send':
        r = emit(r, unitMessage(e.seq, e.unit), now, fx);
        break;
      case 'arm_timer':
        fx.push({ type: 'arm_timer', timer: 'retransmit', atMs: e.atMs });
        break;
      case 'cancel_timer':
        fx.push({ type: 'cancel_timer', timer: 'retransmit' });
        break;
      case 'resync_needed':
        fx.push({ type: 'resync_needed', why: e.why, droppedRecords: e.droppedRecords });
        break;
      case 'resync_ready':
        fx.push({ type: 'resync_ready' });
        break;
      case 'acked':
      case 'log':
        fx.push(e);
        break;
      case 'count':
        fx.push({ type: 'count', counter: `sender_${e.counter}`, by: e.by });
        break;
    }
  }
  return r;
}

function runReceiver(s: LinkState, ev: receiver.ReceiverEvent, now: number, fx: LinkEffect[]): LinkState {
  const res = receiver.step(s.receiver, ev, now);
  let r: LinkState = { ...s, receiver: res.state };
  for (const e of res.effects) {
    switch (e.type) {
      case 'deliver':
        if (e.unit.kind === 'records') fx.push({ type: 'deliver', seq: e.seq, bulk: e.unit.bulk, records: e.unit.records });
        else fx.push({ type: 'bulk_end', requestId: e.unit.requestId, count: e.unit.count });
        break;
      case 'send_ack':
        r = emit(r, { type: 'ack', ack: e.ack, nacks: e.nacks, seq: r.sender.nextSeq }, now, fx, { ackAlreadyTold: true });
        break;
      case 'arm_timer':
        fx.push({ type: 'arm_timer', timer: 'ack', atMs: e.atMs });
        break;
      case 'cancel_timer':
        fx.push({ type: 'cancel_timer', timer: 'ack' });
        break;
      case 'log':
        fx.push(e);
        break;
      case 'count':
        fx.push({ type: 'count', counter: `receiver_${e.counter}`, by: e.by });
        break;
    }
  }
  return r;
}

function unitMessage(seq: number, unit: StreamUnit): MessageBody {
  return unit.kind === 'records'
    ? { type: 'data', seq, bulk: unit.bulk, records: [...unit.records] }
    : { type: 'bulk_end', seq, requestId: unit.requestId, count: unit.count };
}

// ---------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------

type Distribute<T> = T extends SyncMessage ? Omit<T, 'sender' | 'receiver' | 'epoch' | 'peerEpoch' | 'packet'> : never;
/** A message without the fields the link fills in. */
type MessageBody = Distribute<SyncMessage>;

/**
 * Completes a message with the header fields and emits it. Once there is a session, every
 * message carries our cumulative ack, and the receiver is told so it can skip a separate ACK.
 */
function emit(s: LinkState, body: MessageBody, now: number, fx: LinkEffect[], o: { ackAlreadyTold?: boolean } = {}): LinkState {
  const session = hasSession(s);
  const ack = body.type === 'ack' ? body.ack : session ? receiver.cumulativeAck(s.receiver) : undefined;
  const msg = {
    ...body,
    sender: s.config.self,
    receiver: s.config.peer,
    epoch: s.config.epoch,
    peerEpoch: s.replay.peer?.epoch ?? 0,
    packet: s.nextPacket,
    ...(ack === undefined ? {} : { ack }),
    ...(ack === undefined || s.rxRoom === undefined ? {} : { window: s.rxRoom }),
  } as SyncMessage;
  fx.push({ type: 'send', msg });
  const r: LinkState = { ...s, nextPacket: s.nextPacket + 1, ...(ack === undefined ? {} : { rxRoomTold: s.rxRoom }) };
  if (ack !== undefined && session && !o.ackAlreadyTold) return runReceiver(r, { type: 'ack_sent', ack }, now, fx);
  return r;
}

function sendHello(s: LinkState, now: number, fx: LinkEffect[]): LinkState {
  const named = s.replay.peer?.epoch ?? 0;
  const r = emit({ ...s, lastHelloAtMs: now, lastHelloPeerEpoch: named }, { type: 'hello', seq: s.sender.nextSeq, synced: s.localSynced }, now, fx);
  return armLink(r, fx, 'hello', now + r.config.helloIntervalMs);
}

/**
 * Answers a peer that does not know our epoch with a HELLO now, so the handshake takes one
 * round trip instead of a keepalive interval. Always once for an epoch of the peer we have
 * not named yet (two nodes starting together both need it); otherwise rate-limited, so
 * replayed bootstrap HELLOs cannot make us send more than one HELLO per holdoff.
 */
function answerBootstrap(s: LinkState, now: number, fx: LinkEffect[]): LinkState {
  const namedCurrent = s.lastHelloPeerEpoch === (s.replay.peer?.epoch ?? 0);
  if (namedCurrent && s.lastHelloAtMs !== undefined && now - s.lastHelloAtMs < s.config.helloReplyHoldoffMs) return s;
  return sendHello(s, now, fx);
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

function armLink(s: LinkState, fx: LinkEffect[], timer: 'hello' | 'dead', atMs: number): LinkState {
  fx.push({ type: 'arm_timer', timer, atMs });
  return { ...s, timers: { ...s.timers, [timer]: atMs } };
}

/**
 * A timer event before its deadline (a timer that fired early) or with none armed. The
 * deadline stands, so it is armed again: an early event must never leave the link without
 * its timer (a hello timer that is never re-armed silences the link for good).
 */
function stale(s: LinkState, fx: LinkEffect[], timer: LinkTimer, at: number | undefined): LinkState {
  fx.push({ type: 'count', counter: 'stale_timer', by: 1 });
  log(s, fx, 'debug', 'stale timer event ignored', { timer, deadline: at ?? null });
  if (at !== undefined) fx.push({ type: 'arm_timer', timer, atMs: at });
  return s;
}

function drop(s: LinkState, fx: LinkEffect[], reason: LinkDropReason, m: SyncMessage): LinkState {
  fx.push({ type: 'drop', reason });
  log(s, fx, 'debug', 'message dropped', { reason, type: m.type, from: m.sender, epoch: m.epoch, packet: m.packet });
  return s;
}

function log(s: LinkState, fx: LinkEffect[], level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  fx.push({ type: 'log', level, msg, fields: { component: 'sync-link', peer: s.config.name, ...fields } });
}
