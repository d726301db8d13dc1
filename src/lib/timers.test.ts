import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { EARLY_TOLERANCE_MS, TimerDriver } from './timers.js';

test('a timer that fires early is stamped with its deadline, one that fires late with the time it fired', () => {
  const c = new FakeClock(1000);
  c.setFireOffset((n) => (n === 0 ? -0.6 : 3));
  const d = new TimerDriver(c);
  const got: number[] = [];
  d.at('a', 1010.9, (now) => got.push(now)); // set for 11 ms, fires at 1010.4
  c.advance(20);
  d.at('b', c.now() + 10, (now) => got.push(now));
  c.advance(20);
  assert.deepEqual(got, [1010.9, 1020 + 10 + 3]);
  assert.equal(d.earlyFirings, 1);
  assert.equal(d.size, 0);
});

test('a timer far too early (a clock that jumped) is re-armed for the rest, not fired', () => {
  const c = new FakeClock(0);
  c.setFireOffset((n) => (n === 0 ? -(EARLY_TOLERANCE_MS + 5) : 0));
  const d = new TimerDriver(c);
  const got: number[] = [];
  d.at('a', 50, (now) => got.push(now));
  c.advance(46);
  assert.deepEqual(got, []);
  assert.equal(d.has('a'), true);
  c.advance(10);
  assert.deepEqual(got, [50]);
});

test('keys: re-arming replaces, cancel and cancelAll(prefix) stop, a replaced timer never fires', () => {
  const c = new FakeClock(0);
  const d = new TimerDriver(c);
  const got: string[] = [];
  d.after('x/hello', 10, () => got.push('old'));
  d.after('x/hello', 20, () => got.push('new'));
  d.after('x/dead', 15, () => got.push('dead'));
  d.after('y/hello', 15, () => got.push('y'));
  assert.equal(d.deadline('x/hello'), 20);
  d.cancelAll('x/');
  c.advance(30);
  assert.deepEqual(got, ['y']);
  d.after('z', 5, () => got.push('z'));
  d.cancel('z');
  d.cancelAll();
  c.advance(10);
  assert.deepEqual(got, ['y']);
  assert.equal(d.size, 0);
});

test('a machine that re-arms from its own deadline never stalls, however timers fire (property)', () => {
  // The shape of every machine here: it ignores a timer event before its deadline, and
  // re-arms the next one from the time it is given.
  for (const offset of [-0.9, -0.3, -0.01, 0, 0.2, 7]) {
    const c = new FakeClock(0.37);
    c.setFireOffset(() => offset);
    const d = new TimerDriver(c);
    let deadline = c.now() + 100.25;
    let fired = 0;
    const onTimer = (now: number) => {
      if (now < deadline) return; // "stale": without the driver's stamp this is a stall
      fired++;
      deadline = now + 100.25;
      d.at('t', deadline, onTimer);
    };
    d.at('t', deadline, onTimer);
    c.advance(10_000);
    assert.ok(fired >= Math.floor(10_000 / (100.25 + Math.max(0, offset) + 1)), `offset ${offset}: fired ${fired}`);
  }
});
