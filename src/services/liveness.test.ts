import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeClock } from '../lib/clock.js';
import { LivenessService } from './liveness.js';
import type { BeatInstance } from '../codec/sync/message.js';
import type { CoreEvent } from '../fsm/liveness-core.js';
import type { LivenessChannel } from '../ports/liveness.js';

function setup() {
  const clock = new FakeClock(1000);
  type Ev = CoreEvent | { type: 'error'; message: string; restarted?: boolean } | { type: 'own_behind'; behind: boolean; why: string };
  let emit: ((e: Ev) => void) | undefined;
  const own: { instances: BeatInstance[]; leaving: boolean; ready?: boolean }[] = [];
  const members: [string, boolean][] = [];
  const channel: LivenessChannel = {
    start: (cb) => void (emit = cb),
    setOwn: (instances, leaving, ready) => void own.push({ instances, leaving, ...(ready ? { ready } : {}) }),
    stop: () => undefined,
    wantBeat: () => undefined,
    seen: () => undefined,
    lagSince: () => undefined,
    writeSince: () => undefined,
    told: () => undefined,
    ownLag: () => ({ behind: false, writing: false }),
    counters: { sent: 0, received: 0, withheld: 0, dropped: {} },
  };
  const gone: { addresses: string[]; why: string; outranked: boolean }[] = [];
  const rechecks: string[][] = [];
  const holds: [boolean, string, string][] = [];
  const svc = new LivenessService({
    clock,
    log: pino({ level: 'silent' }),
    intervalMs: 15,
    multiplier: 5,
    peers: [{ name: 'fw1', addresses: ['198.18.0.2', '198.18.2.1'] }, { name: 'fw3', addresses: ['198.18.0.4'] }],
    channel,
    vrrp: {
      beatInstances: () => [{ vrid: 51, state: 'backup', priority: 100 }],
      peerGone: (addresses, why, outranked) => (gone.push({ addresses: [...addresses], why, outranked: outranked(51, 100) }), 1),
      recheckHeld: (addresses) => void rechecks.push([...addresses]),
      setPreemptHold: (on, why, reason) => void holds.push([on, why, reason]),
    },
    sharing: { peer: (name, member) => void members.push([name, member]) },
  });
  svc.start();
  const beat = (peer: string, instances: BeatInstance[], leaving = false, ready = false) => emit!({ type: 'beat', peer, instances, leaving, ready, detectMs: 75 });
  return { svc, emit: (e: Ev) => emit!(e), beat, own, gone, rechecks, members, holds };
}

test('start and leaving tell the worker what our BEATs say', () => {
  const { svc, own } = setup();
  assert.deepEqual(own[0], { instances: [{ vrid: 51, state: 'backup', priority: 100 }], leaving: false });
  svc.announceLeaving();
  assert.equal(own.at(-1)!.leaving, true);
});

test('a peer reported down releases the instances it was master of, at once when no live peer outranks us', () => {
  const { svc, emit, beat, gone } = setup();
  emit({ type: 'up', peer: 'fw1', detectMs: 75 });
  beat('fw1', [{ vrid: 51, state: 'master', priority: 200 }]);
  emit({ type: 'down', peer: 'fw1', why: 'silent', silentMs: 80 });
  assert.equal(gone.length, 1);
  assert.deepEqual(gone[0]!.addresses, ['198.18.0.2', '198.18.2.1']);
  assert.match(gone[0]!.why, /no liveness BEAT from fw1 for 80 ms/);
  assert.equal(gone[0]!.outranked, false);
  assert.equal(svc.status().peers[0]!.released, 1);
  assert.equal(svc.status().peers[0]!.state, 'down');
});

test('another live peer with a higher priority for the VRID outranks us', () => {
  const { emit, beat, gone } = setup();
  beat('fw1', [{ vrid: 51, state: 'master', priority: 200 }]);
  beat('fw3', [{ vrid: 51, state: 'backup', priority: 150 }]);
  emit({ type: 'down', peer: 'fw1', why: 'silent', silentMs: 80 });
  assert.equal(gone[0]!.outranked, true);
});

test('adverts in an fwlb peer\'s name are held to its BEATs; each BEAT rechecks held releases', () => {
  const { svc, beat, rechecks } = setup();
  beat('fw1', [{ vrid: 51, state: 'backup', priority: 100 }]);
  assert.deepEqual(rechecks.at(-1), ['198.18.0.2', '198.18.2.1']);
  assert.equal(svc.checkAdvert('198.18.0.2', 51, 254), 'priority_mismatch');
  assert.equal(svc.checkAdvert('198.18.0.2', 51, 100), 'ok');
  assert.equal(svc.checkAdvert('198.18.0.77', 51, 254), 'ok', 'not an fwlb peer: plain RFC');
  beat('fw1', [{ vrid: 51, state: 'master', priority: 100 }]);
  assert.equal(svc.checkAdvert('198.18.0.2', 51, 0), 'ok', 'the BEAT before said backup: the change may race');
  beat('fw1', [{ vrid: 51, state: 'master', priority: 100 }]);
  assert.equal(svc.checkAdvert('198.18.0.2', 51, 0), 'release_unconfirmed');
});

