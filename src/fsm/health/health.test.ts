import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { initialHealth, step, type HealthState, type HealthStep, type Thresholds } from './health.js';

const OK = { ok: true, detail: 'connected', ms: 1 };
const FAIL = { ok: false, detail: 'connect ECONNREFUSED', ms: 1 };

/** Feeds results one per second starting at t=1000; returns every step. */
function feed(start: HealthState, results: readonly boolean[], th: Thresholds): HealthStep[] {
  const steps: HealthStep[] = [];
  let s = start;
  results.forEach((ok, i) => {
    const r = step(s, ok ? OK : FAIL, 1000 * (i + 1), th);
    steps.push(r);
    s = r.state;
  });
  return steps;
}

test('a backend starts up by default, down with startDown', () => {
  assert.deepEqual(initialHealth(), { status: 'up', okStreak: 0, failStreak: 0 });
  assert.deepEqual(initialHealth({ startDown: true }), { status: 'down', okStreak: 0, failStreak: 0 });
});

test('up goes down after exactly `fall` consecutive failures, with the time and the reason', () => {
  const steps = feed(initialHealth(), [false, false, false, false], { rise: 2, fall: 3 });
  assert.deepEqual(steps.map((s) => s.state.status), ['up', 'up', 'down', 'down']);
  assert.deepEqual(steps.map((s) => s.changed !== undefined), [false, false, true, false]);
  assert.deepEqual(steps[2]!.changed, { from: 'up', to: 'down', why: '3 consecutive failures (fall 3): connect ECONNREFUSED' });
  assert.equal(steps[2]!.state.lastChangeAt, 3000);
  assert.equal(steps[3]!.state.lastChangeAt, 3000);
  assert.equal(steps[3]!.state.failStreak, 4, 'streaks keep counting past the threshold');
  assert.equal(steps[3]!.state.lastResult, 'fail');
  assert.equal(steps[3]!.state.lastDetail, 'connect ECONNREFUSED');
});

test('down comes up after exactly `rise` consecutive successes', () => {
  const steps = feed(initialHealth({ startDown: true }), [true, true, true], { rise: 2, fall: 3 });
  assert.deepEqual(steps.map((s) => s.state.status), ['down', 'up', 'up']);
  assert.deepEqual(steps[1]!.changed, { from: 'down', to: 'up', why: '2 consecutive successes (rise 2): connected' });
  assert.equal(steps[1]!.state.lastChangeAt, 2000);
});

test('an opposite result resets the streak', () => {
  // fail, fail, ok, fail, fail: never three failures in a row, stays up.
  const steps = feed(initialHealth(), [false, false, true, false, false], { rise: 2, fall: 3 });
  assert.ok(steps.every((s) => s.state.status === 'up' && !s.changed));
  assert.deepEqual(steps.map((s) => [s.state.okStreak, s.state.failStreak]), [[0, 1], [0, 2], [1, 0], [0, 1], [0, 2]]);
  // Down: ok, fail, ok never reaches rise 2.
  const down = feed(initialHealth({ startDown: true }), [true, false, true], { rise: 2, fall: 3 });
  assert.ok(down.every((s) => s.state.status === 'down'));
});

test('rise and fall of 1 flip on every opposite result; thresholds below 1 count as 1', () => {
  const steps = feed(initialHealth(), [false, true, false], { rise: 1, fall: 1 });
  assert.deepEqual(steps.map((s) => s.state.status), ['down', 'up', 'down']);
  assert.equal(steps[0]!.changed?.why, '1 consecutive failure (fall 1): connect ECONNREFUSED');
  const zero = feed(initialHealth(), [false], { rise: 0, fall: 0 });
  assert.equal(zero[0]!.state.status, 'down');
});

test('step does not mutate the state it is given', () => {
  const s = Object.freeze(initialHealth());
  step(s, FAIL, 1, { rise: 1, fall: 1 });
  assert.deepEqual(s, { status: 'up', okStreak: 0, failStreak: 0 });
});

test('property: the status flips exactly when the run of identical results reaches rise or fall', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 8 }),
      fc.boolean(),
      fc.array(fc.boolean(), { maxLength: 200 }),
      (rise, fall, startDown, results) => {
        let s = initialHealth({ startDown });
        let run = 0; // length of the run of identical results ending here, from the input alone
        results.forEach((ok, i) => {
          run = i > 0 && results[i - 1] === ok ? run + 1 : 1;
          const r = step(s, ok ? OK : FAIL, i, { rise, fall });
          const shouldFlip = s.status === 'up' ? !ok && run === fall : ok && run === rise;
          assert.equal(r.changed !== undefined, shouldFlip, `step ${i}: run ${run}, was ${s.status}`);
          const expected = shouldFlip ? (s.status === 'up' ? 'down' : 'up') : s.status;
          assert.equal(r.state.status, expected);
          if (r.changed) assert.deepEqual([r.changed.from, r.changed.to], [s.status, expected]);
          assert.equal(ok ? r.state.okStreak : r.state.failStreak, run);
          assert.equal(ok ? r.state.failStreak : r.state.okStreak, 0);
          s = r.state;
        });
      },
    ),
    { numRuns: 500 },
  );
});
