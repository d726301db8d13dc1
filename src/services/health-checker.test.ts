import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeClock } from '../lib/clock.js';
import type { HealthConfig } from '../config/schema.js';
import type { Probe, ProbeRegistry, ProbeResult, ProbeTarget } from '../ports/health.js';
import { GUARD_GRACE_MS, HealthChecker, firstCheckDelay, nextCheckDelay, type HealthChange } from './health-checker.js';
import { seededRandom } from '../lib/random.js';

const OK: ProbeResult = { ok: true, detail: 'connected', ms: 1 };
const REFUSED: ProbeResult = { ok: false, detail: 'connect ECONNREFUSED', ms: 1 };

/** What the scripted probe does for one call: answer now, answer after some fake ms, or never. */
type Behaviour = ProbeResult | { after: number; result: ProbeResult } | 'hang' | 'reject';

/**
 * A test double of the probe plug-in (the real probes are tested in adapters/health):
 * the test scripts its answer per call and reads back when it was called.
 */
class ScriptedProbe implements Probe {
  readonly kind = 'tcp' as const;
  readonly calls: { key: string; at: number }[] = [];
  private readonly running = new Map<string, number>();
  maxRunning = 0;

  constructor(private readonly clock: FakeClock, public behave: (t: ProbeTarget, now: number) => Behaviour) {}

  run(t: ProbeTarget): Promise<ProbeResult> {
    const key = `${t.service}/${t.backend}`;
    this.calls.push({ key, at: this.clock.now() });
    const b = this.behave(t, this.clock.now());
    if (b === 'hang') return new Promise(() => {});
    if (b === 'reject') return Promise.reject(new Error('boom'));
    if (!('after' in b)) return Promise.resolve(b);
    this.running.set(key, (this.running.get(key) ?? 0) + 1);
    this.maxRunning = Math.max(this.maxRunning, this.running.get(key)!);
    return new Promise((resolve) =>
      this.clock.after(b.after, () => {
        this.running.set(key, this.running.get(key)! - 1);
        resolve(b.result);
      }),
    );
  }

  callsOf(key: string): number[] {
    return this.calls.filter((c) => c.key === key).map((c) => c.at);
  }
}

const check = (over: Partial<HealthConfig> = {}): HealthConfig => ({ tcp: {}, interval: 1000, timeout: 500, rise: 2, fall: 3, ...over });

function target(backend: string, over: Partial<ProbeTarget> = {}, c: Partial<HealthConfig> = {}): ProbeTarget {
  return { service: 'web', backend, address: '198.18.1.11', port: 80, family: 4, check: check(c), ...over };
}


/** Advances the fake clock 1 ms at a time, letting probe promises settle after each step. */
async function run(clock: FakeClock, ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await new Promise<void>((r) => setImmediate(r));
  }
}

interface Rig {
  clock: FakeClock;
  probe: ScriptedProbe;
  checker: HealthChecker;
  changes: (HealthChange & { at: number })[];
  logs: Record<string, unknown>[];
}

function rig(behave: (t: ProbeTarget, now: number) => Behaviour, opts: { random?: () => number; startDown?: boolean; onChange?: () => void } = {}): Rig {
  const clock = new FakeClock(0);
  const probe = new ScriptedProbe(clock, behave);
  const probes: ProbeRegistry = { tcp: probe, http: probe, script: probe };
  const changes: Rig['changes'] = [];
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => logs.push(JSON.parse(s) as Record<string, unknown>) });
  const checker = new HealthChecker({
    clock,
    log,
    probes,
    random: opts.random ?? (() => 0.5),
    startDown: opts.startDown,
    onChange: (ev) => {
      changes.push({ ...ev, at: clock.now() });
      opts.onChange?.();
    },
  });
  return { clock, probe, checker, changes, logs };
}

