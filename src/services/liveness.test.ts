import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeClock } from '../lib/clock.js';
import { LivenessService } from './liveness.js';
import type { BeatInstance, SyncBeatMessage } from '../codec/sync/message.js';

const beatMsg = (instances: BeatInstance[], leaving = false): SyncBeatMessage => ({
  type: 'beat', sender: 1, receiver: 0, epoch: 1, peerEpoch: 2, packet: 1, seq: 0, intervalMs: 15, multiplier: 5, leaving, instances,
});

function setup(peers = [{ name: 'fw1', addresses: ['198.18.0.2', '198.18.2.1'] }, { name: 'fw3', addresses: ['198.18.0.4'] }]) {
  const clock = new FakeClock(1000);
  const sent: { leaving: boolean; instances: BeatInstance[] }[] = [];
  const gone: { addresses: string[]; why: string; outranked: boolean }[] = [];
  let drains = 0;
  const ours: BeatInstance[] = [{ vrid: 51, state: 'backup', priority: 100 }];
  const svc = new LivenessService({
    clock,
    log: pino({ level: 'silent' }),
    intervalMs: 15,
    multiplier: 5,
    peers,
    sync: { beat: (b) => void sent.push({ leaving: b.leaving, instances: b.instances }), readSocket: () => void drains++ },
    vrrp: {
      beatInstances: () => ours,
      peerGone: (addresses, why, outranked) => {
        gone.push({ addresses: [...addresses], why, outranked: outranked(51, 100) });
        return 1;
      },
    },
  });
  return { clock, svc, sent, gone, drains: () => drains };
}

test('BEATs go out every interval with our instances; leaving is announced at once', () => {
  const { clock, svc, sent } = setup();
  svc.start();
  clock.advance(100);
  assert.equal(sent.length, 7, 'at 0, 15, ..., 90 ms');
  assert.deepEqual(sent[0]!.instances, [{ vrid: 51, state: 'backup', priority: 100 }]);
  svc.announceLeaving();
  assert.equal(sent.at(-1)!.leaving, true);
  svc.stop();
  const n = sent.length;
  clock.advance(100);
  assert.equal(sent.length, n, 'nothing after stop');
});

test('a silent peer is gone after its detection time; the socket is read first; its addresses go to VRRP', () => {
  const { clock, svc, gone, drains } = setup();
  svc.start();
  for (let i = 0; i < 10; i++) {
    svc.onBeat('fw1', beatMsg([{ vrid: 51, state: 'master', priority: 200 }]));
    clock.advance(15);
  }
  assert.equal(svc.status().peers[0]!.state, 'up');
  // The last BEAT came 15 ms ago.
  clock.advance(59);
  assert.equal(gone.length, 0, 'not before 75 ms of silence');
  clock.advance(2);
  assert.equal(gone.length, 1);
  assert.deepEqual(gone[0]!.addresses, ['198.18.0.2', '198.18.2.1']);
  assert.match(gone[0]!.why, /no liveness BEAT from fw1/);
  assert.equal(gone[0]!.outranked, false, 'no other live peer outranks us: take over at once');
  assert.ok(drains() >= 1, 'the socket was read before deciding');
  assert.equal(svc.status().peers[0]!.released, 1);
  clock.advance(1000);
  assert.equal(gone.length, 1, 'released once per down transition');
});

test('another live peer with a higher priority for the VRID outranks us (Skew_Time decides)', () => {
  const { clock, svc, gone } = setup();
  svc.start();
  svc.onBeat('fw1', beatMsg([{ vrid: 51, state: 'master', priority: 200 }]));
  for (let i = 0; i < 10; i++) {
    svc.onBeat('fw3', beatMsg([{ vrid: 51, state: 'backup', priority: 150 }]));
    clock.advance(15);
  }
  assert.equal(gone.length, 1);
  assert.equal(gone[0]!.outranked, true);
});

test('a BEAT that arrives during the read before the decision keeps the peer up', () => {
  const clock = new FakeClock(0);
  const gone: string[] = [];
  let svc: LivenessService | undefined;
  let late = true;
  svc = new LivenessService({
    clock,
    log: pino({ level: 'silent' }),
    intervalMs: 15,
    multiplier: 5,
    peers: [{ name: 'fw1', addresses: ['198.18.0.2'] }],
    // The socket held a BEAT that the held-up loop had not read yet.
    sync: { beat: () => undefined, readSocket: () => { if (late) { late = false; svc!.onBeat('fw1', beatMsg([])); } } },
    vrrp: { beatInstances: () => [], peerGone: (_a, why) => (gone.push(why), 0) },
  });
  svc.start();
  svc.onBeat('fw1', beatMsg([]));
  clock.advance(80);
  assert.deepEqual(gone, []);
  assert.equal(svc.status().peers[0]!.state, 'up');
});

test('checkAdvert by address: fwlb peers are held to their BEATs, anyone else is not', () => {
  const { svc } = setup();
  svc.start();
  svc.onBeat('fw1', beatMsg([{ vrid: 51, state: 'backup', priority: 100 }]));
  assert.equal(svc.checkAdvert('198.18.0.2', 51, 254), 'priority_mismatch');
  assert.equal(svc.checkAdvert('198.18.0.2', 51, 100), 'ok');
  assert.equal(svc.checkAdvert('198.18.0.77', 51, 254), 'ok');
});
