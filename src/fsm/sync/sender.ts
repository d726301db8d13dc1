/**
 * The reliable sender of one peer session, after conntrack-tools' FTFW: records are packed
 * into DATA messages, each message gets the next stream sequence when it is first sent, and
 * is kept until the peer's cumulative ack covers it. Pure: `step(state, event, nowMs)`.
 *
 * - Window: at most `window` messages in flight (sent, unacknowledged), fewer when the peer's
 *   receive window (flow control, carried with its acks) is smaller; the rest wait,
 *   unnumbered. While they wait, new records are packed into the last waiting message, so a
 *   busy link batches by itself and an idle one sends each record at once.
 * - Retransmission: each message in flight has a timeout, `rtoInitialMs` doubled per timeout
 *   up to `rtoMaxMs` (backoff); one timer for the earliest. A NACK resends at once (unless the
 *   message was sent within `nackResendHoldoffMs`) without touching the backoff.
 * - Bounded memory: at most `queueLimit` messages (in flight + waiting). Beyond that the peer
 *   is not keeping up (or is gone without a restart): the waiting messages are dropped — they
 *   were never numbered, so the stream has no hole — and the peer needs a bulk resync:
 *   `resync_needed`. From then on records are dropped until the service begins a bulk transfer
 *   to the peer (`bulk_begin`); `resync_ready` says when the peer has acked everything in
 *   flight, i.e. is alive and the push can start.
 * - Sessions: nothing is sent before the first session; a new session (`peer_restarted`, also
 *   the first contact) drops everything and starts numbering again at STREAM_FIRST_SEQ: the
 *   restarted peer asks for a bulk transfer, which covers what was dropped.
 *
 * The sender does not build messages: `send` effects carry the sequence and the unit, and the
 * link (link.ts) adds the header (epochs, packet number, piggybacked ack).
 */
import { dataMessageSize, recordFits, recordSize, type SeqRange, type SyncRecord } from '../../codec/sync/message.js';
import { SYNC_OVERHEAD, SYNC_DEFAULT_MAX_MESSAGE, SYNC_BULK_END_LEN } from '../../codec/sync/constants.js';
import { seqAdd, seqDiff, seqInRange, seqLt } from '../../codec/sync/serial.js';
import { Fifo } from '../../lib/fifo.js';
import {
  type LogEffect,
  type LogLevel,
  type StreamUnit,
  STREAM_FIRST_SEQ,
  SYNC_NACK_RESEND_HOLDOFF_MS,
  SYNC_QUEUE_LIMIT,
  SYNC_RTO_INITIAL_MS,
  SYNC_RTO_MAX_MS,
  SYNC_SEND_WINDOW,
} from './common.js';

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

export interface SenderConfig {
  /** Peer name for logs. */
  name: string;
  /** Messages in flight at once. */
  window: number;
  /** Messages held (in flight + waiting) before the peer is declared in need of a resync. >= window. */
  queueLimit: number;
  rtoInitialMs: number;
  rtoMaxMs: number;
  /** A NACK does not resend a message (re)sent less than this long ago. */
  nackResendHoldoffMs: number;
  /** Largest message, HMAC included. */
  maxMessageBytes: number;
  /** First sequence of a session; tests move it next to the wrap. */
  firstSeq?: number;
}

export const DEFAULT_SENDER_CONFIG: SenderConfig = {
  name: 'peer',
  window: SYNC_SEND_WINDOW,
  queueLimit: SYNC_QUEUE_LIMIT,
  rtoInitialMs: SYNC_RTO_INITIAL_MS,
  rtoMaxMs: SYNC_RTO_MAX_MS,
  nackResendHoldoffMs: SYNC_NACK_RESEND_HOLDOFF_MS,
  maxMessageBytes: SYNC_DEFAULT_MAX_MESSAGE,
};

/** A message in flight. */
export interface InFlight {
  readonly seq: number;
  readonly unit: StreamUnit;
  readonly bytes: number;
  readonly enqueuedAtMs: number;
  /** Last (re)transmission. */
  readonly sentAtMs: number;
  /** Timeouts so far: the retransmission timeout is rtoInitial * 2^backoff, capped. */
  readonly backoff: number;
  readonly transmissions: number;
}

/** A message waiting for room in the window (not numbered yet); the last one is topped up in place. */
export interface Waiting {
  unit: StreamUnit;
  bytes: number;
  readonly enqueuedAtMs: number;
}