test('jitter formulas: first check in [0, interval), the next ones interval ± 10%', () => {
  assert.equal(firstCheckDelay(1000, () => 0), 0);
  assert.equal(firstCheckDelay(1000, () => 0.999999), 999);
  assert.equal(firstCheckDelay(1000, () => 1), 999, 'a random() of 1 is clamped');
  assert.equal(nextCheckDelay(1000, () => 0), 900);
  assert.equal(nextCheckDelay(1000, () => 0.5), 1000);
  assert.equal(nextCheckDelay(1000, () => 0.999999), 1100);
});

test('a failing backend goes down after exactly `fall` failures, and comes back after `rise` successes', async () => {
  let healthy = false;
  const r = rig(() => (healthy ? OK : REFUSED));
  r.checker.setTargets([target('web1')]);
  // random() = 0.5: first check at 500, then every 1000 ms.
  await run(r.clock, 2499);
  assert.deepEqual(r.probe.callsOf('web/web1'), [500, 1500]);
  assert.equal(r.changes.length, 0);
  assert.equal(r.checker.snapshot()[0]!.failStreak, 2);
  await run(r.clock, 1);
  assert.deepEqual(r.changes, [{ service: 'web', backend: 'web1', up: false, detail: 'connect ECONNREFUSED', why: '3 consecutive failures (fall 3): connect ECONNREFUSED', at: 2500 }]);
  const t = r.logs.find((l) => l.event === 'health_transition')!;
  assert.deepEqual([t.service, t.backend, t.from, t.to, t.level], ['web', 'web1', 'up', 'down', 40]);

  healthy = true;
  await run(r.clock, 1999); // checks at 3500 (ok) and 4500 (ok) -> up at 4500
  assert.equal(r.changes.length, 1);
  await run(r.clock, 1);
  assert.deepEqual(r.changes[1], { service: 'web', backend: 'web1', up: true, detail: 'connected', why: '2 consecutive successes (rise 2): connected', at: 4500 });

  const s = r.checker.snapshot()[0]!;
  assert.deepEqual(
    { status: s.status, okStreak: s.okStreak, failStreak: s.failStreak, lastDetail: s.lastDetail, lastCheckAt: s.lastCheckAt, lastChangeAt: s.lastChangeAt, checks: s.checks, failures: s.failures },
    { status: 'up', okStreak: 2, failStreak: 0, lastDetail: 'connected', lastCheckAt: 4500, lastChangeAt: 4500, checks: 5, failures: 3 },
  );
  r.checker.stop();
});

test('with random jitter, a backend that breaks is down within fall × interval × 1.1, after exactly fall failures', async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const breakAt = 5000 + seed * 137;
    const r = rig((_t, now) => (now >= breakAt ? REFUSED : OK), { random: seededRandom(seed) });
    r.checker.setTargets([target('web1', {}, { fall: 3, interval: 1000 })]);
    await run(r.clock, breakAt + 4000);
    assert.equal(r.changes.length, 1, `seed ${seed}`);
    const down = r.changes[0]!;
    assert.equal(down.up, false);
    assert.ok(down.at - breakAt <= 3 * 1000 * 1.1, `seed ${seed}: down ${down.at - breakAt} ms after the break`);
    const calls = r.probe.callsOf('web/web1');
    assert.equal(calls.filter((at) => at >= breakAt && at <= down.at).length, 3, `seed ${seed}: failures before down`);
    for (let i = 1; i < calls.length; i++) {
      const gap = calls[i]! - calls[i - 1]!;
      assert.ok(gap >= 900 && gap <= 1100, `seed ${seed}: gap ${gap}`);
    }
    r.checker.stop();
  }
});