test('sharing: a peer is a member while its BEATs say ready and it is up; our readiness goes out in a BEAT at once', () => {
  const { svc, emit, beat, own, members } = setup();
  svc.setReady(true);
  assert.equal(own.at(-1)!.ready, true);
  emit({ type: 'up', peer: 'fw1', detectMs: 75 });
  beat('fw1', [], false, false);
  assert.deepEqual(members, [], 'up but not ready: not a member yet');
  beat('fw1', [], false, true);
  beat('fw1', [], false, true);
  assert.deepEqual(members, [['fw1', true]]);
  assert.equal(svc.status().peers[0]!.ready, true);
  emit({ type: 'down', peer: 'fw1', why: 'silent', silentMs: 80 });
  assert.deepEqual(members, [['fw1', true], ['fw1', false]]);
  beat('fw1', [], false, true);
  assert.deepEqual(members.at(-1), ['fw1', true], 'back');
});

test('sharing: a peer that says it is stopping is no member from that BEAT on; our own leaving BEAT says not ready', () => {
  const { svc, emit, beat, own, members } = setup();
  svc.setReady(true);
  emit({ type: 'up', peer: 'fw1', detectMs: 75 });
  beat('fw1', [], false, true);
  beat('fw1', [], true, true);
  assert.deepEqual(members, [['fw1', true], ['fw1', false]], 'its buckets are taken at once, not after its silence');
  svc.announceLeaving();
  assert.deepEqual({ leaving: own.at(-1)!.leaving, ready: own.at(-1)!.ready === true }, { leaving: true, ready: false });
});

test('IPv6: the advert sources a peer\'s BEATs name are its own: adverts from them are judged as its (apart from its IPv4 instance of the same VRID), and its loss releases them', () => {
  const { svc, emit, beat, gone } = setup();
  assert.equal(svc.checkAdvert('fe80::a', 51, 254), 'ok', 'an address no BEAT named yet: plain RFC');
  beat('fw1', [{ vrid: 51, state: 'master', priority: 200 }, { vrid: 51, state: 'master', priority: 150, source: 'fe80::a' }]);
  assert.equal(svc.checkAdvert('fe80::a', 51, 150), 'ok');
  assert.equal(svc.checkAdvert('fe80::a', 51, 200), 'priority_mismatch', 'the IPv6 instance says 150; 200 is its IPv4 twin');
  assert.equal(svc.checkAdvert('198.18.0.2', 51, 200), 'ok');
  // The address moves to another peer (a re-cabled lab): it is that peer's from then on.
  beat('fw3', [{ vrid: 51, state: 'backup', priority: 100, source: 'fe80::a' }]);
  assert.equal(svc.checkAdvert('fe80::a', 51, 100), 'ok');
  beat('fw1', [{ vrid: 51, state: 'master', priority: 200 }, { vrid: 51, state: 'master', priority: 150, source: 'fe80::b' }]);
  emit({ type: 'down', peer: 'fw1', why: 'silent', silentMs: 80 });
  assert.deepEqual(gone[0]!.addresses.sort(), ['198.18.0.2', '198.18.2.1', 'fe80::b']);
});

test('issue 25: while our BEATs say BEHIND, preemption is held (once per change); a failed thread or a stop lets it go', () => {
  const { svc, emit, holds } = setup();
  emit({ type: 'own_behind', behind: true, why: 'fw1 says we lag 1500 ms behind its changes (lag bound 1000 ms)' });
  emit({ type: 'own_behind', behind: true, why: 'again' });
  assert.deepEqual(holds, [[true, 'this node is behind: fw1 says we lag 1500 ms behind its changes (lag bound 1000 ms)', 'behind']]);
  emit({ type: 'own_behind', behind: false, why: 'caught up (lag bound 1000 ms)' });
  assert.deepEqual(holds.at(-1), [false, 'no longer behind: caught up (lag bound 1000 ms)', 'behind']);
  emit({ type: 'own_behind', behind: true, why: 'records received 1200 ms ago still wait for our kernel (lag bound 1000 ms)' });
  emit({ type: 'error', message: 'worker died' });
  assert.deepEqual(holds.at(-1), [false, 'no longer behind: the liveness thread failed', 'behind']);
  emit({ type: 'own_behind', behind: true, why: 'x' });
  svc.stop();
  assert.deepEqual(holds.map((h) => h[0]), [true, false, true, false, true, false]);
  assert.equal(holds.at(-1)![1], 'no longer behind: liveness stopped');
});

test('a timing thread started again after a death is told at once what our BEATs say; deaths and restarts are counted', () => {
  const { svc, emit, own } = setup();
  const before = own.length;
  emit({ type: 'error', message: 'worker died', restarted: true });
  assert.equal(own.length, before + 1);
  assert.deepEqual(own.at(-1), { instances: [{ vrid: 51, state: 'backup', priority: 100 }], leaving: false });
  emit({ type: 'error', message: 'worker died again', restarted: false });
  assert.equal(own.length, before + 1, 'none started: nothing to tell');
  assert.deepEqual(svc.status().thread, { failures: 2, restarts: 1, lastError: 'worker died again' });
});
