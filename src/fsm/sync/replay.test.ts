/**
 * Replay protection: the epoch handshake (bootstrap, verification, restart), old epochs,
 * messages for an earlier run of ours, and the packet-number window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { check, initialReplayState, sessionUp, type ReplayInput, type ReplayState, type ReplayVerdict } from './replay.js';

const US = 0xaaaa0001;
const US_BEFORE = 0xaaaa0000; // our previous run
const P1 = 0x11110001; // the peer's epoch
const P2 = 0x11110002; // the peer after a restart

const hello = (epoch: number, packet: number, peerEpoch = 0): ReplayInput => ({ type: 'hello', epoch, packet, peerEpoch });
const data = (epoch: number, packet: number, peerEpoch = US): ReplayInput => ({ type: 'data', epoch, packet, peerEpoch });

/** Feeds messages in turn; returns the final state and each verdict. */
function run(msgs: ReplayInput[], s: ReplayState = initialReplayState(US)): { s: ReplayState; v: ReplayVerdict[] } {
  const v: ReplayVerdict[] = [];
  for (const m of msgs) {
    const r = check(s, m);
    s = r.state;
    v.push(r.verdict);
  }
  return { s, v };
}
const outcome = (v: ReplayVerdict) => (v.accept ? v.news : v.reason);

test('first contact: a HELLO that does not know us teaches the epoch; naming us verifies it', () => {
  const { s, v } = run([hello(P1, 1), hello(P1, 2, US)]);
  assert.deepEqual(v.map(outcome), ['epoch_learned', 'session_started']);
  assert.deepEqual(v.map((x) => x.bootstrap), [true, false]);
  assert.ok(sessionUp(s));
  assert.equal(s.peer?.epoch, P1);
});

test('first contact: a message that already names our epoch starts the session at once', () => {
  const { s, v } = run([data(P1, 5)]);
  assert.deepEqual(v.map(outcome), ['session_started']);
  assert.ok(sessionUp(s));
});

test('only a HELLO may come without our epoch; anything naming our previous run is refused', () => {
  const { s, v } = run([data(P1, 1, 0), data(P1, 2, US_BEFORE), { type: 'bulk_request', epoch: P1, packet: 3, peerEpoch: US_BEFORE }, hello(P1, 4, US_BEFORE)]);
  assert.deepEqual(v.map(outcome), ['wrong_peer_epoch', 'wrong_peer_epoch', 'wrong_peer_epoch', 'epoch_learned']);
  assert.ok(!sessionUp(s));
});

test('packet numbers: duplicates and numbers below the window are refused, reordering inside it is fine', () => {
  const s0 = initialReplayState(US, { windowSize: 8, retiredEpochs: 4 });
  const { v } = run([data(P1, 10), data(P1, 12), data(P1, 11), data(P1, 12), data(P1, 10), data(P1, 5), data(P1, 4), data(P1, 3), data(P1, 30), data(P1, 23), data(P1, 22)], s0);
  // The window covers the 8 numbers highest-7 .. highest.
  assert.deepEqual(v.map(outcome), ['session_started', 'none', 'none', 'duplicate', 'duplicate', 'none', 'too_old', 'too_old', 'none', 'none', 'too_old']);
});

test('a jump beyond the window forgets the old bitmap but still refuses what lies below', () => {
  const s0 = initialReplayState(US, { windowSize: 4, retiredEpochs: 4 });
  const { v } = run([data(P1, 1), data(P1, 2), data(P1, 100), data(P1, 2), data(P1, 97), data(P1, 97), data(P1, 96)], s0);
  assert.deepEqual(v.map(outcome), ['session_started', 'none', 'none', 'too_old', 'none', 'duplicate', 'too_old']);
});

test('a restart: the new epoch must name ours before it replaces a verified one; the old epoch is retired', () => {
  const { s: up } = run([hello(P1, 1), data(P1, 2)]);
  assert.ok(sessionUp(up));
  const { s, v } = run(
    [
      hello(P2, 1), // the new run does not know us yet: refused, but the link answers it
      data(P1, 3), // the old run's traffic is still fine meanwhile
      hello(P2, 2, US), // it heard our HELLO: a verified restart
      data(P1, 4, US), // the old run, even naming us, is now in the past
      hello(P1, 5, 0),
      data(P2, 3),
    ],
    up,
  );
  assert.deepEqual(v.map(outcome), ['unverified_epoch', 'none', 'peer_restarted', 'old_epoch', 'old_epoch', 'none']);
  assert.equal(v[0]?.bootstrap, true);
  assert.deepEqual(s.retired, [P1]);
  assert.equal(s.peer?.epoch, P2);
});

test('a replayed old HELLO cannot lock out the real peer before verification', () => {
  // We start; an attacker replays a HELLO of the peer's earlier run before the real peer speaks.
  const { s, v } = run([hello(P1, 900), hello(P2, 1), hello(P1, 901), hello(P2, 2), hello(P2, 3, US), hello(P1, 902)]);
  assert.deepEqual(v.map(outcome), ['epoch_learned', 'epoch_learned', 'epoch_learned', 'epoch_learned', 'session_started', 'unverified_epoch']);
  assert.equal(s.peer?.epoch, P2);
  assert.ok(sessionUp(s));
});

test('retired epochs are bounded', () => {
  let s = initialReplayState(US, { windowSize: 8, retiredEpochs: 3 });
  for (let e = 1; e <= 6; e++) s = check(s, data(e, 1)).state;
  assert.deepEqual(s.retired, [3, 4, 5]);
  // Epoch 2 fell off the list: that is the price of the bound (an attacker would need a
  // capture from more than `retiredEpochs` restarts ago that names our current epoch).
  assert.equal(outcome(check(s, data(2, 2)).verdict), 'peer_restarted');
  assert.equal(outcome(check(s, data(4, 2)).verdict), 'old_epoch');
});

test('property: within one epoch no packet number is ever accepted twice, and fresh increasing ones always are', () => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 400 }), { maxLength: 300 }), fc.integer({ min: 1, max: 64 }), (packets, w) => {
      let s = initialReplayState(US, { windowSize: w, retiredEpochs: 4 });
      const accepted = new Set<number>();
      let highest = -1;
      for (const p of packets) {
        const r = check(s, data(P1, p));
        s = r.state;
        if (r.verdict.accept) {
          assert.ok(!accepted.has(p), `packet ${p} accepted twice`);
          accepted.add(p);
        } else if (p > highest) {
          assert.fail(`fresh packet ${p} above ${highest} refused: ${r.verdict.reason}`);
        }
        highest = Math.max(highest, p);
      }
    }),
    { numRuns: 300 },
  );
});
