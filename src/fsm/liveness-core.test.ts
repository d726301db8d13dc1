import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../lib/clock.js';
import { LivenessCore, type BeatBody, type CoreEvent } from './liveness-core.js';
import type { BeatInstance } from '../codec/sync/message.js';

const beat = (instances: BeatInstance[] = [{ vrid: 51, state: 'master', priority: 200 }], leaving = false) => ({ intervalMs: 15, multiplier: 5, leaving, instances });

function setup(opts: { mainAlive?: () => boolean; readSocket?: (core: LivenessCore) => void } = {}) {
  const clock = new FakeClock(1000);
  const sent: { peer: string; body: BeatBody }[] = [];
  const events: CoreEvent[] = [];
  let reads = 0;
  let core: LivenessCore | undefined;
  core = new LivenessCore({
    clock,
    intervalMs: 15,
    multiplier: 5,
    peers: ['fw1', 'fw3'],
    send: (peer, body) => void sent.push({ peer, body }),
    readSocket: () => {
      reads++;
      opts.readSocket?.(core!);
    },
    emit: (e) => void events.push(e),
    mainAlive: opts.mainAlive ?? (() => true),
  });
  return { clock, core, sent, events, reads: () => reads };
}

test('BEATs go to every peer each interval with what we set; a change goes out at once', () => {
  const { clock, core, sent } = setup();
  core.start();
  clock.advance(100);
  assert.equal(sent.filter((s) => s.peer === 'fw1').length, 7, 'at 0, 15, ..., 90 ms');
  const n = sent.length;
  core.setOwn([{ vrid: 51, state: 'backup', priority: 100 }], true);
  assert.equal(sent.length, n + 2, 'at once, to both peers');
  assert.deepEqual(sent.at(-1)!.body, { intervalMs: 15, multiplier: 5, leaving: true, ready: false, instances: [{ vrid: 51, state: 'backup', priority: 100 }] });
  core.setOwn([], false, true);
  assert.equal(sent.at(-1)!.body.ready, true, 'ready (sharing) goes out at once too');
  core.stop();
  clock.advance(100);
  assert.equal(sent.length, n + 4, 'nothing after stop');
});

test('a silent peer is down after its detection time, once; the socket is read first', () => {
  const { clock, core, events, reads } = setup();
  core.start();
  for (let i = 0; i < 10; i++) {
    core.onBeat('fw1', beat());
    clock.advance(15);
  }
  assert.deepEqual(events.filter((e) => e.type !== 'beat').map((e) => e.type), ['up']);
  clock.advance(59); // 74 ms after the last BEAT
  assert.equal(events.filter((e) => e.type === 'down').length, 0);
  clock.advance(2);
  const downs = events.filter((e) => e.type === 'down');
  assert.equal(downs.length, 1);
  assert.deepEqual({ ...downs[0], silentMs: 0 }, { type: 'down', peer: 'fw1', why: 'silent', silentMs: 0 });
  assert.ok(reads() >= 1);
  clock.advance(1000);
  assert.equal(events.filter((e) => e.type === 'down').length, 1);
});

test('a BEAT found in the socket when the detection timer fires keeps the peer up', () => {
  let late = true;
  const { clock, core, events } = setup({ readSocket: (c) => { if (late) { late = false; c.onBeat('fw1', beat()); } } });
  core.start();
  core.onBeat('fw1', beat());
  clock.advance(80);
  assert.equal(events.filter((e) => e.type === 'down').length, 0);
  assert.equal(core.peerState('fw1')!.state, 'up');
});

test('while the main thread is hung no BEAT goes out (the peers take the node for dead)', () => {
  let alive = true;
  const { clock, core, sent } = setup({ mainAlive: () => alive });
  core.start();
  clock.advance(30);
  const n = sent.length;
  alive = false;
  clock.advance(100);
  assert.equal(sent.length, n);
  assert.ok(core.withheld >= 6);
  alive = true;
  clock.advance(15);
  assert.ok(sent.length > n);
});

test('a peer that said it was leaving goes down as "left"', () => {
  const { clock, core, events } = setup();
  core.start();
  core.onBeat('fw1', beat([], true));
  clock.advance(100);
  assert.equal(events.find((e) => e.type === 'down')?.type === 'down' && (events.find((e) => e.type === 'down') as { why: string }).why, 'left');
});

test('silence we slept through is not silence: a hold of this thread (and the peer\'s) is not a death; a real death still is, later', () => {
  const { clock, core, events } = setup();
  core.start();
  for (let i = 0; i < 10; i++) {
    core.onBeat('fw1', beat());
    clock.advance(15);
  }
  // The whole machine stops for 160 ms: neither we nor the peer run.
  clock.hold(160);
  clock.advance(0);
  assert.equal(events.filter((e) => e.type === 'down').length, 0, 'not down on waking: the silence was our own hold');
  assert.ok((core.timing.deferred ?? 0) >= 1);
  // The peer woke too: its BEATs come again; nothing happened.
  for (let i = 0; i < 4; i++) {
    core.onBeat('fw1', beat());
    clock.advance(15);
  }
  assert.equal(events.filter((e) => e.type === 'down').length, 0);

  // A real death just before a hold: seen, counting only the silence outside the hold.
  clock.hold(100);
  clock.advance(0);
  assert.equal(events.filter((e) => e.type === 'down').length, 0, 'the hold is not silence');
  clock.advance(200);
  const down = events.find((e) => e.type === 'down');
  assert.ok(down && down.type === 'down', 'down in the end');
  // Last BEAT 15 ms before the hold; held 85 ms beyond one interval: 75 + 85 ms of silence.
  assert.ok(down.silentMs >= 159 && down.silentMs <= 162, `down after ${down.silentMs} ms of silence`);
});

test('main hears a BEAT when it says something new, the one after, one it asked for, and the first after a silence', () => {
  const { clock, core, events } = setup();
  core.start();
  const reported = () => events.filter((e) => e.type === 'beat').length;
  const master = [{ vrid: 51, state: 'master' as const, priority: 200 }];
  for (let i = 0; i < 10; i++) {
    core.onBeat('fw1', beat(master));
    clock.advance(15);
  }
  assert.equal(reported(), 2, 'the first (news) and the one after it; not the 8 that repeat it');
  assert.equal(core.peerState('fw1')!.beats, 10, 'every BEAT counts where it is counted');
  core.onBeat('fw1', beat([{ vrid: 51, state: 'backup', priority: 0 }]));
  clock.advance(15);
  core.onBeat('fw1', beat([{ vrid: 51, state: 'backup', priority: 0 }]));
  clock.advance(15);
  core.onBeat('fw1', beat([{ vrid: 51, state: 'backup', priority: 0 }]));
  assert.equal(reported(), 4, 'a change and the one after it');
  core.want();
  clock.advance(15);
  core.onBeat('fw1', beat([{ vrid: 51, state: 'backup', priority: 0 }]));
  clock.advance(15);
  core.onBeat('fw1', beat([{ vrid: 51, state: 'backup', priority: 0 }]));
  assert.equal(reported(), 5, 'the one asked for, once');
  core.onBeat('fw1', beat([{ vrid: 51, state: 'backup', priority: 0 }], true));
  assert.equal(reported(), 6, 'leaving is news');
  clock.advance(200);
  assert.equal(events.at(-1)!.type, 'down');
  core.onBeat('fw1', beat([{ vrid: 51, state: 'backup', priority: 0 }], true));
  assert.equal(events.filter((e) => e.type === 'beat').length, 7, 'the first BEAT after it was down, though it says the same');
});
