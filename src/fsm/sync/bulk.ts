/**
 * Bulk sync, after OpenBSD pfsync's bulk-update machine: a node that joins asks one peer for
 * its whole table, and holds VRRP back (demotes itself) until the table has arrived, so it
 * never becomes master with an empty state table. Pure: `step(state, event, nowMs)`, one entry
 * point; an event that makes no sense in a state is a log line, never a throw.
 *
 * Requesting side, states:
 *   idle       nothing asked yet
 *   requesting a BULK_REQUEST is out; waiting for the first record (or for a peer to ask)
 *   receiving  records of the transfer are arriving
 *   done       BULK_END arrived with the count we received: our table is complete
 *   failed     no complete transfer after `maxAttempts` (or no peer at all): we gave up
 *              for now; a new round after `retryAfterMs` (or when a peer comes up)
 * One timer: the request timeout while requesting, an idle timeout (re-armed by every record)
 * while receiving. A timeout, a count mismatch or the loss of the source peer fails the
 * attempt; the next attempt asks the next live peer. Demotion (`demote` effects) starts when
 * a node joins and ends on done, or loudly on failed: a node must not stay out of the
 * election forever because its peers cannot serve it.
 *
 * Why a transfer starts: `joined` (this node started: demote), `peer_restarted` (a peer came
 * back with a new epoch: while our table is complete it has nothing we lack and nothing is
 * pulled; otherwise an attempt from it that was under way fails and the next one starts),
 * `resync` (asked for by the service). A peer that appears after we went on `alone` is
 * pulled from (without demoting): it may hold sessions we never saw.
 *
 * Serving side: a peer's BULK_REQUEST becomes a `serve_bulk` effect; the service streams the
 * table into that peer's sender (paced by its `room()`), then its BULK_END, and reports
 * `bulk_served`. Every `serve_bulk` must end with exactly one BULK_END, even when cut short
 * by a newer request (`supersedes`): the requester counts records between BULK_ENDs.
 */
import type { LogEffect, LogLevel } from './common.js';

// ---------------------------------------------------------------------------------------
// Types and name tables
// ---------------------------------------------------------------------------------------

export const BULK_STATES = ['idle', 'requesting', 'receiving', 'done', 'alone', 'failed'] as const;
export type BulkStateName = (typeof BULK_STATES)[number];

/** What each state means, for logs and `fwlb status`. */
export const BULK_STATE_TEXT: Readonly<Record<BulkStateName, string>> = {
  idle: 'no bulk sync requested',
  requesting: 'bulk sync requested, waiting for the first record',
  receiving: 'receiving the bulk sync',
  done: 'bulk sync complete',
  alone: 'no peer to sync from: this node is alone, its own table is the table',
  failed: 'bulk sync failed; gave up',
};

export const BULK_EVENTS = ['start', 'peer_up', 'peer_gone', 'data', 'bulk_end', 'timeout', 'bulk_request', 'bulk_served'] as const;
export type BulkEventName = (typeof BULK_EVENTS)[number];

export type BulkReason = 'joined' | 'peer_restarted' | 'resync';

export interface BulkConfig {
  /** Waiting for the first record (or the BULK_END of an empty table) after a request. */
  requestTimeoutMs: number;
  /** Longest silence between two records of a transfer. */
  idleTimeoutMs: number;
  /** Attempts before giving up (and releasing the demotion). */
  maxAttempts: number;
  /**
   * After giving up, a new round of attempts this much later (a node whose table could not
   * be completed keeps trying: under sharing it takes no bucket until it has the table).
   */
  retryAfterMs: number;
  /** With no peer at all, how long to wait for one before concluding we are alone. */
  noPeerTimeoutMs: number;
  /**
   * The same when our own conntrack table is empty (`start` with `emptyTable`): a node with
   * nothing must not take over alone while a peer that holds the sessions is coming back.
   */
  noPeerTimeoutEmptyMs: number;
}

export const BULK_REQUEST_TIMEOUT_MS = 2000;
export const BULK_IDLE_TIMEOUT_MS = 5000;
export const BULK_MAX_ATTEMPTS = 5;
export const BULK_RETRY_AFTER_MS = 5000;
export const BULK_NO_PEER_TIMEOUT_MS = 3000; // two dead intervals' worth of HELLOs
export const BULK_NO_PEER_TIMEOUT_EMPTY_MS = 10_000;

