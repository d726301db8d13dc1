import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ClusterEvents } from '../services/cluster-events.js';
import { FakeClock } from '../lib/clock.js';
import { SystemdNotify } from './systemd.js';

function setup() {
  const sent: string[] = [];
  const events = new ClusterEvents({ clock: new FakeClock(), log: pino({ level: 'silent' }) });
  let mono = 1_000_000n;
  const sd = new SystemdNotify({ send: (m) => void sent.push(m), monotonicUsec: () => (mono += 1000n) });
  events.subscribe(sd.onEvent);
  return { sent, events, sd };
}

test('READY=1 once, only when the node is ready (VRRP running and the table complete), with a status line', () => {
  const { sent, events } = setup();
  events.feed({ type: 'started', vrrp: true, sync: true, sharedLinks: [] });
  events.feed({ type: 'vrrp_running', running: true, configured: true });
  assert.ok(sent.every((m) => !m.includes('READY=1')), `not ready yet: ${JSON.stringify(sent)}`);
  events.feed({ type: 'table', complete: true, progress: 'bulk sync done' });
  const ready = sent.filter((m) => m.startsWith('READY=1'));
  assert.equal(ready.length, 1);
  assert.match(ready[0]!, /^READY=1\nSTATUS=ready/);
  events.feed({ type: 'group', group: 'edge', state: 'master', vips: ['198.18.0.100', '2001:2::100'] });
  events.feed({ type: 'peer', peer: 'fw2', state: 'up' });
  assert.equal(sent.filter((m) => m.startsWith('READY=1')).length, 1, 'never twice');
  assert.match(sent.at(-1)!, /^STATUS=ready; edge master holding 2 VIPs; peers fw2 up$/);
  // Readiness lost: said in the status (systemd has no "not ready" once started).
  events.feed({ type: 'table', complete: false, progress: 'bulk sync: 10 entries from fw2' });
  assert.match(sent.at(-1)!, /^STATUS=not ready: bulk sync: 10 entries from fw2/);
});

test('a reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 whatever the outcome; nothing of the kind before the first READY=1', () => {
  const { sent, events, sd } = setup();
  events.feed({ type: 'started', vrrp: false, sync: true, sharedLinks: [] });
  sd.reloadStart('/etc/fwlb/cluster.yaml');
  assert.ok(sent.every((m) => !m.startsWith('RELOADING')), 'a reload before the node was ever ready is not announced');
  events.feed({ type: 'table', complete: true, progress: 'alone' });
  assert.match(sent.at(-1)!, /^READY=1/);
  sent.length = 0;
  sd.reloadStart('/etc/fwlb/cluster.yaml');
  events.feed({ type: 'config', ok: false, reason: 'vrrp.groups.edge: bad' });
  sd.reloadEnd('reload refused (the running config stays): vrrp.groups.edge: bad\nmore', events.current());
  sd.reloadStart('/etc/fwlb/cluster.yaml');
  events.feed({ type: 'config', ok: true, digest: 'abc', changed: true });
  sd.reloadEnd('reloaded', events.current());
  const kinds = sent.map((m) => m.split('\n')[0]);
  assert.deepEqual(kinds, ['RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1'], JSON.stringify(sent));
  assert.match(sent[0]!, /^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading \/etc\/fwlb\/cluster\.yaml$/);
  assert.match(sent[1]!, /^READY=1\nSTATUS=reload refused \(the running config stays\): vrrp\.groups\.edge: bad more; ready$/);
  const us = sent.filter((m) => m.startsWith('RELOADING')).map((m) => BigInt(/MONOTONIC_USEC=(\d+)/.exec(m)![1]!));
  assert.ok(us[1]! > us[0]!, 'MONOTONIC_USEC moves on');
});

test('STOPPING=1 at the graceful stop, and nothing after it', () => {
  const { sent, events, sd } = setup();
  events.feed({ type: 'started', vrrp: false, sync: false, sharedLinks: [] });
  events.feed({ type: 'stopping', why: 'SIGTERM' });
  assert.match(sent.at(-1)!, /^STOPPING=1\nSTATUS=stopping \(SIGTERM\): handing over$/);
  const n = sent.length;
  events.feed({ type: 'peer', peer: 'fw2', state: 'down' });
  sd.reloadStart('x');
  assert.equal(sent.length, n);
  sd.watchdog();
  assert.equal(sent.at(-1), 'WATCHDOG=1', 'the watchdog is fed to the end');
});
