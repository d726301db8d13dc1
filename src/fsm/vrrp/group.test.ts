/** Sync group rules, one by one, on a fake clock; then random event streams. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { VrrpV3Advert } from '../../codec/vrrp/packet.js';
import { initialGroupState, stepGroup, type SyncGroupEffect, type SyncGroupEvent, type SyncGroupState } from './group.js';
import { SYNC_GROUP_FAULT, type VrrpEvent, type VrrpInstanceConfig } from './instance.js';
import { masterDownInterval } from './timers.js';

const member = (vrid: number, o: Partial<VrrpInstanceConfig> = {}): VrrpInstanceConfig => ({
  name: `m${vrid}`,
  version: 3,
  family: 4,
  vrid,
  priority: 100,
  advertIntervalMs: 1000,
  addresses: [`198.18.${vrid}.1`],
  primaryAddress: `198.18.${vrid}.2`,
  preempt: true,
  preemptDelayMs: 0,
  acceptMode: false,
  ...o,
});
const adv = (vrid: number, priority: number): VrrpV3Advert => ({ version: 3, family: 4, vrid, priority, maxAdvertIntervalMs: 1000, addresses: [`198.18.${vrid}.1`] });

function run(g: SyncGroupState, events: Array<[SyncGroupEvent, number]>): { state: SyncGroupState; effects: SyncGroupEffect[] } {
  let effects: SyncGroupEffect[] = [];
  for (const [ev, t] of events) {
    const r = stepGroup(g, ev, t);
    g = r.state;
    effects = r.effects;
  }
  return { state: g, effects };
}
const all = (event: VrrpEvent): SyncGroupEvent => ({ type: 'all', event });
const one = (m: string, event: VrrpEvent): SyncGroupEvent => ({ type: 'member', member: m, event });
const states = (g: SyncGroupState) => Object.fromEntries(Object.entries(g.members).map(([n, m]) => [n, m.state]));
const groupNotes = (fx: SyncGroupEffect[]) => fx.filter((e) => e.type === 'notify').map((e) => (e.type === 'notify' ? e.state : ''));
const memberFx = (fx: SyncGroupEffect[], m: string) => fx.flatMap((e) => (e.type === 'member' && e.member === m ? [e.effect] : []));

const fresh = () => initialGroupState('edge', { ext: member(51), int: member(52) });
const MDI = masterDownInterval(100, 1000);
/** Started, then both Master_Down_Timers fired: a master group. */
const masterGroup = () => run(fresh(), [[all({ type: 'startup' }), 0], [one('ext', { type: 'master_down_timer' }), MDI], [one('int', { type: 'master_down_timer' }), MDI]]).state;

test('initial group: members carry the group name; startup puts them all in backup', () => {
  const g = fresh();
  assert.equal(g.state, 'initialize');
  assert.ok(Object.values(g.members).every((m) => m.config.syncGroup === 'edge'));
  const r = stepGroup(g, all({ type: 'startup' }), 0);
  assert.deepEqual(states(r.state), { ext: 'backup', int: 'backup' });
  assert.equal(r.state.state, 'backup');
  assert.deepEqual(groupNotes(r.effects), ['backup']);
});

test('rule 3: one member wanting master is held; when all want it, all are promoted at once', () => {
  const s = stepGroup(fresh(), all({ type: 'startup' }), 0).state;
  const first = stepGroup(s, one('ext', { type: 'master_down_timer' }), MDI);
  assert.deepEqual(states(first.state), { ext: 'backup', int: 'backup' });
  assert.equal(first.state.members.ext?.wantState, 'master');
  assert.equal(first.state.members.ext?.timers.master_down, 2 * MDI); // the wish is renewed
  assert.ok(memberFx(first.effects, 'ext').some((e) => e.type === 'count' && e.counter === 'held_by_sync_group'));
  const second = stepGroup(first.state, one('int', { type: 'master_down_timer' }), MDI + 5);
  assert.deepEqual(states(second.state), { ext: 'master', int: 'master' });
  assert.equal(second.state.state, 'master');
  assert.deepEqual(groupNotes(second.effects), ['master']);
  for (const m of ['ext', 'int']) assert.ok(memberFx(second.effects, m).some((e) => e.type === 'add_vips'));
});

test('rule 3: a held member that hears a better master gives up its wish', () => {
  const s = run(fresh(), [[all({ type: 'startup' }), 0], [one('ext', { type: 'master_down_timer' }), MDI]]).state;
  const heard = stepGroup(s, one('ext', { type: 'advert_received', advert: adv(51, 200), from: '198.18.51.9' }), MDI + 10).state;
  assert.equal(heard.members.ext?.wantState, 'backup');
  const r = stepGroup(heard, one('int', { type: 'master_down_timer' }), MDI + 20);
  assert.deepEqual(states(r.state), { ext: 'backup', int: 'backup' });
});

test('rule 1: a fault on one member faults them all; the last cleared frees them all', () => {
  const g = masterGroup();
  const f = stepGroup(g, one('int', { type: 'fault', source: 'interface:inside' }), 10_000);
  assert.deepEqual(states(f.state), { ext: 'fault', int: 'fault' });
  assert.deepEqual(f.state.members.ext?.faults, [SYNC_GROUP_FAULT]);
  assert.deepEqual(groupNotes(f.effects), ['fault']);
  // Both masters said priority 0 on the way out and released their addresses.
  for (const m of ['ext', 'int']) {
    const fx = memberFx(f.effects, m);
    assert.ok(fx.some((e) => e.type === 'send_advert' && e.priority === 0), m);
    assert.ok(fx.some((e) => e.type === 'remove_vips'), m);
  }
  // A second member fault; clearing the first keeps everyone in fault.
  const f2 = run(f.state, [[one('ext', { type: 'fault', source: 'interface:outside' }), 10_100], [one('int', { type: 'fault_cleared', source: 'interface:inside' }), 10_200]]);
  assert.deepEqual(states(f2.state), { ext: 'fault', int: 'fault' });
  const c = stepGroup(f2.state, one('ext', { type: 'fault_cleared', source: 'interface:outside' }), 11_000);
  assert.deepEqual(states(c.state), { ext: 'backup', int: 'backup' });
  assert.deepEqual(groupNotes(c.effects), ['backup']);
  assert.deepEqual(c.state.members.int?.faults, []);
});