export const DEFAULT_BULK_CONFIG: BulkConfig = {
  requestTimeoutMs: BULK_REQUEST_TIMEOUT_MS,
  idleTimeoutMs: BULK_IDLE_TIMEOUT_MS,
  maxAttempts: BULK_MAX_ATTEMPTS,
  retryAfterMs: BULK_RETRY_AFTER_MS,
  noPeerTimeoutMs: BULK_NO_PEER_TIMEOUT_MS,
  noPeerTimeoutEmptyMs: BULK_NO_PEER_TIMEOUT_EMPTY_MS,
};

export interface BulkTransition {
  from: BulkStateName;
  to: BulkStateName;
  why: string;
  atMs: number;
}

export interface BulkState {
  readonly config: BulkConfig;
  readonly state: BulkStateName;
  readonly why?: BulkReason;
  /** Peers with a live session, ascending. */
  readonly livePeers: readonly number[];
  /** The peer asked in the current attempt; undefined while waiting for any peer. */
  readonly source?: number;
  /** Attempts made in this run (1 during the first). */
  readonly attempt: number;
  /** Request id of the current attempt (0 before the first). */
  readonly requestId: number;
  /** Bulk records received from the source since the request (or since its last BULK_END). */
  readonly received: number;
  /**
   * Records the kernel refused to write since this attempt's request (of the transfer, or
   * live ones interleaved with it): the table they leave is not complete, so the attempt
   * fails at its BULK_END and the next one asks again. Never counted as written.
   */
  readonly refused: number;
  /** We hold VRRP back. */
  readonly demoted: boolean;
  /** Our own table was empty when we joined (we wait longer for a peer). */
  readonly emptyTable: boolean;
  /** A transfer completed (done) or we found ourselves alone, at least once in this run. */
  readonly complete: boolean;
  readonly startedAtMs?: number;
  /** Deadline of the one timer, when armed. */
  readonly timerAtMs?: number;
  /** Transfers we serve: peer -> request id. */
  readonly serving: Readonly<Record<number, number>>;
  readonly lastTransition?: BulkTransition;
}

export type BulkEvent =
  /**
   * Begin a bulk sync. `peer`: ask this one first (the one that restarted). `emptyTable`:
   * (joined) our own conntrack table holds nothing.
   */
  | { type: 'start'; why: BulkReason; peer?: number; emptyTable?: boolean }
  /** A session with a peer is up (first contact or restart). */
  | { type: 'peer_up'; peer: number }
  /** A peer went silent (dead interval) or away. */
  | { type: 'peer_gone'; peer: number }
  /**
   * Records of a bulk transfer (DATA with the BULK flag) were delivered from `peer` and
   * written; `refused`: writes the kernel refused since the last report (any record).
   */
  | { type: 'data'; peer: number; records: number; refused?: number }
  /** A BULK_END was delivered (in order, after its records) from `peer`; `refused` as for data. */
  | { type: 'bulk_end'; peer: number; requestId: number; count: number; refused?: number }
  /**
   * The one timer fired. `othersAlive`: a peer is heard by other means (its VRRP adverts as
   * master): with nobody on the sync link, that peer holds a table we cannot get, so we are
   * not alone and keep waiting for the sync link rather than go on with ours.
   */
  | { type: 'timeout'; othersAlive?: boolean }
  /** Serving side: `peer` asks for our table. */
  | { type: 'bulk_request'; peer: number; requestId: number }
  /** Serving side: the service finished queueing a transfer (records and BULK_END). */
  | { type: 'bulk_served'; peer: number; requestId: number; count: number };

export const BULK_COUNTERS = [
  'bulk_requests_sent',
  'bulk_attempts_failed',
  'bulk_syncs_done',
  'bulk_syncs_failed',
  'bulk_count_mismatch',
  'bulk_attempts_refused',
  'bulk_alone_deferred',
  'bulk_requests_served',
  'stale_timer',
  'unexpected_event',
] as const;
export type BulkCounter = (typeof BULK_COUNTERS)[number];

