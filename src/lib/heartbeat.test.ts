/**
 * The heartbeat on real timers (short periods, lower bounds only): one timer at the shortest
 * period asked for, every subscriber called at each beat; a subscriber gone, the period grows
 * back; a held event loop is seen as a late beat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Heartbeat } from './heartbeat.js';

test('one timer at the shortest period: every subscriber is called at each beat; after unsubscribing the fast one, the slow period holds', async () => {
  const hb = new Heartbeat();
  let fast = 0;
  let slow = 0;
  const offFast = hb.subscribe(20, () => fast++);
  const offSlow = hb.subscribe(5000, () => slow++);
  while (fast < 3) await sleep(5);
  assert.ok(slow >= 3, `the slow subscriber rides the fast beats (${slow})`);
  offFast();
  const at = slow;
  await sleep(300);
  assert.equal(slow, at, 'at a 5 s period, nothing in 300 ms');
  offSlow();
});

test('a held event loop is a late beat: the loop delay\'s max covers the hold', async () => {
  const hb = new Heartbeat();
  assert.deepEqual(hb.loopDelay(), { p50: 0, p99: 0, max: 0 });
  let beats = 0;
  const off = hb.subscribe(20, () => beats++);
  while (beats < 2) await sleep(5);
  const until = performance.now() + 150;
  while (performance.now() < until); // the loop held 150 ms
  const held = beats;
  while (beats === held) await sleep(5);
  assert.ok(hb.loopDelay().max >= 100, JSON.stringify(hb.loopDelay()));
  off();
});