/** `none`; `needed`: records are being dropped; `ready`: the peer acked everything, push now. */
export type ResyncState = 'none' | 'needed' | 'ready';

export interface SenderState {
  readonly config: SenderConfig;
  /** A session with the peer exists (we know its verified epoch). */
  readonly session: boolean;
  /** Sequence of the next message to number. */
  readonly nextSeq: number;
  /** In sequence order. */
  readonly inFlight: readonly InFlight[];
  /**
   * Mutable, shared by the states a step returns: a step changes the queue in place (a busy
   * master's queue holds thousands of messages, and a copy per event was quadratic). Keep no
   * old state to step from again.
   */
  readonly waiting: Fifo<Waiting>;
  readonly resync: ResyncState;
  /** The peer's receive window (messages past its ack it can take); undefined: no limit. */
  readonly peerWindow?: number;
  /** Deadline of the retransmission timer, when armed. */
  readonly timerAtMs?: number;
}

export const SENDER_COUNTERS = [
  'messages_sent', // first transmissions
  'retransmits_timeout', // resent because the timer fired
  'retransmits_nack', // resent because the peer asked
  'messages_acked',
  'records_dropped_no_session', // records offered before there was a session
  'records_dropped_resync', // records offered while a resync is pending
  'records_dropped_overflow', // records dropped when the queue overflowed
  'records_dropped_restart', // records dropped because the peer restarted
  'records_dropped_peer_dead', // records dropped when the peer went silent (it resyncs when back)
  'record_too_large', // a record that fits in no message
  'queue_overflow', // the queue hit its limit: bulk resync needed
  'bad_ack', // an ack for messages never sent
  'stale_timer',
  'unexpected_event',
] as const;
export type SenderCounter = (typeof SENDER_COUNTERS)[number];

export type SenderEvent =
  /** A new session with the peer: the first contact, or the peer restarted. */
  | { type: 'peer_restarted' }
  /** Records to replicate (live changes, or part of a bulk transfer). */
  | { type: 'enqueue'; records: readonly SyncRecord[]; bulk?: boolean }
  /** The end marker of a bulk transfer (reliable, after its records). */
  | { type: 'enqueue_bulk_end'; requestId: number; count: number }
  /** A cumulative ack (all before `ack` arrived) and the ranges the peer misses. */
  | { type: 'ack'; ack: number; nacks: readonly SeqRange[]; window?: number }
  | { type: 'retransmit_timer' }
  /** The service starts a bulk transfer to this peer: records flow again. */
  | { type: 'bulk_begin' }
  /**
   * The peer went silent for the dead interval: stop queueing for it (what waits is dropped,
   * records are dropped from now on) until it comes back. A restart brings a new session and
   * its own bulk request; the same run coming back acks what is in flight, and gets the
   * whole table (`resync_ready`).
   */
  | { type: 'peer_dead' };

export type SenderEffect =
  | { type: 'send'; seq: number; unit: StreamUnit; retransmit: boolean }
  | { type: 'arm_timer'; atMs: number }
  | { type: 'cancel_timer' }
  /** The queue overflowed: the peer needs a bulk resync. Emitted once per overflow. */
  | { type: 'resync_needed'; why: 'overflow' | 'peer_dead'; droppedMessages: number; droppedRecords: number }
  /** The peer has acked everything in flight since the overflow: push the table now. */
  | { type: 'resync_ready' }
  /**
   * Live changes the peer acknowledged: per message, how long since its first record was
   * queued (the replication lag, measured on our clock alone), and its records. Bulk
   * transfers are not counted.
   */
  | { type: 'acked'; lags: { ms: number; records: number }[] }
  | LogEffect
  | { type: 'count'; counter: SenderCounter; by: number };

export interface SenderStepResult {
  state: SenderState;
  effects: SenderEffect[];
}

// ---------------------------------------------------------------------------------------
// Construction and queries
// ---------------------------------------------------------------------------------------

/** A sender without a session: it sends nothing until `peer_restarted`. */
export function initialSenderState(config: Partial<SenderConfig> = {}): SenderState {
  const c = { ...DEFAULT_SENDER_CONFIG, ...config };
  c.queueLimit = Math.max(c.queueLimit, c.window);
  return { config: c, session: false, nextSeq: c.firstSeq ?? STREAM_FIRST_SEQ, inFlight: [], waiting: new Fifo(), resync: 'none' };
}

