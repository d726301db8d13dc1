/**
 * The BGP announcer against a BIRD and a device that record what they are asked, on a fake
 * clock: the order of its steps (withdraw first, the file and `configure`, the device up
 * last), one `configure` per change of the file, the drain (tagged, then withdrawn after
 * `drain`, then the promise), and a BIRD that refuses or is gone (everything withdrawn,
 * tried again, the error shown until it works).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { FakeClock } from '../lib/clock.js';
import { BgpService, PROTOCOLS_FRESH_MS, RETRY_MS, type BgpSettings } from './bgp.js';
import type { BgpMachine } from '../ports/bgp.js';
import type { BirdReply } from '../codec/bird/reply.js';
import type { Stamped } from '../fsm/cluster.js';

const settings: BgpSettings = {
  node: 'fw1',
  socket: '/run/bird/bird.ctl',
  include: '/run/fwlb/bird/announce.conf',
  device: 'fwlb-bgp',
  communities: [[65010, 100]],
  drainMs: 3000,
  extra: [],
  services: [
    { name: 'web', address: '198.18.30.100' },
    { name: 'web6', address: '2001:2:0:30::100' },
  ],
};

/** BIRD's reply to `show bfd sessions` with one session up (test/fixtures/bird/node-show-bfd-sessions.txt). */
const bfdReply: BirdReply = { code: 0, lines: [{ code: 1020, text: 'bfd1:' }, { code: 1020, text: ' IP address                Interface  State      Since         Interval  Timeout' }, { code: 1020, text: ' 198.18.3.1                eth0       Up         02:27:20.759    0.100    0.500' }, { code: 0, text: '' }] };
const ok: BirdReply = { code: 3, lines: [{ code: 2, text: 'Reading configuration from /etc/bird/bird.conf' }, { code: 3, text: 'Reconfigured' }] };
const refused: BirdReply = { code: 8002, lines: [{ code: 2, text: 'Reading configuration' }, { code: 8002, text: '/run/fwlb/bird/announce.conf:3:1 syntax error' }] };

function lab(relay?: Record<string, number>) {
  const steps: string[] = [];
  const files: string[] = [];
  let answer: () => Promise<BirdReply> = async () => ok;
  const shows: string[] = [];
  const machine: BgpMachine = {
    bird: {
      command: async (line) => {
        if (line.startsWith('show ')) return (shows.push(line), line === 'show bfd sessions' ? bfdReply : { code: 0, lines: [] });
        steps.push(line);
        return answer();
      },
      close: () => steps.push('bird closed'),
    },
    device: { name: 'fwlb-bgp', setUp: async (up) => void steps.push(up ? 'up' : 'down'), close: () => steps.push('device closed') },
    writeInclude: async (_path, text) => {
      const routes = [...text.matchAll(/route (\S+)/g)].map((m) => m[1]).join(' ');
      steps.push(`write ${routes || '-'}${text.includes('(65535,0)') ? ' GS' : ''}`);
      files.push(text);
    },
    ...(relay ? { relayCounters: async () => new Map(Object.entries(relay)) } : {}),
  };
  const clock = new FakeClock(1_000_000);
  const svc = new BgpService(settings, { machine, clock, log: pino({ level: 'silent' }) });
  return { svc, steps, files, clock, shows, setAnswer: (f: () => Promise<BirdReply>) => (answer = f) };
}

const flush = () => new Promise<void>((r) => setImmediate(r));
const ready = (r: boolean): Stamped => ({ type: 'ready', ready: r, reason: r ? 'ready' : 'table: bulk sync', at: 0 });

test('not ready: the device down first, the file ready behind it; ready: only the device up (no configure to wait for)', async () => {
  const { svc, steps } = lab();
  svc.setServiceAvailable('web', true);
  await flush();
  assert.deepEqual(steps, ['down', 'write 198.18.30.100/32', 'configure']);
  steps.length = 0;
  svc.onClusterEvent(ready(true));
  await flush();
  assert.deepEqual(steps, ['up']);
  svc.setServiceAvailable('web6', true);
  await flush();
  assert.deepEqual(steps, ['up', 'write 198.18.30.100/32 2001:2:0:30::100/128', 'configure']);
  const st = await svc.status();
  assert.deepEqual([st.deviceUp, st.announced, st.error, st.configures], [true, ['198.18.30.100', '2001:2:0:30::100'], null, 2]);
  assert.deepEqual(st.protocols, []);
});

test('a service that loses its last backend is withdrawn by the file; losing readiness withdraws all by the device, at once', async () => {
  const { svc, steps } = lab();
  svc.onClusterEvent(ready(true));
  svc.setServiceAvailable('web', true);
  svc.setServiceAvailable('web6', true);
  await flush();
  steps.length = 0;
  svc.setServiceAvailable('web6', false);
  await flush();
  assert.deepEqual(steps, ['write 198.18.30.100/32', 'configure']);
  steps.length = 0;
  svc.onClusterEvent(ready(false));
  await flush();
  assert.equal(steps[0], 'down');
  steps.length = 0;
  svc.setServiceAvailable('web', true); // no change
  await flush();
  assert.deepEqual(steps, []);
});

