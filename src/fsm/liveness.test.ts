import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkAdvert, initialLiveness, stepLiveness, type LivenessEvent, type PeerLiveness } from './liveness.js';

const beat = (over: Partial<Extract<LivenessEvent, { type: 'beat' }>> = {}): LivenessEvent => ({
  type: 'beat',
  intervalMs: 20,
  multiplier: 4,
  leaving: false,
  instances: [{ vrid: 51, state: 'master', priority: 200 }],
  ...over,
});

function run(events: Array<[number, LivenessEvent]>): { s: PeerLiveness; fx: string[] } {
  let s = initialLiveness();
  const fx: string[] = [];
  for (const [t, e] of events) {
    const r = stepLiveness(s, e, t);
    s = r.state;
    for (const f of r.effects) fx.push(f.type === 'arm' ? `arm@${f.atMs}` : f.type === 'down' ? `down:${f.why}` : f.type);
  }
  return { s, fx };
}

test('the first BEAT brings the peer up and arms detection at its interval x multiplier', () => {
  const { s, fx } = run([[1000, beat()]]);
  assert.equal(s.state, 'up');
  assert.equal(s.detectMs, 80);
  assert.deepEqual(fx, ['up', 'arm@1080']);
});

test('BEATs keep it up; silence for the detection time brings it down, once', () => {
  const { s, fx } = run([
    [0, beat()],
    [20, beat()],
    [40, beat()],
    [120, { type: 'detect' }],
    [200, { type: 'detect' }],
  ]);
  assert.equal(s.state, 'down');
  assert.deepEqual(fx, ['up', 'arm@80', 'arm@100', 'arm@120', 'down:silent']);
  assert.equal(s.downs, 1);
});

test('a detection timer that fires early, or after a BEAT came, re-arms instead', () => {
  const { s, fx } = run([
    [0, beat()],
    [79.5, { type: 'detect' }],
    [60, beat()],
    [80, { type: 'detect' }],
  ]);
  assert.equal(s.state, 'up');
  assert.deepEqual(fx, ['up', 'arm@80', 'arm@80', 'arm@140', 'arm@140']);
});

test('a peer that said it was leaving goes down as "left"; its BEATs bring it back up', () => {
  const { s, fx } = run([
    [0, beat({ leaving: true })],
    [100, { type: 'detect' }],
    [5000, beat()],
  ]);
  assert.equal(s.state, 'up');
  assert.deepEqual(fx, ['up', 'arm@80', 'down:left', 'up', 'arm@5080']);
});

test('the detection time is the peer\'s: its interval and multiplier', () => {
  const { s } = run([[0, beat({ intervalMs: 100, multiplier: 3 })]]);
  assert.equal(s.detectMs, 300);
  assert.equal(stepLiveness(s, { type: 'detect' }, 299).state.state, 'up');
  assert.equal(stepLiveness(s, { type: 'detect' }, 300).state.state, 'down');
});

test('checkAdvert: adverts in an fwlb peer\'s name are held to what its BEATs say', () => {
  const up = run([[0, beat({ instances: [{ vrid: 51, state: 'backup', priority: 100 }] })]]).s;
  assert.equal(checkAdvert(up, 51, 100), 'ok');
  assert.equal(checkAdvert(up, 51, 254), 'priority_mismatch', 'a spoofed priority 254 in the backup\'s name');
  assert.equal(checkAdvert(up, 51, 0), 'ok', 'a backup releasing is harmless');
  assert.equal(checkAdvert(up, 77, 100), 'unknown_vrid');
  const master = run([[0, beat()]]).s;
  assert.equal(checkAdvert(master, 51, 0), 'release_unconfirmed', 'a priority-0 advert in the master\'s name, which says it is master');
  const leaving = run([[0, beat({ leaving: true })]]).s;
  assert.equal(checkAdvert(leaving, 51, 0), 'ok');
  // A priority change races the advert: the previous BEAT's value still counts.
  const changed = run([[0, beat()], [20, beat({ instances: [{ vrid: 51, state: 'master', priority: 150 }] })]]).s;
  assert.equal(checkAdvert(changed, 51, 200), 'ok');
  assert.equal(checkAdvert(changed, 51, 150), 'ok');
  const down = run([[0, beat()], [100, { type: 'detect' }]]).s;
  assert.equal(checkAdvert(down, 51, 254), 'ok', 'no BEATs: plain RFC behaviour');
  assert.equal(checkAdvert(initialLiveness(), 51, 254), 'ok');
});

test('property: any sequence of events never throws; down only after detectMs of silence', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat({ max: 50 }), fc.boolean()), { maxLength: 60 }), (steps) => {
      let s = initialLiveness();
      let t = 0;
      for (const [dt, isBeat] of steps) {
        t += dt;
        const r = stepLiveness(s, isBeat ? beat() : { type: 'detect' }, t);
        for (const f of r.effects) if (f.type === 'down') assert.ok(t - s.lastBeatAtMs >= s.detectMs);
        s = r.state;
      }
    }),
  );
});