test('rule 2: a member that loses the election takes the other masters to backup, with priority 0', () => {
  const g = masterGroup();
  const r = stepGroup(g, one('ext', { type: 'advert_received', advert: adv(51, 200), from: '198.18.51.9' }), 10_000);
  assert.deepEqual(states(r.state), { ext: 'backup', int: 'backup' });
  assert.ok(!memberFx(r.effects, 'ext').some((e) => e.type === 'send_advert')); // lost: no priority 0
  assert.ok(memberFx(r.effects, 'int').some((e) => e.type === 'send_advert' && e.priority === 0)); // followed: priority 0
  assert.deepEqual(groupNotes(r.effects), ['backup']);
});

test('node-wide events: maintenance and shutdown reach every member', () => {
  const g = masterGroup();
  const m = stepGroup(g, all({ type: 'maintenance_on' }), 10_000);
  assert.deepEqual(states(m.state), { ext: 'backup', int: 'backup' });
  assert.ok(Object.values(m.state.members).every((x) => x.maintenance && x.timers.master_down === undefined));
  const off = stepGroup(m.state, all({ type: 'maintenance_off' }), 20_000);
  assert.ok(Object.values(off.state.members).every((x) => !x.maintenance && x.timers.master_down !== undefined));
  const stop = stepGroup(g, all({ type: 'shutdown' }), 30_000);
  assert.deepEqual(states(stop.state), { ext: 'initialize', int: 'initialize' });
  assert.deepEqual(groupNotes(stop.effects), ['stop']);
});

test('an owner member waits for its siblings; an event for an unknown member is logged, not thrown', () => {
  const g = initialGroupState('edge', { ext: member(51, { priority: 255 }), int: member(52) });
  const s = stepGroup(g, all({ type: 'startup' }), 0).state;
  assert.deepEqual(states(s), { ext: 'backup', int: 'backup' });
  assert.equal(s.members.ext?.wantState, 'master');
  const r = stepGroup(s, one('int', { type: 'master_down_timer' }), MDI);
  assert.deepEqual(states(r.state), { ext: 'master', int: 'master' });
  const u = stepGroup(r.state, one('nope', { type: 'startup' }), 1);
  assert.equal(u.state, r.state);
  assert.ok(u.effects.some((e) => e.type === 'log' && e.level === 'warn'));
});

test('any event stream: never throws; no member is master while another is in fault (property)', () => {
  const arbEvent: fc.Arbitrary<VrrpEvent> = fc.oneof(
    fc.constantFrom<VrrpEvent>(
      { type: 'startup' },
      { type: 'shutdown' },
      { type: 'master_down_timer' },
      { type: 'advert_timer' },
      { type: 'preempt_delay_timer' },
      { type: 'maintenance_on' },
      { type: 'maintenance_off' },
      { type: 'fault', source: 'eth0' },
      { type: 'fault_cleared', source: 'eth0' },
      { type: 'fault', source: SYNC_GROUP_FAULT },
      { type: 'fault_cleared', source: SYNC_GROUP_FAULT },
      { type: 'group_state', state: 'master' },
    ),
    fc.integer({ min: 0, max: 255 }).map((p) => ({ type: 'advert_received', advert: adv(51, p), from: '198.18.51.9' }) as VrrpEvent),
    fc.integer({ min: 0, max: 255 }).map((p) => ({ type: 'advert_received', advert: adv(52, p), from: '198.18.52.9' }) as VrrpEvent),
    fc.integer({ min: 1, max: 255 }).map((priority) => ({ type: 'priority_changed', priority }) as VrrpEvent),
  );
  const arbGroupEvent: fc.Arbitrary<SyncGroupEvent> = fc.oneof(
    arbEvent.map((event) => ({ type: 'all', event }) as SyncGroupEvent),
    fc.tuple(fc.constantFrom('ext', 'int', 'dmz'), arbEvent).map(([m, event]) => ({ type: 'member', member: m, event }) as SyncGroupEvent),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(arbGroupEvent, fc.integer({ min: 0, max: 4000 }), fc.boolean()), { maxLength: 60 }), (events) => {
      let g = initialGroupState('edge', { ext: member(51), int: member(52, { priority: 200 }), dmz: member(53) });
      let now = 0;
      for (const [ev, dt, onTime] of events) {
        // Timer events mostly arrive when due, so the group does reach master.
        if (onTime && ev.type === 'member' && ev.event.type === 'master_down_timer') now = Math.max(now, g.members[ev.member]?.timers.master_down ?? now);
        else now += dt;
        const r = stepGroup(g, ev, now);
        g = r.state;
        const list = Object.values(g.members);
        assert.ok(!(list.some((m) => m.state === 'master') && list.some((m) => m.state === 'fault')));
        const own = list.some((m) => m.faults.some((f) => f !== SYNC_GROUP_FAULT));
        for (const m of list) assert.equal(m.faults.includes(SYNC_GROUP_FAULT), own);
        if (g.state === 'master') assert.ok(list.every((m) => m.state === 'master'));
      }
    }),
    { numRuns: 1000 },
  );
});
