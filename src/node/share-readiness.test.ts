/**
 * When a sharing node takes its buckets (no root, fake clock): a node that joins waits for
 * the own entries of every live peer (issue 20), at most PEER_ENTRIES_WAIT_MS; a node that
 * already carries never gives its buckets up because a peer's entries are pending.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeClock } from '../lib/clock.js';
import { SharingService } from '../services/sharing.js';
import type { LivenessService } from '../services/liveness.js';
import type { StateSyncService } from '../services/state-sync.js';
import { PEER_ENTRIES_WAIT_MS, ShareReadiness } from './share-readiness.js';

function setup() {
  const clock = new FakeClock(5000);
  const log = pino({ level: 'silent' });
  const sharing = new SharingService({ log, self: 'fw1', buckets: 64, seed: 1, apply: async () => undefined, now: () => clock.now() });
  let pending: string[] = [];
  const sync = { livePeers: () => ['fw2', 'fw3'], peersPending: () => pending, bulkInProgress: () => false, countPeerWait: () => undefined } as unknown as StateSyncService;
  const liveness = { heard: () => true, setReady: () => undefined } as unknown as LivenessService;
  const r = new ShareReadiness({ sharing, clock, log, nodeReady: () => true, linksDown: () => [], sync: () => sync, liveness: () => liveness });
  return { clock, sharing, r, setPending: (p: string[]) => (pending = p) };
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