export type BulkEffect =
  | { type: 'send_bulk_request'; peer: number; requestId: number }
  | { type: 'arm_timer'; atMs: number }
  | { type: 'cancel_timer' }
  /** Hold VRRP back (true) or let it run (false). */
  | { type: 'demote'; on: boolean; why: string }
  /** Serving side: stream the whole table to `peer`, then BULK_END(requestId, count). */
  | { type: 'serve_bulk'; peer: number; requestId: number; supersedes?: number }
  /** Serving side: stop streaming to `peer` (it is gone); no BULK_END needed. */
  | { type: 'cancel_serve'; peer: number; requestId: number }
  | LogEffect
  | { type: 'count'; counter: BulkCounter };

export interface BulkStepResult {
  state: BulkState;
  effects: BulkEffect[];
}

// ---------------------------------------------------------------------------------------
// Construction and queries
// ---------------------------------------------------------------------------------------

export function initialBulkState(config: Partial<BulkConfig> = {}): BulkState {
  return { config: { ...DEFAULT_BULK_CONFIG, ...config }, state: 'idle', livePeers: [], attempt: 0, requestId: 0, received: 0, refused: 0, demoted: false, emptyTable: false, complete: false, serving: {} };
}

/** Our table is complete (the HELLO flag SYNCED): a transfer finished, or nobody else holds one. */
export function isSynced(s: BulkState): boolean {
  // Once complete, a refresh under way (a peer restarted) or one that failed leaves what we
  // hold: still complete.
  return s.complete;
}

/** A transfer to us is under way. */
export function inProgress(s: BulkState): boolean {
  return s.state === 'requesting' || s.state === 'receiving';
}

// ---------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------

/** Feeds one event at time `nowMs`. Never throws. */
export function step(state: BulkState, event: BulkEvent, nowMs: number): BulkStepResult {
  const fx: BulkEffect[] = [];
  const s = dispatch(state, event, nowMs, fx);
  return { state: s, effects: fx };
}

