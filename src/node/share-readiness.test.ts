/**
 * When a sharing node takes its buckets (no root, fake clock): a node that joins waits for
 * the own entries of every live peer (issue 20), at most PEER_ENTRIES_WAIT_MS, and to hear each
 * live peer's BEAT, at most HEARD_WAIT_MS; a node that already carries never gives its buckets
 * up because a peer's entries are pending or a new peer is not heard yet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeClock } from '../lib/clock.js';
import { SharingService } from '../services/sharing.js';
import type { LivenessService } from '../services/liveness.js';
import type { StateSyncService } from '../services/state-sync.js';
import { HEARD_WAIT_MS, PEER_ENTRIES_WAIT_MS, ShareReadiness } from './share-readiness.js';

function setup() {
  const clock = new FakeClock(5000);
  const log = pino({ level: 'silent' });
  const sharing = new SharingService({ log, self: 'fw1', buckets: 64, seed: 1, apply: async () => undefined, now: () => clock.now() });
  let pending: string[] = [];
  let live = ['fw2', 'fw3'];
  const heard = new Set(['fw2', 'fw3']);
  const sync = { livePeers: () => live, peersPending: () => pending, bulkInProgress: () => false, countPeerWait: () => undefined } as unknown as StateSyncService;
  const liveness = { heard: (p: string) => heard.has(p), setReady: () => undefined } as unknown as LivenessService;
  const r = new ShareReadiness({ sharing, clock, log, nodeReady: () => true, linksDown: () => [], sync: () => sync, liveness: () => liveness });
  return { clock, sharing, r, heard, setPending: (p: string[]) => (pending = p), setLive: (l: string[]) => (live = l) };
}

test('regression (issue 20): a joining node takes no bucket while a live peer\'s own entries are not all in; it does once they are', () => {
  const { sharing, r, setPending } = setup();
  setPending(['fw3']);
  r.check();
  assert.equal(sharing.status().ready, false, 'took buckets without fw3\'s flows: the ones it takes from fw3 would be lost');
  setPending([]);
  r.check();
  assert.equal(sharing.status().ready, true);
  assert.equal(sharing.status().owned, 64);
});

test('a peer whose entries never end holds a joining node back PEER_ENTRIES_WAIT_MS at most', () => {
  const { clock, sharing, r, setPending } = setup();
  setPending(['fw2']);
  r.check();
  clock.advance(PEER_ENTRIES_WAIT_MS - 10);
  assert.equal(sharing.status().ready, false);
  clock.advance(20); // the readiness looks again by itself when the wait is over
  assert.equal(sharing.status().ready, true);
});

test('a node that already carries keeps its buckets when a peer (re)starts and its entries are pending', () => {
  const { sharing, r, setPending } = setup();
  r.check();
  assert.equal(sharing.status().ready, true);
  setPending(['fw2']);
  r.check();
  assert.equal(sharing.status().ready, true);
});

test('regression (issue 26 lab): a node that carries keeps its buckets when a new peer\'s sync is up before its first BEAT is heard', () => {
  // Found by bench/bgp.ts: fw4 joined; fw3, which had heard every peer before its sync said
  // they were live (so its wait to hear had never begun), saw fw4 live and unheard, began that
  // wait and gave up all 1,403 of its buckets until fw4's first BEAT: 13 s TCP stalls, 2
  // sessions lost of 250.
  const { sharing, r, heard, setLive } = setup();
  r.check();
  assert.equal(sharing.status().owned, 64);
  setLive(['fw2', 'fw3', 'fw4']);
  r.check();
  assert.equal(sharing.status().ready, true, 'a carrying node gave up its buckets for a peer that carries nothing yet');
  assert.equal(sharing.status().owned, 64);
  heard.add('fw4');
  r.check();
  assert.equal(sharing.status().ready, true);
});

test('a node just started still waits to hear a live peer before it takes buckets (at most HEARD_WAIT_MS)', () => {
  const { clock, sharing, r, heard } = setup();
  heard.delete('fw3');
  r.check();
  assert.equal(sharing.status().ready, false, 'took every bucket before fw3 could say which it carries');
  clock.advance(HEARD_WAIT_MS + 1);
  assert.equal(sharing.status().ready, true);
});