/** Messages held: in flight plus waiting. */
export function queueSize(s: SenderState): number {
  return s.inFlight.length + s.waiting.length;
}

/** Records held. */
export function queuedRecords(s: SenderState): number {
  let n = waitingRecords(s);
  for (const m of s.inFlight) n += unitRecords(m.unit);
  return n;
}

function waitingRecords(s: SenderState): number {
  let n = 0;
  for (const m of s.waiting) n += unitRecords(m.unit);
  return n;
}

/** Messages that can still be queued before an overflow (a bulk transfer paces itself by it). */
export function room(s: SenderState): number {
  return Math.max(0, s.config.queueLimit - queueSize(s));
}

/** Age of the oldest unacknowledged message (0 when all is acked): the replication lag. */
export function lagMs(s: SenderState, nowMs: number): number {
  const at = oldestQueuedAtMs(s);
  return at === undefined ? 0 : Math.max(0, nowMs - at);
}

/** When the oldest message not yet acknowledged was queued (undefined: none). */
export function oldestQueuedAtMs(s: SenderState): number | undefined {
  return (s.inFlight[0] ?? s.waiting.peek())?.enqueuedAtMs;
}

/** Retransmission timeout after `backoff` timeouts. */
export function rtoFor(c: SenderConfig, backoff: number): number {
  return Math.min(c.rtoMaxMs, c.rtoInitialMs * 2 ** backoff);
}

/** Bytes of the message a unit becomes. */
export function unitBytes(u: StreamUnit): number {
  return u.kind === 'records' ? dataMessageSize(u.records) : SYNC_OVERHEAD + SYNC_BULK_END_LEN;
}

function unitRecords(u: StreamUnit): number {
  return u.kind === 'records' ? u.records.length : 0;
}

// ---------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------

/** Feeds one event at time `nowMs`. Never throws. */
export function step(state: SenderState, event: SenderEvent, nowMs: number): SenderStepResult {
  const fx: SenderEffect[] = [];
  let s = dispatch(state, event, nowMs, fx);
  s = fillWindow(s, nowMs, fx);
  s = rearm(s, fx);
  return { state: s, effects: fx };
}

function dispatch(s: SenderState, ev: SenderEvent, now: number, fx: SenderEffect[]): SenderState {
  switch (ev.type) {
    case 'peer_restarted': {
      // A new session: whatever we held was meant for the peer's previous run, which the new
      // run replaces with a bulk transfer. Start numbering again.
      const dropped = queuedRecords(s);
      if (dropped > 0) count(fx, 'records_dropped_restart', dropped);
      log(s, fx, 'info', s.session ? 'peer restarted: new session, queue dropped' : 'session started', { droppedRecords: dropped });
      s.waiting.clear();
      return { ...s, session: true, nextSeq: s.config.firstSeq ?? STREAM_FIRST_SEQ, inFlight: [], resync: 'none', peerWindow: undefined };
    }

    case 'enqueue':
      return enqueueRecords(s, ev.records, ev.bulk === true, now, fx);

    case 'enqueue_bulk_end': {
      if (!s.session || s.resync !== 'none') {
        // No session: the transfer was for nobody. Resync pending: the transfer was cut.
        log(s, fx, 'warn', 'bulk end dropped', { requestId: ev.requestId, why: s.session ? 'resync pending' : 'no session' });
        return s;
      }
      const unit: StreamUnit = { kind: 'bulk_end', requestId: ev.requestId, count: ev.count };
      s.waiting.push({ unit, bytes: unitBytes(unit), enqueuedAtMs: now });
      return overflowCheck(s, fx);
    }

    case 'ack': {
      const r = onAck(s, ev.ack, ev.nacks, now, fx);
      // The window comes with the ack it is relative to (a refused ack tells nothing).
      if (r === s && seqDiff(ev.ack, s.nextSeq) > 0) return r;
      return r.peerWindow === ev.window ? r : { ...r, peerWindow: ev.window };
    }

    case 'retransmit_timer': {
      if (s.timerAtMs === undefined || now < s.timerAtMs) {
        // Early (or none armed): the deadline stands, so ask for the timer again; rearm()
        // would see the same deadline and arm nothing, and the window would stall for good.
        count(fx, 'stale_timer', 1);
        if (s.timerAtMs !== undefined) fx.push({ type: 'arm_timer', atMs: s.timerAtMs });
        return s;
      }
      // Resend every message whose timeout has passed, and back off its next one.
      let n = 0;
      const inFlight = s.inFlight.map((m) => {
        if (m.sentAtMs + rtoFor(s.config, m.backoff) > now) return m;
        n++;
        fx.push({ type: 'send', seq: m.seq, unit: m.unit, retransmit: true });
        const backoff = rtoFor(s.config, m.backoff) >= s.config.rtoMaxMs ? m.backoff : m.backoff + 1;
        return { ...m, sentAtMs: now, backoff, transmissions: m.transmissions + 1 };
      });
      if (n > 0) {
        count(fx, 'retransmits_timeout', n);
        const first = inFlight[0] as InFlight;
        log(s, fx, 'debug', 'retransmission timeout', { messages: n, oldestSeq: first.seq, transmissions: first.transmissions });
      }
      return { ...s, inFlight, timerAtMs: undefined };
    }

    case 'peer_dead': {
      if (!s.session) return s;
      const dropped = waitingRecords(s);
      if (dropped > 0) count(fx, 'records_dropped_peer_dead', dropped);
      if (s.resync === 'none') {
        fx.push({ type: 'resync_needed', why: 'peer_dead', droppedMessages: s.waiting.length, droppedRecords: dropped });
        log(s, fx, 'warn', 'peer silent: no longer queueing for it; it gets the whole table when it is back', { droppedRecords: dropped, inFlight: s.inFlight.length });
      }
      s.waiting.clear();
      return { ...s, resync: s.resync === 'none' ? 'needed' : s.resync };
    }

    case 'bulk_begin':
      if (s.resync !== 'none') log(s, fx, 'info', 'bulk transfer begins: resync under way', { was: s.resync });
      return { ...s, resync: 'none' };

    default: {
      const never: never = ev;
      count(fx, 'unexpected_event', 1);
      log(s, fx, 'warn', 'unexpected event', { event: String((never as { type?: unknown })?.type) });
      return s;
    }
  }
}