function dispatch(s: BulkState, ev: BulkEvent, now: number, fx: BulkEffect[]): BulkState {
  switch (ev.type) {
    case 'start': {
      // A joining node holds VRRP back until its table is complete.
      let r = s;
      if (ev.why === 'joined') r = { ...r, emptyTable: ev.emptyTable === true };
      if (ev.why === 'joined' && !r.demoted) r = demote(r, fx, true, 'bulk sync pending: this node joined');
      if (inProgress(r)) {
        if (ev.peer !== undefined && ev.peer === r.source) {
          // Our source restarted mid-transfer: what it sent so far belongs to a dead stream.
          return failAttempt(r, now, fx, `source peer ${ev.peer} restarted`);
        }
        log(r, fx, 'debug', 'bulk sync already in progress', { why: ev.why, source: r.source ?? null });
        return r;
      }
      // A restarted peer holds nothing we lack while our own table is complete (its kernel
      // keeps copies of what it had from us): pulling its table would only write stale
      // copies over live entries, once per peer per restart. After `alone`, `peer_up` pulls.
      if (ev.why === 'peer_restarted' && (r.state === 'done' || r.state === 'alone')) {
        log(r, fx, 'debug', 'peer restarted; our table is complete: nothing to pull', { peer: ev.peer ?? null });
        return r;
      }
      r = { ...r, why: ev.why, attempt: 1, startedAtMs: now };
      return request(r, now, fx, `start (${ev.why})`, ev.peer);
    }

    case 'peer_up': {
      const r = { ...s, livePeers: [...new Set([...s.livePeers, ev.peer])].sort((a, b) => a - b) };
      // Waiting for anyone to ask: ask this one.
      if (r.state === 'requesting' && r.source === undefined) return request(r, now, fx, `peer ${ev.peer} is up`, ev.peer);
      // We went on alone, and a peer appeared since: it may hold sessions we never saw (both
      // nodes restarted, it came back later). Take its table too, without demoting.
      if (r.state === 'alone') return request({ ...r, why: 'peer_restarted', attempt: 1, startedAtMs: now }, now, fx, `peer ${ev.peer} appeared after we went on alone`, ev.peer);
      // We gave up on an incomplete table: a peer that is (back) up is asked again.
      if (r.state === 'failed') return request({ ...r, why: 'resync', attempt: 1, startedAtMs: now }, now, fx, `peer ${ev.peer} is up after the bulk sync failed`, ev.peer);
      return r;
    }

    case 'peer_gone': {
      let r: BulkState = { ...s, livePeers: s.livePeers.filter((p) => p !== ev.peer) };
      const served = r.serving[ev.peer];
      if (served !== undefined) {
        fx.push({ type: 'cancel_serve', peer: ev.peer, requestId: served });
        r = { ...r, serving: withoutKey(r.serving, ev.peer) };
      }
      // Our source is gone: this attempt cannot finish; try the next peer now.
      if (inProgress(r) && r.source === ev.peer) return failAttempt(r, now, fx, `source peer ${ev.peer} gone`);
      return r;
    }

    case 'data': {
      s = noteRefused(s, ev.refused, fx);
      if (!inProgress(s) || ev.peer !== s.source) {
        // Bulk records we did not ask for (a peer's resync push, or a late transfer): the
        // service applies them all the same; they just do not count here.
        log(s, fx, 'debug', 'bulk records outside our transfer', { peer: ev.peer, records: ev.records, state: s.state });
        return s;
      }
      let r: BulkState = { ...s, received: s.received + ev.records };
      if (r.state === 'requesting') r = transition(r, 'receiving', now, fx, `first records from peer ${ev.peer}`);
      // Every record proves progress: the idle timeout starts over.
      return arm(r, fx, now + r.config.idleTimeoutMs);
    }

    case 'bulk_end': {
      s = noteRefused(s, ev.refused, fx);
      if (!inProgress(s) || ev.peer !== s.source) {
        log(s, fx, 'debug', 'bulk end outside our transfer', { peer: ev.peer, requestId: ev.requestId, state: s.state });
        return s;
      }
      if (ev.requestId !== s.requestId) {
        // The end of an earlier attempt's transfer (the peer served that one to the end).
        // Records after it belong to the next transfer: count from zero.
        log(s, fx, 'debug', 'bulk end of an earlier request', { requestId: ev.requestId, current: s.requestId });
        return { ...s, received: 0 };
      }
      if (ev.count !== s.received) {
        fx.push({ type: 'count', counter: 'bulk_count_mismatch' });
        return failAttempt(s, now, fx, `bulk end says ${ev.count} records, ${s.received} arrived`);
      }
      if (s.refused > 0) {
        // Every record arrived, but the kernel did not take them all: the table has holes.
        fx.push({ type: 'count', counter: 'bulk_attempts_refused' });
        return failAttempt(s, now, fx, `all ${ev.count} records arrived, but the kernel refused ${s.refused} writes`);
      }
      let r = cancel(s, fx);
      fx.push({ type: 'count', counter: 'bulk_syncs_done' });
      const tookMs = r.startedAtMs === undefined ? 0 : now - r.startedAtMs;
      r = transition({ ...r, complete: true }, 'done', now, fx, `bulk end from peer ${ev.peer}: ${ev.count} records in ${tookMs} ms`);
      if (r.demoted) r = demote(r, fx, false, 'bulk sync complete');
      return r;
    }

    case 'timeout':
      return onTimeout(s, ev, now, fx);

    case 'bulk_request': {
      // Serving side: a peer wants our table. A repeated request replaces the running one.
      const previous = s.serving[ev.peer];
      fx.push({ type: 'count', counter: 'bulk_requests_served' });
      fx.push(previous === undefined ? { type: 'serve_bulk', peer: ev.peer, requestId: ev.requestId } : { type: 'serve_bulk', peer: ev.peer, requestId: ev.requestId, supersedes: previous });
      log(s, fx, 'info', 'serving a bulk sync', { peer: ev.peer, requestId: ev.requestId, supersedes: previous ?? null });
      return { ...s, serving: { ...s.serving, [ev.peer]: ev.requestId } };
    }

    case 'bulk_served': {
      log(s, fx, 'info', 'bulk sync served', { peer: ev.peer, requestId: ev.requestId, records: ev.count });
      if (s.serving[ev.peer] !== ev.requestId) return s;
      return { ...s, serving: withoutKey(s.serving, ev.peer) };
    }

    default: {
      const never: never = ev;
      return unexpected(s, fx, String((never as { type?: unknown })?.type));
    }
  }
}

