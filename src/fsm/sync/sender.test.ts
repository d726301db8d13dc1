/**
 * The reliable sender, event by event on plain-number time: sessions, numbering, the window,
 * cumulative acks, retransmission timing with capped backoff, NACKs, the bounded queue and
 * the resync it leads to, lag, and the sequence wrap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SyncRecord } from '../../codec/sync/message.js';
import { SYNC_OVERHEAD } from '../../codec/sync/constants.js';
import {
  initialSenderState,
  lagMs,
  queueSize,
  queuedRecords,
  room,
  rtoFor,
  step,
  type SenderConfig,
  type SenderEffect,
  type SenderEvent,
  type SenderState,
} from './sender.js';

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

const rec = (i: number, size = 8): SyncRecord => ({ type: 'ct_update', body: new Uint8Array(size).fill(i & 0xff) });
/** A record so big that two never share a message of `max` bytes. */
const big = (i: number, max = 1400): SyncRecord => rec(i, Math.floor((max - SYNC_OVERHEAD) / 2) + 1);

type Fx<T extends SenderEffect['type']> = Extract<SenderEffect, { type: T }>;
const of = <T extends SenderEffect['type']>(fx: SenderEffect[], type: T): Array<Fx<T>> => fx.filter((e): e is Fx<T> => e.type === type);
const sentSeqs = (fx: SenderEffect[]) => of(fx, 'send').map((e) => e.seq);
const counted = (fx: SenderEffect[], counter: string) => of(fx, 'count').filter((e) => e.counter === counter).reduce((n, e) => n + e.by, 0);

/** Runs events in turn, collecting effects. */
function drive(s: SenderState, events: Array<[number, SenderEvent]>): { s: SenderState; fx: SenderEffect[] } {
  const fx: SenderEffect[] = [];
  for (const [t, e] of events) {
    const r = step(s, e, t);
    s = r.state;
    fx.push(...r.effects);
  }
  return { s, fx };
}

