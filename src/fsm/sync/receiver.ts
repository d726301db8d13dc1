/**
 * The receiving end of one peer session: delivers the peer's stream in order, exactly once,
 * and tells the peer what arrived. Pure: `step(state, event, nowMs)`.
 *
 * - In order: `expected` is the next sequence to deliver. A message at `expected` is
 *   delivered, then every buffered message that follows it without a gap. A message ahead of
 *   it (inside `window`) waits in the buffer; one behind it is a duplicate (delivered before).
 * - Acks are cumulative: `expected` says everything before it arrived. They are delayed by
 *   `ackDelayMs` to cover several messages (or sent at once after `ackEvery`), and ride on any
 *   message the link sends anyway (`ack_sent` then cancels the separate ACK).
 * - Gaps are reported at once as NACK ranges (at most one NACK per `nackHoldoffMs`, so a
 *   burst after one loss asks once): the gaps between buffered messages, and the tail the
 *   peer's HELLO reveals (its next sequence is beyond what we have). If a NACK is lost too,
 *   the sender's retransmission timeout recovers.
 * - A duplicate means our ack was lost: ack again (coalesced to one per `ackDelayMs`).
 */
import { SYNC_MAX_NACK_RANGES } from '../../codec/sync/constants.js';
import type { SeqRange } from '../../codec/sync/message.js';
import { seqAdd, seqDiff, seqLt } from '../../codec/sync/serial.js';
import {
  type LogEffect,
  type LogLevel,
  type StreamUnit,
  STREAM_FIRST_SEQ,
  SYNC_ACK_DELAY_MS,
  SYNC_ACK_EVERY,
  SYNC_NACK_HOLDOFF_MS,
  SYNC_RECEIVE_WINDOW,
} from './common.js';

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

export interface ReceiverConfig {
  /** Peer name for logs. */
  name: string;
  /** Messages buffered ahead of `expected`; should be at least the sender's window. */
  window: number;
  ackDelayMs: number;
  ackEvery: number;
  nackHoldoffMs: number;
  /** First sequence of a session; tests move it next to the wrap. */
  firstSeq?: number;
}

export const DEFAULT_RECEIVER_CONFIG: ReceiverConfig = {
  name: 'peer',
  window: SYNC_RECEIVE_WINDOW,
  ackDelayMs: SYNC_ACK_DELAY_MS,
  ackEvery: SYNC_ACK_EVERY,
  nackHoldoffMs: SYNC_NACK_HOLDOFF_MS,
};

export interface Buffered {
  readonly seq: number;
  readonly unit: StreamUnit;
}

export interface ReceiverState {
  readonly config: ReceiverConfig;
  readonly session: boolean;
  /** Next sequence to deliver; also our cumulative ack. */
  readonly expected: number;
  /** Messages ahead of `expected`, in sequence order, no duplicates. */
  readonly buffer: readonly Buffered[];
  /** The peer's next sequence as far as we know (from its DATA and its HELLOs). */
  readonly knownNext: number;
  /** In-order messages since the last ack went out. */
  readonly sinceAck: number;
  readonly lastAckAtMs?: number;
  readonly lastNackAtMs?: number;
  /** Deadline of the ack timer, when armed. */
  readonly timerAtMs?: number;
  /** Messages delivered in this session. */
  readonly delivered: number;
}

export const RECEIVER_COUNTERS = [
  'messages_delivered',
  'messages_buffered', // arrived ahead of a gap
  'duplicates', // arrived again (our ack was lost, or the network duplicated it)
  'beyond_window', // too far ahead to buffer; dropped, the sender resends
  'acks_sent',
  'nacks_sent',
  'data_without_session',
  'stale_timer',
  'unexpected_event',
] as const;
export type ReceiverCounter = (typeof RECEIVER_COUNTERS)[number];

export type ReceiverEvent =
  /** A new session with the peer (first contact or restart): a new stream begins. */
  | { type: 'peer_restarted' }
  /** A reliable message: DATA or BULK_END, with its stream sequence. */
  | { type: 'data'; seq: number; unit: StreamUnit }
  /** The peer's next sequence, from the header of any of its unreliable messages (HELLO, ACK...). */
  | { type: 'hello'; next: number }
  | { type: 'ack_timer' }
  /** The link sent our cumulative ack on another message. */
  | { type: 'ack_sent'; ack: number };

export type ReceiverEffect =
  | { type: 'deliver'; seq: number; unit: StreamUnit }
  | { type: 'send_ack'; ack: number; nacks: SeqRange[] }
  | { type: 'arm_timer'; atMs: number }
  | { type: 'cancel_timer' }
  | LogEffect
  | { type: 'count'; counter: ReceiverCounter; by: number };

