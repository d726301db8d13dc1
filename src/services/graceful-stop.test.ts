import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { catchUpLacks, waitBeforeHandover, type StopWaitDeps } from './graceful-stop.js';

const base = { resyncing: false, unackedAgeMs: undefined, sinceStartMs: 50, ackedForMs: 30, told: { behind: false, writing: false, beatAgoMs: 5 }, lagBoundMs: 1000 };

test('a peer has caught up when what was queued before the wait is acked and a later BEAT says its kernel has it', () => {
  assert.equal(catchUpLacks(base), undefined);
  // Changes queued after the wait began (new traffic) do not hold it up.
  assert.equal(catchUpLacks({ ...base, unackedAgeMs: 20 }), undefined);
});

test('what a peer that has not caught up still lacks', () => {
  assert.match(catchUpLacks({ ...base, unackedAgeMs: 80, ackedForMs: undefined })!, /not acknowledged \(oldest 80 ms\)/);
  // Its queue was dropped (overflow, silence): nothing unacked, yet it lacks the changes until its whole table is in.
  assert.match(catchUpLacks({ ...base, resyncing: true })!, /whole table/);
  assert.match(catchUpLacks({ ...base, told: { ...base.told, beatAgoMs: 40 } })!, /no BEAT since/);
  assert.match(catchUpLacks({ ...base, told: { ...base.told, beatAgoMs: null } })!, /no BEAT since/);
  assert.match(catchUpLacks({ ...base, told: { ...base.told, behind: true } })!, /behind/);
  assert.match(catchUpLacks({ ...base, told: { ...base.told, writing: true } })!, /wait for its kernel/);
  // Still writing after a lag bound since the ack (new traffic keeps it so): not behind is enough.
  assert.equal(catchUpLacks({ ...base, ackedForMs: 1000, told: { ...base.told, writing: true } }), undefined);
});

test('without the liveness (no BEATs), the ack is all there is', () => {
  assert.equal(catchUpLacks({ ...base, told: undefined, ackedForMs: undefined }), undefined);
});

/** A stop's wait against a fake sync, on real (short) timers: what it waits for, and what ends it. */
function stopWait(o: { ready?: string[]; live?: string[]; unacked?: () => number | undefined; resyncing?: () => boolean; waitMs?: number }) {
  const lines: Record<string, unknown>[] = [];
  let skip: (() => void) | undefined;
  const d: StopWaitDeps = {
    log: pino({}, { write: (s: string) => void lines.push(JSON.parse(s)) }),
    now: () => performance.now(),
    sync: {
      readyPeers: () => o.ready ?? [],
      livePeers: () => o.live ?? o.ready ?? [],
      everHadPeer: () => true,
      resyncing: () => o.resyncing?.() ?? false,
      lag: { oldestAgeMs: () => o.unacked?.() },
    },
    waitMs: o.waitMs ?? 2000,
    lagBoundMs: 1000,
    setSkip: (end) => (skip = end),
  };
  return { run: () => waitBeforeHandover(d), events: () => lines.map((l) => l.event), skip: () => skip?.() };
}

test('the stop waits until the changes queued before it are acknowledged (no liveness: the ack is all), and says so', async () => {
  const t0 = performance.now();
  const w = stopWait({ ready: ['fw2'], unacked: () => (performance.now() - t0 < 60 ? performance.now() - t0 + 500 : undefined) });
  await w.run();
  assert.ok(performance.now() - t0 >= 60, 'it waited for the ack');
  assert.deepEqual(w.events(), ['stop_catch_up', 'stop_catch_up_done']);
});

test('a peer that gets the whole table holds the stop until that is over; the deadline ends the wait, logged with what it lacked', async () => {
  const w = stopWait({ ready: ['fw2'], resyncing: () => true, waitMs: 80 });
  await w.run();
  assert.deepEqual(w.events(), ['stop_catch_up', 'stop_catch_up_timeout']);
});

test('no ready peer: the wait for one times out and the catch-up wait is not taken; a second SIGTERM (skip) ends a wait at once', async () => {
  const w = stopWait({ ready: [], live: ['fw2'], waitMs: 60 });
  await w.run();
  assert.deepEqual(w.events(), ['stop_wait', 'stop_wait_timeout']);
  const w2 = stopWait({ ready: ['fw2'], unacked: () => 1e9, waitMs: 60_000 });
  const t0 = performance.now();
  const running = w2.run();
  setTimeout(() => w2.skip(), 30);
  await running;
  assert.ok(performance.now() - t0 < 30_000, 'skipped, not timed out');
  assert.deepEqual(w2.events(), ['stop_catch_up', 'stop_catch_up_timeout']);
});

test('nothing to wait for: no line in the log', async () => {
  const w = stopWait({ ready: ['fw2'] });
  await w.run();
  assert.deepEqual(w.events(), []);
});
