/**
 * What a node announces: nothing unless ready (device down), a service's address only while
 * it has a backend, the extra addresses while ready; a drain keeps the routes up, tagged,
 * whatever readiness says; withdrawn is withdrawn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredAnnouncement, sameAnnouncement, type BgpInputs } from './bgp.js';

const base: BgpInputs = {
  ready: true,
  phase: 'running',
  services: [
    { name: 'web', address: '198.18.30.100', available: true },
    { name: 'web6', address: '2001:2:0:30::100', available: true },
    { name: 'dns', address: '198.18.30.53', available: false },
    { name: 'web8080', address: '198.18.30.100', available: false },
  ],
  extra: ['198.18.30.200'],
};

test('ready: each service with a backend, the extras; a service without one withdrawn unless another serves its address', () => {
  const d = desiredAnnouncement(base);
  assert.equal(d.deviceUp, true);
  assert.equal(d.gracefulShutdown, false);
  assert.deepEqual([...d.addresses].sort(), ['198.18.30.100', '198.18.30.200', '2001:2:0:30::100']);
  assert.match(d.why, /withdrawn for want of a backend: 198\.18\.30\.53$/);
});

test('not ready: the device down (everything withdrawn at once), the reason said', () => {
  const d = desiredAnnouncement({ ...base, ready: false }, 'not ready (table: bulk sync 40%)');
  assert.equal(d.deviceUp, false);
  assert.equal(d.why, 'not ready (table: bulk sync 40%): nothing announced');
});

test('draining: up and tagged even though the stop made the node not ready; withdrawn: nothing', () => {
  const d = desiredAnnouncement({ ...base, ready: false, phase: 'draining' });
  assert.equal(d.deviceUp, true);
  assert.equal(d.gracefulShutdown, true);
  assert.equal(d.addresses.length, 3);
  const w = desiredAnnouncement({ ...base, phase: 'withdrawn' });
  assert.deepEqual([w.deviceUp, w.addresses, w.gracefulShutdown], [false, [], false]);
});

test('sameAnnouncement: equal answers only', () => {
  const a = desiredAnnouncement(base);
  assert.ok(sameAnnouncement(a, desiredAnnouncement(base)));
  assert.ok(!sameAnnouncement(a, desiredAnnouncement({ ...base, phase: 'draining' })));
  assert.ok(!sameAnnouncement(a, desiredAnnouncement({ ...base, extra: [] })));
  assert.ok(!sameAnnouncement(a, desiredAnnouncement({ ...base, ready: false })));
});
