import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../lib/clock.js';
import { AdvertSchedule } from './advert-schedule.js';

function setup(opts: { failOn?: number } = {}) {
  const clock = new FakeClock(5000);
  const sent: { at: number; ctx: string; payload: number[]; dst: string }[] = [];
  const s = new AdvertSchedule<string>({
    clock,
    send: (ctx, payload, dst) => {
      if (opts.failOn !== undefined && sent.length === opts.failOn) {
        sent.push({ at: -1, ctx, payload: [], dst });
        throw new Error('EAGAIN');
      }
      sent.push({ at: clock.now(), ctx, payload: [...payload], dst });
    },
  });
  return { clock, s, sent };
}

test('sends at once, then every interval on its own while the lease is renewed; the same payload only renews', () => {
  const { clock, s, sent } = setup();
  s.set('51/224.0.0.18', 'eth0', Uint8Array.of(1, 200), '224.0.0.18', 100, 300);
  assert.equal(sent.length, 1);
  for (let i = 0; i < 10; i++) {
    clock.advance(100);
    // The daemon's own advert timer renews at its own phase: no extra send.
    s.set('51/224.0.0.18', 'eth0', Uint8Array.of(1, 200), '224.0.0.18', 100, 300);
  }
  assert.equal(sent.length, 11);
  assert.deepEqual(sent.map((x) => x.at - 5000), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  assert.equal(s.timing.lateMaxMs, 0);
});

test('the daemon stops renewing (its loop hung): adverts stop after the lease, counted', () => {
  const { clock, s, sent } = setup();
  s.set('k', 'eth0', Uint8Array.of(1), '224.0.0.18', 100, 300);
  clock.advance(1000);
  // Sent at 0, 100, 200, 300; the one due at 400 finds the lease over.
  assert.equal(sent.length, 4);
  assert.equal(s.timing.expired, 1);
  assert.equal(s.size, 0);
});

test('a new payload goes out at once and restarts the cadence; stop ends it by prefix or by socket', () => {
  const { clock, s, sent } = setup();
  s.set('51/a', 'eth0', Uint8Array.of(1, 200), 'a', 100, 300);
  s.set('52/a', 'eth1', Uint8Array.of(2, 200), 'a', 100, 300);
  clock.advance(30);
  s.set('51/a', 'eth0', Uint8Array.of(1, 50), 'a', 100, 300);
  assert.deepEqual(sent.map((x) => x.payload), [[1, 200], [2, 200], [1, 50]]);
  clock.advance(100);
  assert.deepEqual(sent.slice(3).map((x) => [x.at - 5000, x.payload[0]]), [[100, 2], [130, 1]]);
  s.stop('51/');
  s.set('52/a', 'eth1', Uint8Array.of(2, 200), 'a', 100, 300);
  clock.advance(100);
  assert.deepEqual(sent.slice(5).map((x) => x.payload[0]), [2]);
  s.stopCtx('eth1');
  clock.advance(500);
  assert.equal(sent.length, 6);
  assert.equal(s.size, 0);
});

test('a send that fails is counted and the schedule goes on; a late timer is measured and does not drift', () => {
  const { clock, s, sent } = setup({ failOn: 1 });
  clock.setFireOffset((n) => (n === 1 ? 35 : 0)); // the second timer fires 35 ms late
  s.set('k', 'eth0', Uint8Array.of(1), 'd', 100, 10_000);
  clock.advance(100); // fails
  clock.advance(135); // due at 200, fires at 235
  assert.equal(s.timing.failed, 1);
  assert.equal(s.timing.sent, 2);
  assert.equal(s.timing.lateMaxMs, 35);
  assert.equal(s.timing.late10, 1);
  clock.advance(65); // the next is due at 300, not 335
  assert.equal(sent.at(-1)!.at - 5000, 300);
});

test('a payload its caller already sent starts the cadence from that send', () => {
  const { clock, s, sent } = setup();
  s.set('k', 'eth0', Uint8Array.of(1), 'd', 100, 300, clock.now() - 20);
  assert.equal(sent.length, 0);
  clock.advance(80);
  assert.deepEqual(sent.map((x) => x.at - 5000), [80]);
});

test('an advert out of turn: forced now, or sent by the caller, restarts the cadence from it', () => {
  const { clock, s, sent } = setup();
  s.set('k', 'eth0', Uint8Array.of(1), 'd', 100, 1000);
  clock.advance(40);
  s.set('k', 'eth0', Uint8Array.of(1), 'd', 100, 1000, undefined, true);
  assert.deepEqual(sent.map((x) => x.at - 5000), [0, 40]);
  clock.advance(100);
  assert.deepEqual(sent.map((x) => x.at - 5000), [0, 40, 140]);
  clock.advance(10);
  s.set('k', 'eth0', Uint8Array.of(1), 'd', 100, 1000, clock.now());
  clock.advance(100);
  assert.deepEqual(sent.map((x) => x.at - 5000), [0, 40, 140, 250], 'the caller sent at 150: next at 250, not 240');
});