export interface ReceiverStepResult {
  state: ReceiverState;
  effects: ReceiverEffect[];
}

// ---------------------------------------------------------------------------------------
// Construction and queries
// ---------------------------------------------------------------------------------------

export function initialReceiverState(config: Partial<ReceiverConfig> = {}): ReceiverState {
  const c = { ...DEFAULT_RECEIVER_CONFIG, ...config };
  const first = c.firstSeq ?? STREAM_FIRST_SEQ;
  return { config: c, session: false, expected: first, buffer: [], knownNext: first, sinceAck: 0, delivered: 0 };
}

/** The cumulative ack to piggyback on outgoing messages. */
export function cumulativeAck(s: ReceiverState): number {
  return s.expected;
}

/** The gaps we miss, as NACK ranges: between buffered messages, and up to the peer's known next. */
export function missingRanges(s: ReceiverState): SeqRange[] {
  const out: SeqRange[] = [];
  const limit = seqDiff(s.knownNext, s.expected) > s.config.window ? seqAdd(s.expected, s.config.window) : s.knownNext;
  let cursor = s.expected;
  for (const b of s.buffer) {
    if (out.length >= SYNC_MAX_NACK_RANGES) return out;
    if (seqLt(cursor, b.seq)) out.push({ first: cursor, last: seqAdd(b.seq, -1) });
    cursor = seqAdd(b.seq, 1);
  }
  if (out.length < SYNC_MAX_NACK_RANGES && seqLt(cursor, limit)) out.push({ first: cursor, last: seqAdd(limit, -1) });
  return out;
}

// ---------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------

/** Feeds one event at time `nowMs`. Never throws. */
export function step(state: ReceiverState, event: ReceiverEvent, nowMs: number): ReceiverStepResult {
  const fx: ReceiverEffect[] = [];
  const s = dispatch(state, event, nowMs, fx);
  return { state: s, effects: fx };
}

function dispatch(s: ReceiverState, ev: ReceiverEvent, now: number, fx: ReceiverEffect[]): ReceiverState {
  switch (ev.type) {
    case 'peer_restarted': {
      // A new stream: forget the old one (buffered messages of the old run are worthless).
      const first = s.config.firstSeq ?? STREAM_FIRST_SEQ;
      log(s, fx, 'info', s.session ? 'peer restarted: new stream' : 'session started', { buffered: s.buffer.length });
      const r: ReceiverState = { ...s, session: true, expected: first, knownNext: first, buffer: [], sinceAck: 0, delivered: 0, lastAckAtMs: undefined, lastNackAtMs: undefined };
      return cancelTimer(r, fx);
    }

    case 'data':
      return onData(s, ev.seq, ev.unit, now, fx);

    case 'hello': {
      if (!s.session) return s;
      // Only a `next` ahead of what we know tells us something (a delayed HELLO may lag).
      if (seqDiff(ev.next, s.knownNext) <= 0) return s;
      const r = { ...s, knownNext: ev.next };
      // The peer sent messages we never saw (lost at the tail): ask for them.
      return reportGap(r, now, fx);
    }

    case 'ack_timer': {
      if (s.timerAtMs === undefined || now < s.timerAtMs) {
        // Early: the deadline stands; ask for the timer again or the ack (or NACK) never goes.
        count(fx, 'stale_timer', 1);
        if (s.timerAtMs !== undefined) fx.push({ type: 'arm_timer', atMs: s.timerAtMs });
        return s;
      }
      return sendAck({ ...s, timerAtMs: undefined }, now, fx);
    }

    case 'ack_sent': {
      if (ev.ack !== s.expected) return s;
      // Our ack went out on another message: no separate ACK needed, unless we owe a NACK.
      const r = { ...s, sinceAck: 0, lastAckAtMs: now };
      return r.timerAtMs !== undefined && missingRanges(r).length === 0 ? cancelTimer(r, fx) : r;
    }

    default: {
      const never: never = ev;
      count(fx, 'unexpected_event', 1);
      log(s, fx, 'warn', 'unexpected event', { event: String((never as { type?: unknown })?.type) });
      return s;
    }
  }
}