test('jitter spreads the first checks of 1000 targets across the interval', async () => {
  const r = rig(() => OK, { random: seededRandom(42) });
  r.checker.setTargets(Array.from({ length: 1000 }, (_, i) => target(`b${i}`)));
  assert.equal(r.clock.pending(), 1000);
  await run(r.clock, 1000);
  const firsts = new Map<string, number>();
  for (const c of r.probe.calls) if (!firsts.has(c.key)) firsts.set(c.key, c.at);
  assert.equal(firsts.size, 1000, 'every target checked once within the first interval');
  const times = [...firsts.values()];
  assert.ok(times.every((t) => t >= 0 && t < 1000));
  const buckets = Array.from({ length: 10 }, (_, i) => times.filter((t) => t >= i * 100 && t < (i + 1) * 100).length);
  assert.ok(buckets.every((n) => n >= 60 && n <= 140), `buckets ${buckets.join(' ')}`);
  const perMs = new Map<number, number>();
  for (const t of times) perMs.set(t, (perMs.get(t) ?? 0) + 1);
  assert.ok(Math.max(...perMs.values()) <= 8, 'no burst in any one millisecond');
  r.checker.stop();
  assert.equal(r.clock.pending(), 0);
});

test('setTargets keeps unchanged targets, restarts changed ones, starts new ones and stops removed ones', async () => {
  const r = rig(() => REFUSED);
  const a = target('a');
  const b = target('b');
  const c = target('c');
  r.checker.setTargets([a, b, c]);
  await run(r.clock, 2500); // checks at 500, 1500, 2500: all three down
  assert.deepEqual(r.checker.snapshot().map((s) => [s.backend, s.status, s.checks]), [['a', 'down', 3], ['b', 'down', 3], ['c', 'down', 3]]);
  r.changes.length = 0;

  // a: an equal copy (other key order in check) keeps state; b: another port restarts; c: removed; d: new.
  const aCopy: ProbeTarget = { ...a, check: { fall: 3, rise: 2, timeout: 500, interval: 1000, tcp: {} } };
  r.checker.setTargets([aCopy, { ...b, port: 8080 }, target('d')]);
  const snap = new Map(r.checker.snapshot().map((s) => [s.backend, s]));
  assert.deepEqual([...snap.keys()], ['a', 'b', 'd']);
  assert.deepEqual([snap.get('a')!.status, snap.get('a')!.checks, snap.get('a')!.failStreak, snap.get('a')!.lastChangeAt], ['down', 3, 3, 2500]);
  assert.deepEqual([snap.get('b')!.status, snap.get('b')!.checks, snap.get('b')!.port], ['up', 0, 8080]);
  assert.deepEqual([snap.get('d')!.status, snap.get('d')!.checks], ['up', 0]);
  // The restart flipped b's verdict (down -> up): the consumer is told.
  assert.deepEqual(r.changes.map((ch) => [ch.backend, ch.up, ch.why]), [['b', true, 'health check changed: restarted']]);
  assert.equal(r.clock.pending(), 3, 'one timer per target: c is gone');

  r.probe.calls.length = 0;
  await run(r.clock, 1000);
  assert.deepEqual(r.probe.callsOf('web/a'), [3500], 'a keeps its schedule');
  assert.deepEqual(r.probe.callsOf('web/b'), [3000], 'b starts over with a jittered first check (500 after the reload)');
  assert.deepEqual(r.probe.callsOf('web/d'), [3000]);
  assert.deepEqual(r.probe.callsOf('web/c'), []);
  r.checker.stop();
});

test('stop leaves no pending timer, even with a probe running, and ignores its late result', async () => {
  const r = rig(() => ({ after: 300, result: REFUSED }));
  r.checker.setTargets([target('a', {}, { fall: 1 }), target('b', {}, { fall: 1 })]);
  await run(r.clock, 600); // both probes started at 500, still running
  assert.ok(r.checker.snapshot().every((s) => s.inFlight));
  r.checker.stop();
  assert.deepEqual(r.checker.snapshot(), []);
  // Only the scripted probe's own timers (its answers at 800) are left: none of the checker's.
  assert.equal(r.clock.pending(), 2);
  await run(r.clock, 300);
  assert.equal(r.clock.pending(), 0);
  assert.deepEqual(r.changes, []);
});