function enqueueRecords(s: SenderState, recs: readonly SyncRecord[], bulk: boolean, now: number, fx: SenderEffect[]): SenderState {
  if (recs.length === 0) return s;
  if (!s.session) {
    // Nobody to send to yet; the peer asks for a bulk transfer when the session starts.
    count(fx, 'records_dropped_no_session', recs.length);
    return s;
  }
  if (s.resync !== 'none') {
    // The peer will get the whole table in the resync; single changes are pointless until then.
    count(fx, 'records_dropped_resync', recs.length);
    return s;
  }
  const max = s.config.maxMessageBytes;
  const fitting = recs.filter((r) => recordFits(r, max));
  if (fitting.length < recs.length) {
    count(fx, 'record_too_large', recs.length - fitting.length);
    log(s, fx, 'error', 'record larger than a sync message dropped', { records: recs.length - fitting.length, maxMessageBytes: max });
  }
  // Top up the last waiting message (same kind) in place, then open new ones as they fill.
  const last = s.waiting.peekLast();
  let open: Waiting | undefined = last && last.unit.kind === 'records' && last.unit.bulk === bulk ? last : undefined;
  for (const r of fitting) {
    const size = recordSize(r);
    if (open && open.bytes + size > max) open = undefined;
    if (!open) {
      open = { unit: { kind: 'records', bulk, records: [] }, bytes: SYNC_OVERHEAD, enqueuedAtMs: now };
      s.waiting.push(open);
    }
    (open.unit as unknown as { records: SyncRecord[] }).records.push(r);
    open.bytes += size;
  }
  return overflowCheck(s, fx);
}

/** Past the queue limit: drop what waits, and ask for a resync. */
function overflowCheck(s: SenderState, fx: SenderEffect[]): SenderState {
  if (queueSize(s) <= s.config.queueLimit) return s;
  const droppedRecords = waitingRecords(s);
  const droppedMessages = s.waiting.length;
  count(fx, 'queue_overflow', 1);
  if (droppedRecords > 0) count(fx, 'records_dropped_overflow', droppedRecords);
  fx.push({ type: 'resync_needed', why: 'overflow', droppedMessages, droppedRecords });
  log(s, fx, 'warn', 'send queue overflow: peer is not acknowledging; it needs a bulk resync', {
    queueLimit: s.config.queueLimit,
    inFlight: s.inFlight.length,
    droppedMessages,
    droppedRecords,
  });
  s.waiting.clear();
  return { ...s, resync: 'needed' };
}