/** Sends a request for this attempt, to `prefer` if live, else the next live peer in turn. */
function request(s: BulkState, now: number, fx: BulkEffect[], why: string, prefer?: number): BulkState {
  const live = s.livePeers;
  const source = prefer !== undefined && live.includes(prefer) ? prefer : live.length > 0 ? live[(s.attempt - 1) % live.length] : undefined;
  if (source === undefined) {
    // Nobody to ask yet (peers are not heard at once after start): wait for one.
    const r = transition({ ...s, source: undefined, received: 0 }, 'requesting', now, fx, `${why}; waiting for a peer`);
    return arm(r, fx, now + noPeerWait(r));
  }
  const requestId = s.requestId >= 0xffffffff ? 1 : s.requestId + 1;
  fx.push({ type: 'send_bulk_request', peer: source, requestId });
  fx.push({ type: 'count', counter: 'bulk_requests_sent' });
  const r = transition({ ...s, source, requestId, received: 0, refused: 0 }, 'requesting', now, fx, `${why}; asking peer ${source} (attempt ${s.attempt} of ${s.config.maxAttempts})`);
  return arm(r, fx, now + r.config.requestTimeoutMs);
}

/** One attempt failed: try again, or give up after the last one. */
function failAttempt(s: BulkState, now: number, fx: BulkEffect[], why: string): BulkState {
  fx.push({ type: 'count', counter: 'bulk_attempts_failed' });
  log(s, fx, 'warn', 'bulk sync attempt failed', { why, attempt: s.attempt, maxAttempts: s.config.maxAttempts, source: s.source ?? null });
  if (s.attempt >= s.config.maxAttempts) return giveUp(s, now, fx, `${why}; ${s.attempt} attempts failed`, 'error');
  return request({ ...s, attempt: s.attempt + 1 }, now, fx, why);
}

/** The one timer fired: a request or transfer timed out, the wait for a peer ended, or the retry after giving up is due. */
function onTimeout(s: BulkState, ev: Extract<BulkEvent, { type: 'timeout' }>, now: number, fx: BulkEffect[]): BulkState {
  if (s.timerAtMs === undefined || now < s.timerAtMs) {
    fx.push({ type: 'count', counter: 'stale_timer' });
    log(s, fx, 'debug', 'stale timer event ignored', { armedAt: s.timerAtMs ?? null, now });
    // The deadline stands: arm it again, or the machine waits for a timer nobody set.
    if (s.timerAtMs !== undefined) fx.push({ type: 'arm_timer', atMs: s.timerAtMs });
    return s;
  }
  const r = { ...s, timerAtMs: undefined };
  // Gave up a while ago: a new round of attempts.
  if (r.state === 'failed') return request({ ...r, why: 'resync', attempt: 1, startedAtMs: now }, now, fx, `retrying ${r.config.retryAfterMs} ms after the bulk sync failed`);
  if (!inProgress(r)) return unexpected(r, fx, ev.type);
  if (r.source === undefined) {
    if (ev.othersAlive) {
      // Someone carries the traffic (heard as VRRP master) but not on the sync link: we
      // are not alone, and our table is not the table. Wait on (VRRP stays held back;
      // when that peer goes silent too, the next timeout finds us alone).
      fx.push({ type: 'count', counter: 'bulk_alone_deferred' });
      log(r, fx, 'warn', 'no peer on the sync link, but a peer is heard as VRRP master: not going on alone; waiting for the sync link', { waitMs: noPeerWait(r) });
      return arm(r, fx, now + noPeerWait(r));
    }
    // Nobody to ask appeared in time, and nobody is heard at all: we are alone.
    return alone(r, now, fx, `no peer appeared within ${noPeerWait(r)} ms: this node is alone${r.emptyTable ? ' (with an empty table)' : ''}`);
  }
  const what = r.state === 'requesting' ? `no answer from peer ${r.source} within ${r.config.requestTimeoutMs} ms` : `bulk transfer from peer ${r.source} stalled for ${r.config.idleTimeoutMs} ms`;
  return failAttempt(r, now, fx, what);
}

