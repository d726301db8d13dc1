import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeClock } from '../lib/clock.js';
import { ClusterEvents } from './cluster-events.js';

test('subscribers get each event once, stamped, in order; one that throws does not stop the others', () => {
  const clock = new FakeClock(1000);
  const ev = new ClusterEvents({ clock, log: pino({ level: 'silent' }), keep: 3 });
  const seen: string[] = [];
  ev.subscribe(() => {
    throw new Error('broken consumer');
  });
  ev.subscribe((e) => seen.push(`${e.at}:${e.type}`));
  ev.feed({ type: 'started', vrrp: false, sync: false, sharedLinks: [] });
  clock.advance(5);
  ev.feed({ type: 'peer', peer: 'fw2', state: 'up' });
  ev.feed({ type: 'peer', peer: 'fw2', state: 'up' });
  assert.deepEqual(seen, ['1000:ready', '1005:peer_up']);
  assert.equal(ev.current().ready.ready, true);
});

test('an input fed from inside a subscriber is stepped after the events being delivered', () => {
  const ev = new ClusterEvents({ clock: new FakeClock(0), log: pino({ level: 'silent' }) });
  const a: string[] = [];
  const b: string[] = [];
  ev.subscribe((e) => {
    a.push(e.type);
    if (e.type === 'peer_up') ev.feed({ type: 'stopping', why: 'test' });
  });
  ev.subscribe((e) => b.push(e.type));
  ev.feed({ type: 'peer', peer: 'fw2', state: 'up' });
  assert.deepEqual(a, ['peer_up', 'stopping', 'ready']);
  assert.deepEqual(b, a, 'both saw the same order');
});

test('the last events are kept, oldest first, up to keep', () => {
  const ev = new ClusterEvents({ clock: new FakeClock(0), log: pino({ level: 'silent' }), keep: 2 });
  for (const p of ['a', 'b', 'c']) ev.feed({ type: 'peer', peer: p, state: 'up' });
  assert.deepEqual(ev.recent().map((e) => (e.type === 'peer_up' ? e.peer : e.type)), ['b', 'c']);
});