function onAck(s: SenderState, ack: number, nacks: readonly SeqRange[], now: number, fx: SenderEffect[]): SenderState {
  if (!s.session) {
    log(s, fx, 'debug', 'ack without a session ignored', { ack });
    return s;
  }
  // An ack beyond what we numbered acknowledges messages never sent: refuse it whole.
  if (seqDiff(ack, s.nextSeq) > 0) {
    count(fx, 'bad_ack', 1);
    log(s, fx, 'warn', 'ack for messages never sent ignored', { ack, nextSeq: s.nextSeq });
    return s;
  }
  // The cumulative ack frees every message before it (an old ack frees nothing).
  const inFlight = s.inFlight.filter((m) => !seqLt(m.seq, ack));
  const freed = s.inFlight.length - inFlight.length;
  if (freed > 0) {
    count(fx, 'messages_acked', freed);
    const lags: { ms: number; records: number }[] = [];
    for (const m of s.inFlight) {
      if (!seqLt(m.seq, ack)) break;
      if (m.unit.kind === 'records' && !m.unit.bulk) lags.push({ ms: now - m.enqueuedAtMs, records: m.unit.records.length });
    }
    if (lags.length > 0) fx.push({ type: 'acked', lags });
  }

  // NACK ranges: resend what the peer misses, unless it is already on its way.
  let resent = 0;
  const after = nacks.length === 0 ? inFlight : inFlight.map((m) => {
    if (!nacks.some((r) => seqInRange(m.seq, r.first, seqAdd(r.last, 1)))) return m;
    if (now - m.sentAtMs < s.config.nackResendHoldoffMs) return m;
    resent++;
    fx.push({ type: 'send', seq: m.seq, unit: m.unit, retransmit: true });
    return { ...m, sentAtMs: now, transmissions: m.transmissions + 1 };
  });
  if (resent > 0) count(fx, 'retransmits_nack', resent);

  let next: SenderState = { ...s, inFlight: after };
  // After an overflow, the peer acking everything in flight shows it is back: resync now.
  if (s.resync === 'needed' && after.length === 0) {
    fx.push({ type: 'resync_ready' });
    log(s, fx, 'info', 'peer acknowledged everything in flight: ready for the bulk resync');
    next = { ...next, resync: 'ready' };
  }
  return next;
}

/** Sends waiting messages while the window has room, numbering them. */
function fillWindow(s: SenderState, now: number, fx: SenderEffect[]): SenderState {
  // Ours, or the peer's receive window when it is smaller (flow control: its writes lag).
  const limit = Math.min(s.config.window, s.peerWindow ?? Infinity);
  if (!s.session || s.waiting.length === 0 || s.inFlight.length >= limit) return s;
  const inFlight = [...s.inFlight];
  let seq = s.nextSeq;
  let sent = 0;
  while (inFlight.length < limit && s.waiting.length > 0) {
    const w = s.waiting.shift() as Waiting;
    inFlight.push({ seq, unit: w.unit, bytes: w.bytes, enqueuedAtMs: w.enqueuedAtMs, sentAtMs: now, backoff: 0, transmissions: 1 });
    fx.push({ type: 'send', seq, unit: w.unit, retransmit: false });
    seq = seqAdd(seq, 1);
    sent++;
  }
  count(fx, 'messages_sent', sent);
  return { ...s, inFlight, nextSeq: seq };
}

/** Keeps the one timer on the earliest retransmission deadline. */
function rearm(s: SenderState, fx: SenderEffect[]): SenderState {
  let at: number | undefined;
  for (const m of s.inFlight) {
    const due = m.sentAtMs + rtoFor(s.config, m.backoff);
    if (at === undefined || due < at) at = due;
  }
  if (at === s.timerAtMs) return s;
  if (at === undefined) {
    fx.push({ type: 'cancel_timer' });
    return { ...s, timerAtMs: undefined };
  }
  fx.push({ type: 'arm_timer', atMs: at });
  return { ...s, timerAtMs: at };
}

function count(fx: SenderEffect[], counter: SenderCounter, by: number): void {
  if (by > 0) fx.push({ type: 'count', counter, by });
}

function log(s: SenderState, fx: SenderEffect[], level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  fx.push({ type: 'log', level, msg, fields: { component: 'sync-sender', peer: s.config.name, ...fields } });
}