test('a probe that never answers counts as a timeout failure, and checks go on', async () => {
  const r = rig(() => 'hang');
  r.checker.setTargets([target('a', {}, { fall: 2, timeout: 400 })]);
  const guardAt = 500 + 400 + GUARD_GRACE_MS;
  await run(r.clock, guardAt - 1);
  assert.equal(r.checker.snapshot()[0]!.checks, 0);
  assert.equal(r.checker.snapshot()[0]!.inFlight, true);
  await run(r.clock, 1);
  const s = r.checker.snapshot()[0]!;
  assert.deepEqual([s.checks, s.failures, s.failStreak, s.lastDetail, s.inFlight], [1, 1, 1, 'timeout after 400 ms', false]);
  await run(r.clock, 1000);
  assert.deepEqual(r.probe.callsOf('web/a'), [500, 1500], 'the next check keeps its schedule');
  assert.deepEqual(r.changes.map((c) => [c.up, c.at, c.detail]), [[false, 1500 + 400 + GUARD_GRACE_MS, 'timeout after 400 ms']]);
  r.checker.stop();
  assert.equal(r.clock.pending(), 0);
});

test('at most one probe runs per target: a slow probe delays the next check', async () => {
  // A 1200 ms probe with a 1000 ms interval (timeout 1500 so the guard does not fire).
  const r = rig(() => ({ after: 1200, result: OK }));
  r.checker.setTargets([target('a', {}, { timeout: 1500 })]);
  await run(r.clock, 5000);
  assert.equal(r.probe.maxRunning, 1);
  assert.deepEqual(r.probe.callsOf('web/a'), [500, 1700, 2900, 4100], 'each check starts when the previous one is done');
  r.checker.stop();
});

test('identical failures are logged once per minute; a new failure detail is logged at once', async () => {
  let detail = 'connect ECONNREFUSED';
  const r = rig(() => ({ ok: false, detail, ms: 1 }));
  r.checker.setTargets([target('a', {}, { fall: 3 })]);
  await run(r.clock, 20_000); // 20 failed checks
  const failed = () => r.logs.filter((l) => l.event === 'health_check_failed');
  assert.equal(failed().length, 1, 'the first failure; the third is the transition; the rest are suppressed');
  assert.equal(r.logs.filter((l) => l.event === 'health_transition').length, 1);
  detail = 'connect EHOSTUNREACH';
  await run(r.clock, 1000);
  assert.equal(failed().length, 2);
  assert.equal(failed()[1]!.detail, 'connect EHOSTUNREACH');
  await run(r.clock, 60_000);
  assert.equal(failed().length, 3, 'the same failure again after a minute');
  assert.equal(failed()[2]!.suppressed, 59);
  r.checker.stop();
});

test('a rejecting probe, a missing check kind and a throwing onChange are all results, not crashes', async () => {
  const r = rig(() => 'reject', {
    onChange: () => {
      throw new Error('handler bug');
    },
  });
  const noKind: ProbeTarget = { ...target('nokind'), check: { interval: 1000, timeout: 500, rise: 2, fall: 1 } };
  r.checker.setTargets([target('a', {}, { fall: 1 }), noKind]);
  await run(r.clock, 500);
  const snap = new Map(r.checker.snapshot().map((s) => [s.backend, s]));
  assert.deepEqual([snap.get('a')!.status, snap.get('a')!.lastDetail], ['down', 'probe error: boom']);
  assert.deepEqual([snap.get('nokind')!.status, snap.get('nokind')!.lastDetail, snap.get('nokind')!.kind], ['down', 'no tcp, http or script check configured', undefined]);
  assert.equal(r.logs.filter((l) => l.event === 'health_on_change_failed').length, 2);
  await run(r.clock, 1000);
  assert.equal(r.checker.snapshot()[0]!.checks, 2, 'checks go on');
  r.checker.stop();
});

test('startDown: new targets begin down and come up after rise successes', async () => {
  const r = rig(() => OK, { startDown: true });
  r.checker.setTargets([target('a')]);
  assert.equal(r.checker.snapshot()[0]!.status, 'down');
  await run(r.clock, 1500);
  assert.deepEqual(r.changes.map((c) => [c.up, c.at]), [[true, 1500]]);
  r.checker.stop();
});