test('drain: tagged GRACEFUL_SHUTDOWN with the device up, withdrawn after drain (device down first), then resolved', async () => {
  const { svc, steps, clock } = lab();
  svc.onClusterEvent(ready(true));
  svc.setServiceAvailable('web', true);
  await flush();
  steps.length = 0;
  let drained = false;
  const p = svc.drain('fwlb stop').then(() => (drained = true));
  // The stop makes the node not ready: the drain keeps the routes.
  svc.onClusterEvent(ready(false));
  await flush();
  assert.deepEqual(steps, ['write 198.18.30.100/32 GS', 'configure']);
  assert.equal((await svc.status()).gracefulShutdown, true);
  clock.advance(2999);
  await flush();
  assert.equal(drained, false);
  clock.advance(1);
  await p;
  assert.deepEqual(steps.slice(2), ['down', 'write -', 'configure']);
  assert.equal((await svc.status()).phase, 'withdrawn');
});

test('a forced stop and endDrain do not wait the drain time', async () => {
  const { svc, steps } = lab();
  svc.onClusterEvent(ready(true));
  svc.setServiceAvailable('web', true);
  await flush();
  const p = svc.drain('fwlb stop');
  await flush();
  assert.equal(svc.endDrain(), true);
  await p;
  assert.equal(steps.at(-3), 'down');
  const q = lab();
  q.svc.onClusterEvent(ready(true));
  q.svc.setServiceAvailable('web', true);
  await flush();
  q.steps.length = 0;
  await q.svc.drain('fwlb stop --force', true);
  assert.deepEqual(q.steps, ['down', 'write -', 'configure']);
});

test('BIRD refuses the file, then is gone, then answers: withdrawn meanwhile, the error shown, tried again every RETRY_MS', async () => {
  const { svc, steps, clock, setAnswer } = lab();
  setAnswer(async () => refused);
  svc.setServiceAvailable('web', true);
  svc.onClusterEvent(ready(true));
  await flush();
  assert.ok(!steps.includes('up'));
  assert.equal(steps.at(-1), 'down');
  let st = await svc.status();
  assert.match(st.error ?? '', /BIRD refused its config \(8002 .*syntax error\)/);
  assert.equal(st.lastConfigure?.ok, false);
  setAnswer(async () => Promise.reject(new Error("BIRD's control socket /run/bird/bird.ctl: ECONNREFUSED")));
  steps.length = 0;
  clock.advance(RETRY_MS);
  await flush();
  assert.deepEqual(steps.slice(0, 2), ['write 198.18.30.100/32', 'configure']);
  st = await svc.status();
  assert.match(st.error ?? '', /ECONNREFUSED/);
  assert.equal(st.deviceUp, false);
  setAnswer(async () => ok);
  steps.length = 0;
  clock.advance(RETRY_MS);
  await flush();
  assert.deepEqual(steps, ['write 198.18.30.100/32', 'configure', 'up']);
  st = await svc.status();
  assert.equal(st.error, null);
  assert.equal(st.deviceUp, true);
});

test('close: the device closed (BIRD withdraws what is left) and no retry after it', async () => {
  const { svc, steps, clock, setAnswer } = lab();
  setAnswer(async () => refused);
  svc.onClusterEvent(ready(true));
  await flush();
  svc.close();
  steps.length = 0;
  clock.advance(RETRY_MS * 3);
  await flush();
  assert.deepEqual(steps, []);
});

test('a drain of a node that announces nothing withdraws at once and never brings the device up; a second drain joins the first', async () => {
  const { svc, steps } = lab();
  svc.setServiceAvailable('web', true);
  await flush();
  steps.length = 0;
  await svc.drain('fwlb stop'); // not ready: the device is down
  assert.ok(!steps.includes('up'), steps.join(', '));
  assert.equal((await svc.status()).phase, 'withdrawn');
  const q = lab();
  q.svc.onClusterEvent(ready(true));
  q.svc.setServiceAvailable('web', true);
  await flush();
  let n = 0;
  const a = q.svc.drain('stopping').then(() => n++);
  q.svc.onClusterEvent(ready(false)); // the stop's own "not ready" comes after the drain began
  const b = q.svc.drain('stopping').then(() => n++);
  await flush();
  assert.equal(q.steps.filter((x) => x === 'down').length, 0, 'the drain keeps the routes up');
  q.clock.advance(3000);
  await Promise.all([a, b]);
  assert.equal(n, 2);
  assert.deepEqual(q.steps.slice(-3), ['down', 'write -', 'configure']);
});

test("status calls within a second share one question to BIRD about its protocols and BFD; a later one, or one after a configure, asks again", async () => {
  const { svc, clock, shows } = lab();
  const [first] = await Promise.all([svc.status(), svc.status(), svc.status()]);
  assert.deepEqual(shows, ['show protocols all', 'show bfd sessions'], 'three status calls at once: one question of each');
  assert.deepEqual(first.bfd, [{ address: '198.18.3.1', iface: 'eth0', state: 'Up', since: '02:27:20.759' }]);
  clock.advance(PROTOCOLS_FRESH_MS - 1);
  await svc.status();
  assert.equal(shows.length, 2, 'still fresh');
  clock.advance(1);
  await svc.status();
  assert.equal(shows.length, 4, 'a second on: asked again');
  svc.setServiceAvailable('web', true);
  await flush();
  await svc.status();
  assert.equal(shows.length, 6, 'a configure since: asked again at once');
});

test('with the relay, status shows the packets seen from the router and those relayed (seen less those that went on here); without it, none', async () => {
  const { svc } = lab();
  assert.equal((await svc.status()).relay, null);
  const { svc: relaying } = lab({ relay_seen: 10, relay_local: 4 });
  const r = (await relaying.status()).relay;
  assert.deepEqual([r?.seen, r?.relayed], [10, 6]);
  const { svc: noTable } = lab({});
  assert.equal((await noTable.status()).relay, null, 'no relay table in the kernel: nothing to show');
});