function onData(s: ReceiverState, seq: number, unit: StreamUnit, now: number, fx: ReceiverEffect[]): ReceiverState {
  if (!s.session) {
    count(fx, 'data_without_session', 1);
    return s;
  }
  const ahead = seqDiff(seq, s.expected);

  if (ahead < 0) {
    // Delivered before: the peer resent it, so it missed our ack. Ack again (coalesced).
    count(fx, 'duplicates', 1);
    return ackSoon(s, now, fx);
  }
  if (ahead >= s.config.window) {
    // Too far ahead to buffer (the sender's window is larger than ours): drop it, and tell
    // the peer where we are; it resends later.
    count(fx, 'beyond_window', 1);
    log(s, fx, 'debug', 'message beyond the receive window dropped', { seq, expected: s.expected, window: s.config.window });
    return ackSoon(s, now, fx);
  }
  const knownNext = seqDiff(seqAdd(seq, 1), s.knownNext) > 0 ? seqAdd(seq, 1) : s.knownNext;

  if (ahead > 0) {
    // Ahead of a gap: keep it, and ask for what is missing.
    if (s.buffer.some((b) => b.seq === seq)) {
      count(fx, 'duplicates', 1);
      return ackSoon({ ...s, knownNext }, now, fx);
    }
    count(fx, 'messages_buffered', 1);
    const buffer = [...s.buffer, { seq, unit }].sort((a, b) => seqDiff(a.seq, b.seq));
    return reportGap({ ...s, buffer, knownNext }, now, fx);
  }

  // The one we expected: deliver it and whatever now follows without a gap.
  fx.push({ type: 'deliver', seq, unit });
  let expected = seqAdd(seq, 1);
  let n = 1;
  const buffer = [...s.buffer];
  while (buffer.length > 0 && (buffer[0] as Buffered).seq === expected) {
    const b = buffer.shift() as Buffered;
    fx.push({ type: 'deliver', seq: b.seq, unit: b.unit });
    expected = seqAdd(expected, 1);
    n++;
  }
  count(fx, 'messages_delivered', n);
  const r: ReceiverState = { ...s, expected, buffer, knownNext, sinceAck: s.sinceAck + n, delivered: s.delivered + n };
  // A gap remains (something after it is buffered): the NACK says so.
  if (buffer.length > 0) return reportGap(r, now, fx);
  if (r.sinceAck >= r.config.ackEvery) return sendAck(r, now, fx);
  return armAck(r, now + r.config.ackDelayMs, fx);
}

/** We learned of a gap: NACK now if the holdoff allows, else a plain ack soon. */
function reportGap(s: ReceiverState, now: number, fx: ReceiverEffect[]): ReceiverState {
  if (nackAllowed(s, now) && missingRanges(s).length > 0) return sendAck(s, now, fx);
  return armAck(s, now + s.config.ackDelayMs, fx);
}

/** Ack now, unless an ack went out less than `ackDelayMs` ago: then at the end of that delay. */
function ackSoon(s: ReceiverState, now: number, fx: ReceiverEffect[]): ReceiverState {
  if (s.lastAckAtMs === undefined || now - s.lastAckAtMs >= s.config.ackDelayMs) return sendAck(s, now, fx);
  return armAck(s, s.lastAckAtMs + s.config.ackDelayMs, fx);
}

function nackAllowed(s: ReceiverState, now: number): boolean {
  return s.lastNackAtMs === undefined || now - s.lastNackAtMs >= s.config.nackHoldoffMs;
}

/** Sends the cumulative ack, with the NACK ranges if the holdoff allows. */
function sendAck(s: ReceiverState, now: number, fx: ReceiverEffect[]): ReceiverState {
  const nacks = nackAllowed(s, now) ? missingRanges(s) : [];
  fx.push({ type: 'send_ack', ack: s.expected, nacks });
  count(fx, 'acks_sent', 1);
  if (nacks.length > 0) count(fx, 'nacks_sent', 1);
  const r: ReceiverState = { ...s, sinceAck: 0, lastAckAtMs: now, lastNackAtMs: nacks.length > 0 ? now : s.lastNackAtMs };
  return cancelTimer(r, fx);
}

/** Arms the ack timer for `at`, or keeps an earlier deadline. */
function armAck(s: ReceiverState, at: number, fx: ReceiverEffect[]): ReceiverState {
  if (s.timerAtMs !== undefined && s.timerAtMs <= at) return s;
  fx.push({ type: 'arm_timer', atMs: at });
  return { ...s, timerAtMs: at };
}

function cancelTimer(s: ReceiverState, fx: ReceiverEffect[]): ReceiverState {
  if (s.timerAtMs === undefined) return s;
  fx.push({ type: 'cancel_timer' });
  return { ...s, timerAtMs: undefined };
}

function count(fx: ReceiverEffect[], counter: ReceiverCounter, by: number): void {
  if (by > 0) fx.push({ type: 'count', counter, by });
}

function log(s: ReceiverState, fx: ReceiverEffect[], level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  fx.push({ type: 'log', level, msg, fields: { component: 'sync-receiver', peer: s.config.name, ...fields } });
}
