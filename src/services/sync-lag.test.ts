import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeClock } from '../lib/clock.js';
import { SyncLag, VersionRefusals } from './sync-lag.js';
import { encode } from '../codec/sync/message.js';

function setup(boundMs = 1000) {
  const clock = new FakeClock(10_000);
  const lines: { level: string; obj: Record<string, unknown> }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push({ level: String(JSON.parse(s).level), obj: JSON.parse(s) }) });
  let behind = 0;
  const told: [string, number | undefined][] = [];
  const lag = new SyncLag({ clock, log, boundMs, countBehind: () => behind++, onOldest: (p, at) => void told.push([p, at]) });
  return { clock, lag, lines, events: () => lines.map((l) => l.obj.event).filter(Boolean), behind: () => behind, told };
}

test('a peer whose oldest unacknowledged change passes the bound is behind: counted once, logged, and logged again when it caught up (under half the bound)', () => {
  const { clock, lag, events, behind, told } = setup(1000);
  lag.observe('fw2', 10_000);
  assert.deepEqual(told, [['fw2', 10_000]], 'the BEATs learn when the oldest change was queued');
  clock.advance(900);
  lag.observe('fw2', 10_000);
  assert.equal(lag.status('fw2').behind, false);
  clock.advance(200); // 1,100 ms
  lag.observe('fw2', 10_000);
  lag.observe('fw2', 10_000);
  assert.equal(behind(), 1, 'once per episode');
  assert.equal(lag.status('fw2').behind, true);
  assert.equal(lag.status('fw2').oldestUnackedMs, 1100);
  // Acked up to a change queued 600 ms ago: still over half the bound, still behind.
  lag.observe('fw2', 10_500);
  assert.equal(lag.status('fw2').behind, true);
  clock.advance(100);
  lag.observe('fw2', undefined);
  const s = lag.status('fw2');
  assert.equal(s.behind, false);
  assert.equal(s.oldestUnackedMs, 0);
  assert.deepEqual([s.lastBehind?.worstMs, s.lastBehind?.forMs], [1100, 100]);
  assert.deepEqual(events(), ['sync_peer_behind', 'sync_peer_caught_up']);
  assert.deepEqual(told.at(-1), ['fw2', undefined]);
});

test('a dropped queue (restart, silence, overflow) ends the episode with its reason, not as caught up', () => {
  const { clock, lag, events } = setup(500);
  lag.observe('fw2', 10_000);
  clock.advance(600);
  lag.observe('fw2', 10_000);
  lag.reset('fw2', 'it went silent');
  // The messages in flight before the reset stay in the sender's queue: they open no new episode.
  clock.advance(100);
  lag.observe('fw2', 10_000);
  assert.deepEqual(events(), ['sync_peer_behind', 'sync_peer_behind_reset']);
  assert.equal(lag.status('fw2').behind, false);
  assert.equal(lag.oldestAgeMs('fw2'), undefined);
  // Changes queued after it count again.
  lag.observe('fw2', clock.now() - 10);
  clock.advance(600);
  assert.equal(lag.status('fw2').behind, true, 'the bound is crossed by time alone (status looks)');
  assert.deepEqual(events(), ['sync_peer_behind', 'sync_peer_behind_reset', 'sync_peer_behind']);
});

test('the last minute\'s lag percentiles come from the acks', () => {
  const { lag } = setup();
  lag.acked('fw2', [{ ms: 2, records: 99 }, { ms: 40, records: 1 }]);
  const s = lag.status('fw2').lastMinute;
  assert.equal(s.records, 100);
  assert.ok(s.p50Ms! >= 2 && s.p50Ms! <= 2.2);
  assert.equal(s.maxMs, 40);
});

test('a datagram of another wire version is logged naming both versions, once a minute per source', () => {
  const clock = new FakeClock(0);
  const lines: Record<string, unknown>[] = [];
  const v = new VersionRefusals(clock, pino({}, { write: (s: string) => void lines.push(JSON.parse(s)) }));
  const dgram = encode({ sender: 1, receiver: 0, epoch: 1, peerEpoch: 0, packet: 0, seq: 0, type: 'hello', synced: false }, new Uint8Array(32));
  dgram[4] = 1; // version 1
  v.refuse(dgram, '198.18.0.3', 'fw2');
  v.refuse(dgram, '198.18.0.3', 'fw2');
  clock.advance(60_000);
  v.refuse(dgram, '198.18.0.3', 'fw2');
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.theirVersion, 1);
  assert.match(String(lines[0]!.msg), /fw2 speaks wire version 1/);
});
