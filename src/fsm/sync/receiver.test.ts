/**
 * The receiver, event by event on plain-number time: in-order delivery, buffering behind a
 * gap, NACK ranges and their holdoff, delayed and immediate acks, duplicates, the window,
 * tail loss found through HELLO, restarts and the wrap. Then sender and receiver wired back
 * to back without loss.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SyncRecord } from '../../codec/sync/message.js';
import type { StreamUnit } from './common.js';
import { initialReceiverState, missingRanges, step, type ReceiverConfig, type ReceiverEffect, type ReceiverEvent, type ReceiverState } from './receiver.js';
import * as sender from './sender.js';

const unit = (i: number): StreamUnit => ({ kind: 'records', bulk: false, records: [{ type: 'ct_update', body: Uint8Array.of(i & 0xff) }] });
const dataEv = (seq: number, i = seq): ReceiverEvent => ({ type: 'data', seq, unit: unit(i) });

type Fx<T extends ReceiverEffect['type']> = Extract<ReceiverEffect, { type: T }>;
const of = <T extends ReceiverEffect['type']>(fx: ReceiverEffect[], type: T): Array<Fx<T>> => fx.filter((e): e is Fx<T> => e.type === type);
const delivered = (fx: ReceiverEffect[]) => of(fx, 'deliver').map((e) => e.seq);
const acks = (fx: ReceiverEffect[]) => of(fx, 'send_ack').map((e) => ({ ack: e.ack, nacks: e.nacks.map((r) => [r.first, r.last]) }));
const counted = (fx: ReceiverEffect[], counter: string) => of(fx, 'count').filter((e) => e.counter === counter).reduce((n, e) => n + e.by, 0);

function drive(s: ReceiverState, events: Array<[number, ReceiverEvent]>): { s: ReceiverState; fx: ReceiverEffect[] } {
  const fx: ReceiverEffect[] = [];
  for (const [t, e] of events) {
    const r = step(s, e, t);
    s = r.state;
    fx.push(...r.effects);
  }
  return { s, fx };
}
function withSession(c: Partial<ReceiverConfig> = {}): ReceiverState {
  return step(initialReceiverState(c), { type: 'peer_restarted' }, 0).state;
}

test('in order: each message delivered at once; the ack waits ackDelay, or goes after ackEvery', () => {
  const { s, fx } = drive(withSession({ ackDelayMs: 10, ackEvery: 4 }), [
    [0, dataEv(0)],
    [1, dataEv(1)],
  ]);
  assert.deepEqual(delivered(fx), [0, 1]);
  assert.deepEqual(acks(fx), []);
  assert.deepEqual(of(fx, 'arm_timer').map((e) => e.atMs), [10], 'armed once, at the first');
  const t = step(s, { type: 'ack_timer' }, 10);
  assert.deepEqual(acks(t.effects), [{ ack: 2, nacks: [] }]);
  const burst = drive(t.state, [[11, dataEv(2)], [11, dataEv(3)], [11, dataEv(4)], [11, dataEv(5)]]);
  assert.deepEqual(acks(burst.fx), [{ ack: 6, nacks: [] }], 'the fourth in-order message acks at once');
});

test('out of order: buffered behind the gap, NACKed at once, all delivered in order when the gap fills', () => {
  const { s, fx } = drive(withSession(), [
    [0, dataEv(0)],
    [1, dataEv(2)],
    [2, dataEv(3)],
    [3, dataEv(5)],
  ]);
  assert.deepEqual(delivered(fx), [0]);
  assert.deepEqual(acks(fx), [{ ack: 1, nacks: [[1, 1]] }], 'one NACK for the burst (holdoff)');
  assert.deepEqual(missingRanges(s), [{ first: 1, last: 1 }, { first: 4, last: 4 }]);
  const fill = drive(s, [[30, dataEv(1)]]);
  assert.deepEqual(delivered(fill.fx), [1, 2, 3]);
  assert.deepEqual(acks(fill.fx), [{ ack: 4, nacks: [[4, 4]] }], 'a gap remains: NACK again (holdoff over)');
  const last = drive(fill.s, [[31, dataEv(4)]]);
  assert.deepEqual(delivered(last.fx), [4, 5]);
  assert.equal(last.s.expected, 6);
  assert.equal(last.s.buffer.length, 0);
  assert.equal(last.s.delivered, 6);
});

test('the NACK holdoff: a second gap inside it waits for a plain ack, and the next event after it NACKs', () => {
  const { s, fx } = drive(withSession({ nackHoldoffMs: 20, ackDelayMs: 10 }), [
    [0, dataEv(1)],
    [5, dataEv(3)],
  ]);
  assert.deepEqual(acks(fx), [{ ack: 0, nacks: [[0, 0]] }]);
  const t = step(s, { type: 'ack_timer' }, 15);
  assert.deepEqual(acks(t.effects), [{ ack: 0, nacks: [] }], 'holdoff still running: cumulative only');
  const later = step(t.state, dataEv(4), 25);
  assert.deepEqual(acks(later.effects), [{ ack: 0, nacks: [[0, 0], [2, 2]] }]);
});

test('duplicates are counted, never delivered twice, and acked again (coalesced)', () => {
  const { s, fx } = drive(withSession({ ackDelayMs: 10 }), [
    [0, dataEv(0)],
    [0, dataEv(1)],
    [50, dataEv(0)],
    [51, dataEv(1)],
    [52, dataEv(3)],
    [53, dataEv(3)],
  ]);
  assert.deepEqual(delivered(fx), [0, 1]);
  assert.equal(counted(fx, 'duplicates'), 3);
  assert.deepEqual(acks(fx)[0], { ack: 2, nacks: [] }, 'the first duplicate acks at once');
  assert.equal(s.buffer.length, 1);
});

test('a message beyond the window is dropped, and the ack tells the sender where we are', () => {
  const r = drive(withSession({ window: 4 }), [[0, dataEv(4)]]);
  assert.equal(counted(r.fx, 'beyond_window'), 1);
  assert.equal(r.s.buffer.length, 0);
  assert.deepEqual(acks(r.fx), [{ ack: 0, nacks: [] }]);
  const inside = drive(withSession({ window: 4 }), [[0, dataEv(3)]]);
  assert.equal(inside.s.buffer.length, 1);
});

test('tail loss: a HELLO with the peer\'s next sequence reveals messages we never saw', () => {
  const { s, fx } = drive(withSession(), [
    [0, dataEv(0)],
    [100, { type: 'hello', next: 3 }],
  ]);
  assert.deepEqual(acks(fx), [{ ack: 1, nacks: [[1, 2]] }]);
  // A HELLO that lags behind what we know says nothing new.
  const old = step(s, { type: 'hello', next: 2 }, 200);
  assert.deepEqual(acks(old.effects), []);
  // NACK ranges never reach beyond the window.
  const far = step(withSession({ window: 8 }), { type: 'hello', next: 1000 }, 0);
  assert.deepEqual(acks(far.effects), [{ ack: 0, nacks: [[0, 7]] }]);
});

test('an ack that rode on another message cancels the pending ACK, unless a NACK is owed', () => {
  const { s } = drive(withSession(), [[0, dataEv(0)]]);
  assert.notEqual(s.timerAtMs, undefined);
  const r = step(s, { type: 'ack_sent', ack: 1 }, 2);
  assert.equal(r.state.timerAtMs, undefined);
  assert.equal(of(r.effects, 'cancel_timer').length, 1);
  const stale = step(s, { type: 'ack_sent', ack: 0 }, 2);
  assert.equal(stale.state.timerAtMs, s.timerAtMs, 'an older ack changes nothing');
  const t = step(r.state, { type: 'ack_timer' }, 10);
  assert.equal(counted(t.effects, 'stale_timer'), 1);
  const early = step(s, { type: 'ack_timer' }, (s.timerAtMs as number) - 0.5);
  assert.deepEqual(of(early.effects, 'arm_timer'), [{ type: 'arm_timer', atMs: s.timerAtMs }], 'an early ack timer is armed again');
});

test('a restart starts a new stream; data without a session is ignored', () => {
  const { s } = drive(withSession(), [[0, dataEv(0)], [1, dataEv(1)], [2, dataEv(5)]]);
  const r = step(s, { type: 'peer_restarted' }, 10);
  assert.equal(r.state.expected, 0);
  assert.equal(r.state.buffer.length, 0);
  assert.deepEqual(delivered(step(r.state, dataEv(0, 99), 11).effects), [0]);
  const none = step(initialReceiverState(), dataEv(0), 0);
  assert.deepEqual(delivered(none.effects), []);
  assert.equal(counted(none.effects, 'data_without_session'), 1);
});

test('the wrap: delivery and NACK ranges across 2^32-1 -> 0', () => {
  const { s, fx } = drive(withSession({ firstSeq: 0xfffffffe }), [
    [0, dataEv(0xfffffffe, 1)],
    [1, dataEv(1, 4)],
  ]);
  assert.deepEqual(delivered(fx), [0xfffffffe]);
  assert.deepEqual(acks(fx), [{ ack: 0xffffffff, nacks: [[0xffffffff, 0]] }]);
  const r = drive(s, [[30, dataEv(0xffffffff, 2)], [31, dataEv(0, 3)]]);
  assert.deepEqual(delivered(r.fx), [0xffffffff, 0, 1]);
  assert.equal(r.s.expected, 2);
});

test('NACK ranges are capped at what one ACK carries', () => {
  let s = withSession({ window: 1000 });
  for (let i = 1; i < 400; i += 2) s = step(s, dataEv(i), 0).state;
  assert.equal(missingRanges(s).length, 64);
});

test('sender and receiver back to back, no loss: everything delivered once, in order, all acked', () => {
  let snd = sender.step(sender.initialSenderState({ window: 4 }), { type: 'peer_restarted' }, 0).state;
  let rcv = withSession();
  const got: number[] = [];
  let now = 0;
  const pending: ReceiverEvent[] = [];
  const toSender: sender.SenderEvent[] = [];
  const feedSender = (e: sender.SenderEvent) => {
    const r = sender.step(snd, e, now);
    snd = r.state;
    for (const x of r.effects) if (x.type === 'send') pending.push({ type: 'data', seq: x.seq, unit: x.unit });
  };
  for (let i = 0; i < 50; i++) feedSender({ type: 'enqueue', records: [{ type: 'ct_update', body: Uint8Array.of(i) }] });
  for (let rounds = 0; rounds < 1000 && (pending.length > 0 || toSender.length > 0 || sender.queueSize(snd) > 0); rounds++) {
    now += 1;
    for (const e of pending.splice(0)) {
      const r = step(rcv, e, now);
      rcv = r.state;
      for (const x of r.effects) {
        if (x.type === 'deliver' && x.unit.kind === 'records') got.push(...x.unit.records.map((rec: SyncRecord) => rec.body[0] as number));
        if (x.type === 'send_ack') toSender.push({ type: 'ack', ack: x.ack, nacks: x.nacks });
      }
    }
    if (rcv.timerAtMs !== undefined && now >= rcv.timerAtMs) {
      const r = step(rcv, { type: 'ack_timer' }, now);
      rcv = r.state;
      for (const x of r.effects) if (x.type === 'send_ack') toSender.push({ type: 'ack', ack: x.ack, nacks: x.nacks });
    }
    for (const e of toSender.splice(0)) feedSender(e);
  }
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
  assert.equal(sender.queueSize(snd), 0);
});