function withSession(c: Partial<SenderConfig> = {}, now = 0): SenderState {
  return step(initialSenderState(c), { type: 'peer_restarted' }, now).state;
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

test('nothing is sent or kept before there is a session', () => {
  const { s, fx } = drive(initialSenderState(), [[0, { type: 'enqueue', records: [rec(1), rec(2)] }]]);
  assert.equal(of(fx, 'send').length, 0);
  assert.equal(counted(fx, 'records_dropped_no_session'), 2);
  assert.equal(queueSize(s), 0);
});

test('records are numbered from 0 and sent at once while the window has room; one timer', () => {
  const { s, fx } = drive(withSession(), [
    [0, { type: 'enqueue', records: [rec(1), rec(2), rec(3)] }],
    [5, { type: 'enqueue', records: [rec(4)] }],
  ]);
  assert.deepEqual(sentSeqs(fx), [0, 1]);
  const first = of(fx, 'send')[0]?.unit;
  assert.equal(first?.kind === 'records' ? first.records.length : 0, 3, 'one enqueue, one message');
  assert.deepEqual(of(fx, 'arm_timer').map((e) => e.atMs), [100], 'armed for the first; the second does not move it');
  assert.equal(s.nextSeq, 2);
  assert.equal(queuedRecords(s), 4);
});

test('window: at most `window` messages in flight; the rest wait and are packed together', () => {
  const { s, fx } = drive(withSession({ window: 4 }), Array.from({ length: 10 }, (_, i): [number, SenderEvent] => [i, { type: 'enqueue', records: [rec(i)] }]));
  assert.deepEqual(sentSeqs(fx), [0, 1, 2, 3]);
  assert.equal(s.inFlight.length, 4);
  assert.equal(s.waiting.length, 1, 'six small records waiting share one message');
  assert.equal(queuedRecords(s), 10);
  // A cumulative ack for two frees two slots: the waiting message goes out as seq 4.
  const r = step(s, { type: 'ack', ack: 2, nacks: [] }, 20);
  assert.deepEqual(sentSeqs(r.effects), [4]);
  assert.equal(r.state.inFlight.length, 3);
  assert.deepEqual(r.state.inFlight.map((m) => m.seq), [2, 3, 4]);
});

test('waiting messages are split at the message size limit', () => {
  const max = 200;
  const { s } = drive(withSession({ window: 1, maxMessageBytes: max }), [
    [0, { type: 'enqueue', records: [rec(0)] }],
    [1, { type: 'enqueue', records: Array.from({ length: 30 }, (_, i) => rec(i, 20)) }],
  ]);
  assert.ok(s.waiting.length > 1);
  for (const w of s.waiting) assert.ok(w.bytes <= max, `${w.bytes} > ${max}`);
  assert.equal(queuedRecords(s), 31);
});

test('acks: cumulative frees everything before it; an old ack frees nothing; an ack for unsent messages is refused', () => {
  const start = drive(withSession(), [[0, { type: 'enqueue', records: [big(1)] }], [0, { type: 'enqueue', records: [big(2)] }], [0, { type: 'enqueue', records: [big(3)] }]]).s;
  assert.deepEqual(start.inFlight.map((m) => m.seq), [0, 1, 2]);
  const { s, fx } = drive(start, [
    [10, { type: 'ack', ack: 2, nacks: [] }],
    [11, { type: 'ack', ack: 1, nacks: [] }],
    [12, { type: 'ack', ack: 9, nacks: [] }],
  ]);
  assert.deepEqual(s.inFlight.map((m) => m.seq), [2]);
  assert.equal(counted(fx, 'messages_acked'), 2);
  assert.equal(counted(fx, 'bad_ack'), 1);
  const all = step(s, { type: 'ack', ack: 3, nacks: [] }, 13);
  assert.equal(all.state.inFlight.length, 0);
  assert.deepEqual(of(all.effects, 'cancel_timer').length, 1, 'nothing in flight: timer cancelled');
  assert.equal(all.state.timerAtMs, undefined);
});

test('retransmission timing: doubling backoff from rtoInitial, capped at rtoMax', () => {
  const c = { rtoInitialMs: 100, rtoMaxMs: 1000 };
  let s = drive(withSession(c), [[0, { type: 'enqueue', records: [rec(1)] }]]).s;
  const sentAt: number[] = [];
  for (let i = 0; i < 7; i++) {
    const at = s.timerAtMs as number;
    const r = step(s, { type: 'retransmit_timer' }, at);
    assert.deepEqual(of(r.effects, 'send').map((e) => [e.seq, e.retransmit]), [[0, true]]);
    sentAt.push(at);
    s = r.state;
  }
  // 100, +200, +400, +800, then capped at +1000.
  assert.deepEqual(sentAt, [100, 300, 700, 1500, 2500, 3500, 4500]);
  assert.equal(s.inFlight[0]?.transmissions, 8);
  assert.equal(rtoFor(s.config, 20), 1000);
});

test('a timer event before the deadline is stale and sends nothing', () => {
  const s = drive(withSession(), [[0, { type: 'enqueue', records: [rec(1)] }]]).s;
  const r = step(s, { type: 'retransmit_timer' }, 50);
  assert.equal(of(r.effects, 'send').length, 0);
  assert.equal(counted(r.effects, 'stale_timer'), 1);
  assert.equal(r.state.timerAtMs, 100);
  // The deadline is asked for again: an early firing must not leave the window without a timer.
  assert.deepEqual(of(r.effects, 'arm_timer'), [{ type: 'arm_timer', atMs: 100 }]);
});

test('only the messages whose timeout passed are resent; each keeps its own backoff', () => {
  const { s } = drive(withSession(), [
    [0, { type: 'enqueue', records: [big(1)] }],
    [60, { type: 'enqueue', records: [big(2)] }],
  ]);
  const r1 = step(s, { type: 'retransmit_timer' }, 100);
  assert.deepEqual(sentSeqs(r1.effects), [0]);
  assert.equal(r1.state.timerAtMs, 160, 'next: message 1 at 60 + 100');
  const r2 = step(r1.state, { type: 'retransmit_timer' }, 160);
  assert.deepEqual(sentSeqs(r2.effects), [1]);
  assert.equal(r2.state.timerAtMs, 300, 'message 0 again at 100 + 200');
});

test('NACK: resent at once without backing off, but not twice within the holdoff', () => {
  const start = drive(withSession(), Array.from({ length: 5 }, (_, i): [number, SenderEvent] => [0, { type: 'enqueue', records: [big(i)] }])).s;
  const r = step(start, { type: 'ack', ack: 1, nacks: [{ first: 2, last: 3 }] }, 30);
  assert.deepEqual(of(r.effects, 'send').map((e) => [e.seq, e.retransmit]), [[2, true], [3, true]]);
  assert.equal(counted(r.effects, 'retransmits_nack'), 2);
  assert.equal(r.state.inFlight.find((m) => m.seq === 2)?.backoff, 0);
  const again = step(r.state, { type: 'ack', ack: 1, nacks: [{ first: 2, last: 4 }] }, 35);
  assert.deepEqual(sentSeqs(again.effects), [4], 'only 4: 2 and 3 went out 5 ms ago');
});

test('overflow: waiting messages are dropped, resync needed once; records dropped until bulk_begin', () => {
  const c = { window: 2, queueLimit: 4 };
  const events = Array.from({ length: 5 }, (_, i): [number, SenderEvent] => [i, { type: 'enqueue', records: [big(i)] }]);
  const { s, fx } = drive(withSession(c), events);
  assert.deepEqual(of(fx, 'resync_needed'), [{ type: 'resync_needed', why: 'overflow', droppedMessages: 3, droppedRecords: 3 }]);
  assert.equal(s.resync, 'needed');
  assert.equal(s.inFlight.length, 2, 'what is in flight stays: the stream has no hole');
  assert.equal(s.waiting.length, 0);
  assert.ok(of(fx, 'log').some((e) => e.level === 'warn' && /overflow/.test(e.msg)));

  // More records are pointless until the peer gets the whole table.
  const more = step(s, { type: 'enqueue', records: [rec(9), rec(10)] }, 10);
  assert.equal(counted(more.effects, 'records_dropped_resync'), 2);
  assert.equal(of(more.effects, 'resync_needed').length, 0);

  // The peer acks everything in flight: it is alive, push the table now.
  const back = step(more.state, { type: 'ack', ack: 2, nacks: [] }, 20);
  assert.equal(of(back.effects, 'resync_ready').length, 1);
  assert.equal(back.state.resync, 'ready');

  // The service begins the bulk transfer: records flow again.
  const { s: pushing, fx: pfx } = drive(back.state, [
    [21, { type: 'bulk_begin' }],
    [22, { type: 'enqueue', records: [rec(1)], bulk: true }],
    [22, { type: 'enqueue_bulk_end', requestId: 0, count: 1 }],
  ]);
  assert.equal(pushing.resync, 'none');
  const sends = of(pfx, 'send');
  assert.deepEqual(sends.map((e) => [e.seq, e.unit.kind]), [[2, 'records'], [3, 'bulk_end']]);
});

test('a queue held by a silent peer stays bounded whatever is offered', () => {
  let s = withSession({ window: 8, queueLimit: 32 });
  for (let i = 0; i < 5000; i++) s = step(s, { type: 'enqueue', records: [big(i)] }, i).state;
  assert.ok(queueSize(s) <= 32);
  assert.equal(s.resync, 'needed');
});

test('room and lag: what a bulk transfer can still queue, and how old the oldest unacked message is', () => {
  let s = withSession({ window: 2, queueLimit: 10 });
  assert.equal(room(s), 10);
  assert.equal(lagMs(s, 0), 0);
  s = drive(s, [[100, { type: 'enqueue', records: [big(1)] }], [150, { type: 'enqueue', records: [big(2)] }], [170, { type: 'enqueue', records: [big(3)] }]]).s;
  assert.equal(room(s), 7);
  assert.equal(lagMs(s, 400), 300);
  s = step(s, { type: 'ack', ack: 1, nacks: [] }, 400).state;
  assert.equal(lagMs(s, 400), 250);
});

test('a restarted peer gets a fresh stream: queue dropped, numbering from 0, resync cleared', () => {
  const { s } = drive(withSession({ window: 1, queueLimit: 2 }), [
    [0, { type: 'enqueue', records: [big(1)] }],
    [0, { type: 'enqueue', records: [big(2)] }],
    [0, { type: 'enqueue', records: [big(3)] }],
    [0, { type: 'enqueue', records: [big(4)] }],
  ]);
  assert.equal(s.resync, 'needed');
  const r = step(s, { type: 'peer_restarted' }, 50);
  assert.equal(counted(r.effects, 'records_dropped_restart'), 1);
  assert.equal(r.state.nextSeq, 0);
  assert.equal(queueSize(r.state), 0);
  assert.equal(r.state.resync, 'none');
  assert.equal(of(r.effects, 'cancel_timer').length, 1);
  assert.deepEqual(sentSeqs(step(r.state, { type: 'enqueue', records: [rec(5)] }, 51).effects), [0]);
});

test('a record that fits in no message is dropped loudly; the others go', () => {
  const r = step(withSession({ maxMessageBytes: 100 }), { type: 'enqueue', records: [rec(1), rec(2, 500), rec(3)] }, 0);
  assert.equal(counted(r.effects, 'record_too_large'), 1);
  const sent = of(r.effects, 'send')[0];
  assert.ok(sent && sent.unit.kind === 'records');
  assert.equal(sent.unit.kind === 'records' && sent.unit.records.length, 2);
});

test('sequence numbers wrap from 2^32-1 to 0; acks across the wrap free the right messages', () => {
  const s0 = withSession({ firstSeq: 0xfffffffe });
  const { s, fx } = drive(s0, Array.from({ length: 4 }, (_, i): [number, SenderEvent] => [0, { type: 'enqueue', records: [big(i)] }]));
  assert.deepEqual(sentSeqs(fx), [0xfffffffe, 0xffffffff, 0, 1]);
  const r = step(s, { type: 'ack', ack: 1, nacks: [{ first: 1, last: 1 }] }, 50);
  assert.deepEqual(r.state.inFlight.map((m) => m.seq), [1]);
  assert.deepEqual(sentSeqs(r.effects), [1]);
  assert.equal(counted(step(s, { type: 'ack', ack: 3, nacks: [] }, 50).effects, 'bad_ack'), 1);
});

test('an unknown event is a log line and a counter, never a throw', () => {
  const r = step(withSession(), { type: 'explode' } as unknown as SenderEvent, 0);
  assert.equal(counted(r.effects, 'unexpected_event'), 1);
});

test("flow control: no more in flight than the peer's receive window; its opening sends the rest", () => {
  const s0 = withSession({ window: 8 });
  // The peer acks nothing yet but says it can take 2 messages past ack 0.
  const a = drive(s0, [[0, { type: 'ack', ack: 0, nacks: [], window: 2 }]]);
  const b = drive(a.s, [[1, { type: 'enqueue', records: [big(1), big(2), big(3), big(4)] }]]);
  assert.deepEqual(sentSeqs(b.fx), [0, 1]);
  assert.equal(queueSize(b.s), 4);
  // Acked, window closed: nothing more goes out.
  const c = drive(b.s, [[2, { type: 'ack', ack: 2, nacks: [], window: 0 }]]);
  assert.deepEqual(sentSeqs(c.fx), []);
  // The window opens (no limit): the rest goes at once.
  const d = drive(c.s, [[3, { type: 'ack', ack: 2, nacks: [] }]]);
  assert.deepEqual(sentSeqs(d.fx), [2, 3]);
  // A refused ack (beyond what was sent) does not change the window.
  const e = drive(c.s, [[3, { type: 'ack', ack: 99, nacks: [], window: 50 }]]);
  assert.equal(e.s.peerWindow, 0);
});

test('a peer that goes silent is no longer queued for: memory stays bounded; it resyncs when back', () => {
  const s0 = withSession({ window: 1 });
  const a = drive(s0, [[0, { type: 'enqueue', records: [big(1), big(2), big(3)] }]]);
  assert.equal(queueSize(a.s), 3);
  const dead = drive(a.s, [[10, { type: 'peer_dead' }]]);
  assert.deepEqual(of(dead.fx, 'resync_needed'), [{ type: 'resync_needed', why: 'peer_dead', droppedMessages: 2, droppedRecords: 2 }]);
  assert.equal(queueSize(dead.s), 1, 'only what is in flight (bounded by the window) stays');
  // Records offered while it is gone are dropped and counted, never kept.
  const more = drive(dead.s, Array.from({ length: 100 }, (_, i): [number, SenderEvent] => [20 + i, { type: 'enqueue', records: [big(i)] }]));
  assert.equal(queueSize(more.s), 1);
  assert.equal(counted(more.fx, 'records_dropped_resync'), 100);
  // The same run of the peer comes back and acks what was in flight: the whole table goes to it.
  const back = drive(more.s, [[200, { type: 'ack', ack: 1, nacks: [] }]]);
  assert.equal(of(back.fx, 'resync_ready').length, 1);
});

test('an ack tells the lag of each live message it frees (from its first record queued), weighted by its records; bulk ones are not counted', () => {
  let s = withSession({ window: 4, queueLimit: 10 });
  s = drive(s, [[100, { type: 'enqueue', records: [big(1)] }], [130, { type: 'enqueue', records: [rec(2), rec(3)] }], [140, { type: 'enqueue', records: [big(4)], bulk: true }]]).s;
  const r = step(s, { type: 'ack', ack: 3, nacks: [] }, 200);
  assert.deepEqual(of(r.effects, 'acked'), [{ type: 'acked', lags: [{ ms: 100, records: 1 }, { ms: 70, records: 2 }] }]);
  // An ack that frees nothing tells nothing.
  assert.deepEqual(of(step(r.state, { type: 'ack', ack: 3, nacks: [] }, 250).effects, 'acked'), []);
});