/** How long to wait for any peer: longer when our own table is empty. */
function noPeerWait(s: BulkState): number {
  return s.emptyTable && s.why === 'joined' ? s.config.noPeerTimeoutEmptyMs : s.config.noPeerTimeoutMs;
}

/** No peer to sync from: our own table is the table. */
function alone(s: BulkState, now: number, fx: BulkEffect[], why: string): BulkState {
  let r = transition(cancel({ ...s, complete: true }, fx), 'alone', now, fx, why, 'warn');
  if (r.demoted) r = demote(r, fx, false, why, 'warn');
  return r;
}

/** The last resort: stop trying, and never keep VRRP held back for it. */
function giveUp(s: BulkState, now: number, fx: BulkEffect[], why: string, level: LogLevel): BulkState {
  fx.push({ type: 'count', counter: 'bulk_syncs_failed' });
  let r = transition(cancel(s, fx), 'failed', now, fx, why, level);
  if (r.demoted) r = demote(r, fx, false, `bulk sync failed (${why}); releasing VRRP with an incomplete state table`, level);
  // Not for ever: another round later (or at once when a peer comes back up).
  return arm(r, fx, now + r.config.retryAfterMs);
}

function demote(s: BulkState, fx: BulkEffect[], on: boolean, why: string, level: LogLevel = 'info'): BulkState {
  fx.push({ type: 'demote', on, why });
  log(s, fx, level, on ? 'holding VRRP back' : 'releasing VRRP', { why });
  return { ...s, demoted: on };
}

function transition(s: BulkState, to: BulkStateName, now: number, fx: BulkEffect[], why: string, level: LogLevel = 'info'): BulkState {
  if (s.state === to) {
    log(s, fx, 'debug', `${to}: ${why}`, { state: to, why });
    return s;
  }
  log(s, fx, level, `${s.state} -> ${to}`, { from: s.state, to, why, text: BULK_STATE_TEXT[to] });
  return { ...s, state: to, lastTransition: { from: s.state, to, why, atMs: now } };
}

function arm(s: BulkState, fx: BulkEffect[], at: number): BulkState {
  fx.push({ type: 'arm_timer', atMs: at });
  return { ...s, timerAtMs: at };
}

function cancel(s: BulkState, fx: BulkEffect[]): BulkState {
  if (s.timerAtMs === undefined) return s;
  fx.push({ type: 'cancel_timer' });
  return { ...s, timerAtMs: undefined };
}

function unexpected(s: BulkState, fx: BulkEffect[], what: string): BulkState {
  fx.push({ type: 'count', counter: 'unexpected_event' });
  log(s, fx, 'warn', `unexpected event ${what} in state ${s.state}`, { event: what, state: s.state });
  return s;
}

/** Refused writes reported with a data or bulk_end event: they count against the attempt under way. */
function noteRefused(s: BulkState, refused: number | undefined, fx: BulkEffect[]): BulkState {
  if (!refused || !inProgress(s)) return s;
  log(s, fx, 'warn', 'the kernel refused writes during the bulk sync: this attempt cannot complete the table', { refused });
  return { ...s, refused: s.refused + refused };
}

function withoutKey(rec: Readonly<Record<number, number>>, key: number): Record<number, number> {
  const out: Record<number, number> = {};
  for (const [k, v] of Object.entries(rec)) if (Number(k) !== key) out[Number(k)] = v;
  return out;
}

function log(s: BulkState, fx: BulkEffect[], level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  fx.push({ type: 'log', level, msg, fields: { component: 'sync-bulk', state: s.state, ...fields } });
}

/** Why the table is not complete yet, for readiness (`source`: the name of the peer asked). */
export function progressText(b: BulkState, source: string | undefined): string {
  switch (b.state) {
    case 'requesting':
      return source ? `bulk sync: asked ${source} (attempt ${b.attempt})` : 'bulk sync: waiting for a peer to sync from';
    case 'receiving':
      return `bulk sync: ${b.received} entries received from ${source ?? '?'}`;
    default:
      return `bulk sync: ${BULK_STATE_TEXT[b.state]}`;
  }
}
