/**
 * The instance machine against RFC 5798 section 6.4, step by step, on a fake clock (plain
 * numbers), then what lies beyond the RFC: receive checks (7.1), stale timers, priority
 * changes, fault, maintenance, preempt delay, and a property test over random event streams.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { VrrpAdvert, VrrpV2Advert, VrrpV3Advert } from '../../codec/vrrp/packet.js';
import {
  acceptsTraffic,
  initialState,
  step,
  VRRP_COUNTERS,
  type VrrpEffect,
  type VrrpEvent,
  type VrrpInstanceConfig,
  type VrrpInstanceState,
} from './instance.js';
import { masterDownInterval, skewTime, skewTimeV2 } from './timers.js';

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

const BASE: VrrpInstanceConfig = {
  name: 'edge.ext',
  version: 3,
  family: 4,
  vrid: 51,
  priority: 100,
  advertIntervalMs: 1000,
  addresses: ['198.18.0.100/24'],
  primaryAddress: '198.18.0.2',
  preempt: true,
  preemptDelayMs: 0,
  acceptMode: false,
};
const cfg = (o: Partial<VrrpInstanceConfig> = {}): VrrpInstanceConfig => ({ ...BASE, ...o });
const HIGHER_ADDR = '198.18.0.3';
const LOWER_ADDR = '198.18.0.1';

function adv(priority: number, o: Partial<VrrpV3Advert> = {}): VrrpV3Advert {
  return { version: 3, family: 4, vrid: 51, priority, maxAdvertIntervalMs: 1000, addresses: ['198.18.0.100'], ...o };
}
const rx = (advert: VrrpAdvert, from = HIGHER_ADDR): VrrpEvent => ({ type: 'advert_received', advert, from });

type Fx<T extends VrrpEffect['type']> = Extract<VrrpEffect, { type: T }>;
const of = <T extends VrrpEffect['type']>(fx: VrrpEffect[], type: T): Array<Fx<T>> => fx.filter((e): e is Fx<T> => e.type === type);
const kinds = (fx: VrrpEffect[]) => fx.filter((e) => e.type !== 'log' && e.type !== 'count').map((e) => e.type);
const counted = (fx: VrrpEffect[]) => of(fx, 'count').map((e) => e.counter);

/** Started instance (backup, or master for the owner) at time `now`. */
function started(c: VrrpInstanceConfig, now = 0): VrrpInstanceState {
  return step(initialState(c), { type: 'startup' }, now).state;
}

/** A master: started, then its Master_Down_Timer fired. */
function master(c: VrrpInstanceConfig = cfg()): { state: VrrpInstanceState; at: number } {
  const s = started(c);
  if (s.state === 'master') return { state: s, at: 0 };
  const at = s.timers.master_down as number;
  const r = step(s, { type: 'master_down_timer' }, at);
  assert.equal(r.state.state, 'master');
  return { state: r.state, at };
}

/** Every transition logs {from, to, why} and notifies. */
function assertTransitionLogged(fx: VrrpEffect[], from: string, to: string): void {
  const line = of(fx, 'log').find((l) => l.fields.from === from && l.fields.to === to);
  assert.ok(line, `no transition log ${from} -> ${to}`);
  assert.equal(typeof line.fields.why, 'string');
  assert.ok(of(fx, 'notify').some((n) => n.state === (to === 'initialize' ? 'stop' : to)), `no notify ${to}`);
}

// ---------------------------------------------------------------------------------------
// RFC 5798 6.4.1 Initialize
// ---------------------------------------------------------------------------------------

test('6.4.1 Initialize, Startup, Priority = 255: send ADVERTISEMENT, gratuitous ARP, Adver_Timer = Advertisement_Interval, -> Master', () => {
  const r = step(initialState(cfg({ priority: 255 })), { type: 'startup' }, 5000);
  assert.equal(r.state.state, 'master');
  assert.deepEqual(kinds(r.effects), ['add_vips', 'send_advert', 'send_garp', 'arm_timer', 'notify']);
  assert.equal(of(r.effects, 'send_advert')[0]?.priority, 255);
  assert.deepEqual(of(r.effects, 'arm_timer'), [{ type: 'arm_timer', timer: 'advert', atMs: 6000 }]);
  assert.deepEqual(of(r.effects, 'add_vips')[0], { type: 'add_vips', addresses: ['198.18.0.100/24'], accept: true }); // the owner accepts
  assertTransitionLogged(r.effects, 'initialize', 'master');
});

test('6.4.1 Initialize, Startup, Priority != 255: Master_Adver_Interval = Advertisement_Interval, Master_Down_Timer = Master_Down_Interval, -> Backup', () => {
  const r = step(initialState(cfg({ priority: 100 })), { type: 'startup' }, 5000);
  assert.equal(r.state.state, 'backup');
  assert.equal(r.state.masterAdverIntervalMs, 1000);
  assert.deepEqual(of(r.effects, 'arm_timer'), [{ type: 'arm_timer', timer: 'master_down', atMs: 5000 + masterDownInterval(100, 1000) }]);
  assert.equal(of(r.effects, 'send_advert').length, 0);
  assert.equal(of(r.effects, 'add_vips').length, 0); // a backup MUST NOT answer for the addresses
  assertTransitionLogged(r.effects, 'initialize', 'backup');
});

// ---------------------------------------------------------------------------------------
// RFC 5798 6.4.2 Backup
// ---------------------------------------------------------------------------------------

test('6.4.2 Backup, Shutdown: cancel the Master_Down_Timer, -> Initialize', () => {
  const r = step(started(cfg()), { type: 'shutdown' }, 100);
  assert.equal(r.state.state, 'initialize');
  assert.deepEqual(kinds(r.effects), ['cancel_timer', 'notify']);
  assert.deepEqual(r.state.timers, {});
  assert.equal(of(r.effects, 'send_advert').length, 0);
  assertTransitionLogged(r.effects, 'backup', 'initialize');
});

test('6.4.2 Backup, Master_Down_Timer fires: send ADVERTISEMENT, gratuitous ARP, Adver_Timer, -> Master', () => {
  const s = started(cfg());
  const at = s.timers.master_down as number;
  const r = step(s, { type: 'master_down_timer' }, at);
  assert.equal(r.state.state, 'master');
  assert.deepEqual(kinds(r.effects), ['add_vips', 'send_advert', 'send_garp', 'arm_timer', 'notify']);
  assert.equal(of(r.effects, 'send_advert')[0]?.priority, 100);
  assert.deepEqual(of(r.effects, 'send_garp')[0]?.addresses, ['198.18.0.100/24']);
  assert.equal(r.state.timers.advert, at + 1000);
  assert.equal(r.state.timers.master_down, undefined);
  assertTransitionLogged(r.effects, 'backup', 'master');
});

test('6.4.2 Backup, IPv6: Master_Down_Timer fires: the same, unsolicited NA is the send_garp effect', () => {
  const c = cfg({ family: 6, addresses: ['fe80::5:1', '2001:db8::1/64'], primaryAddress: 'fe80::2' });
  const { state } = master(c);
  assert.equal(state.state, 'master');
  const s = started(c);
  const r = step(s, { type: 'master_down_timer' }, s.timers.master_down as number);
  assert.deepEqual(of(r.effects, 'send_advert')[0]?.advert.addresses, ['fe80::5:1', '2001:db8::1']);
  assert.deepEqual(of(r.effects, 'send_garp')[0]?.addresses, ['fe80::5:1', '2001:db8::1/64']);
});

test('6.4.2 Backup, ADVERTISEMENT with Priority 0: Master_Down_Timer = Skew_Time', () => {
  const s = started(cfg({ priority: 150 }));
  const r = step(s, rx(adv(0)), 2000);
  assert.equal(r.state.state, 'backup');
  assert.deepEqual(of(r.effects, 'arm_timer'), [{ type: 'arm_timer', timer: 'master_down', atMs: 2000 + skewTime(150, 1000) }]);
  assert.ok(counted(r.effects).includes('priority_zero_received'));
  // and when it fires we are master, Skew_Time after the release.
  const m = step(r.state, { type: 'master_down_timer' }, 2000 + skewTime(150, 1000));
  assert.equal(m.state.state, 'master');
});

test('6.4.2 Backup, Preempt_Mode False: any advertisement resets the Master_Down_Timer', () => {
  const s = started(cfg({ priority: 200, preempt: false }));
  const r = step(s, rx(adv(50)), 1500);
  assert.equal(r.state.state, 'backup');
  assert.deepEqual(of(r.effects, 'arm_timer'), [{ type: 'arm_timer', timer: 'master_down', atMs: 1500 + masterDownInterval(200, 1000) }]);
  assert.deepEqual(r.state.master, { address: HIGHER_ADDR, priority: 50, seenAtMs: 1500 });
});

test('6.4.2 Backup, Priority >= local: set Master_Adver_Interval from the advert, recompute Master_Down_Interval, reset the timer', () => {
  const s = started(cfg({ priority: 100 }));
  for (const p of [100, 101, 255]) {
    const r = step(s, rx(adv(p, { maxAdvertIntervalMs: 250 })), 700);
    assert.equal(r.state.masterAdverIntervalMs, 250);
    assert.deepEqual(of(r.effects, 'arm_timer'), [{ type: 'arm_timer', timer: 'master_down', atMs: 700 + masterDownInterval(100, 250) }]);
    assert.equal(r.state.state, 'backup');
  }
});

test('6.4.2 Backup, Preempt_Mode True and Priority < local: discard the ADVERTISEMENT', () => {
  const s = started(cfg({ priority: 200 }));
  const r = step(s, rx(adv(100, { maxAdvertIntervalMs: 250 })), 700);
  assert.deepEqual(kinds(r.effects), []); // no timer reset: the Master_Down_Timer keeps running
  assert.equal(r.state.timers.master_down, s.timers.master_down);
  assert.equal(r.state.masterAdverIntervalMs, 1000); // not learned from a discarded advert
  assert.ok(counted(r.effects).includes('advert_from_lower_priority'));
});

// ---------------------------------------------------------------------------------------
// RFC 5798 6.4.3 Master
// ---------------------------------------------------------------------------------------

test('6.4.3 Master, Shutdown: cancel the Adver_Timer, send ADVERTISEMENT with Priority 0, -> Initialize', () => {
  const { state } = master();
  const r = step(state, { type: 'shutdown' }, 9000);
  assert.equal(r.state.state, 'initialize');
  assert.deepEqual(kinds(r.effects), ['cancel_timer', 'send_advert', 'remove_vips', 'notify']);
  assert.equal(of(r.effects, 'send_advert')[0]?.priority, 0);
  assert.equal(of(r.effects, 'send_advert')[0]?.advert.priority, 0);
  assert.deepEqual(of(r.effects, 'notify'), [{ type: 'notify', state: 'stop' }]);
  assert.deepEqual(r.state.timers, {});
  assertTransitionLogged(r.effects, 'master', 'initialize');
});

test('6.4.3 Master, Adver_Timer fires: send ADVERTISEMENT, reset the Adver_Timer to Advertisement_Interval', () => {
  const { state, at } = master();
  const r = step(state, { type: 'advert_timer' }, at + 1000);
  assert.deepEqual(kinds(r.effects), ['send_advert', 'arm_timer']);
  assert.equal(r.state.timers.advert, at + 2000);
  assert.equal(r.state.state, 'master');
});

test('6.4.3 Master, ADVERTISEMENT with Priority 0: send ADVERTISEMENT, reset the Adver_Timer', () => {
  const { state, at } = master();
  const r = step(state, rx(adv(0)), at + 300);
  assert.deepEqual(kinds(r.effects), ['released_heard', 'send_advert', 'arm_timer']);
  assert.equal(r.state.timers.advert, at + 1300);
});

test('6.4.3 Master, Priority > local: cancel Adver_Timer, learn Master_Adver_Interval, recompute Skew_Time and Master_Down_Interval, set Master_Down_Timer, -> Backup', () => {
  const { state, at } = master(cfg({ priority: 100 }));
  const r = step(state, rx(adv(150, { maxAdvertIntervalMs: 300 })), at + 10);
  assert.equal(r.state.state, 'backup');
  assert.equal(r.state.masterAdverIntervalMs, 300);
  assert.deepEqual(kinds(r.effects), ['cancel_timer', 'remove_vips', 'arm_timer', 'notify']);
  assert.equal(r.state.timers.master_down, at + 10 + masterDownInterval(100, 300));
  assert.equal(r.state.timers.advert, undefined);
  assert.equal(of(r.effects, 'send_advert').length, 0); // no priority 0 here: the other one is master
  assert.ok(counted(r.effects).includes('split_brain'));
  assertTransitionLogged(r.effects, 'master', 'backup');
});

test('6.4.3 Master, Priority equal and the sender\'s primary address greater: -> Backup', () => {
  const { state } = master(cfg({ priority: 100 }));
  const r = step(state, rx(adv(100), HIGHER_ADDR), 5000);
  assert.equal(r.state.state, 'backup');
});

test('6.4.3 Master, Priority equal and the sender\'s primary address lower: discard', () => {
  const { state } = master(cfg({ priority: 100 }));
  const r = step(state, rx(adv(100), LOWER_ADDR), 5000);
  assert.equal(r.state.state, 'master');
  assert.equal(r.state.timers.advert, state.timers.advert);
});

test('6.4.3 Master, Priority < local: discard, answer at once and refresh ARP caches; counted as split brain', () => {
  const { state } = master(cfg({ priority: 200 }));
  const r = step(state, rx(adv(100)), 5000);
  assert.equal(r.state.state, 'master');
  assert.deepEqual(kinds(r.effects), ['send_advert', 'send_garp']);
  assert.ok(counted(r.effects).includes('split_brain'));
  assert.ok(counted(r.effects).includes('advert_from_lower_priority'));
  const warn = of(r.effects, 'log').find((l) => l.level === 'warn');
  assert.equal(warn?.fields.peer, HIGHER_ADDR);
  assert.equal(warn?.fields.winner, 'us');
});

test('6.4.3 Accept_Mode: a master accepts traffic for the addresses only with Accept_Mode or as the owner', () => {
  const cases: Array<[Partial<VrrpInstanceConfig>, boolean]> = [
    [{ acceptMode: false }, false],
    [{ acceptMode: true }, true],
    [{ acceptMode: false, priority: 255 }, true],
  ];
  for (const [o, accept] of cases) {
    const c = cfg(o);
    const s = started(c);
    const r = s.state === 'master' ? step(initialState(c), { type: 'startup' }, 0) : step(s, { type: 'master_down_timer' }, s.timers.master_down as number);
    assert.equal(of(r.effects, 'add_vips')[0]?.accept, accept);
    assert.equal(acceptsTraffic(r.state), accept);
    assert.equal(acceptsTraffic(s.state === 'backup' ? s : r.state), s.state === 'backup' ? false : accept);
  }
});

// ---------------------------------------------------------------------------------------
// RFC 5798 7.1 / RFC 3768 7.1: checks that need the configuration
// ---------------------------------------------------------------------------------------

test('7.1 receive checks drop with a reason and change nothing', () => {
  const s = started(cfg());
  const drops: Array<[VrrpEvent, string, VrrpInstanceState?]> = [
    [rx(adv(200, { vrid: 52 })), 'vrid_mismatch'],
    [rx(adv(200, { family: 6, addresses: ['fe80::1'] })), 'family_mismatch'],
    [rx({ version: 2, family: 4, vrid: 51, priority: 200, advertIntervalMs: 1000, addresses: ['198.18.0.100'] }), 'version_mismatch'],
    [rx(adv(200), '198.18.0.2'), 'own_advert'],
    [rx(adv(200, { addresses: ['198.18.0.99'] })), 'address_mismatch'],
    [rx(adv(200, { addresses: ['198.18.0.100', '198.18.0.101'] })), 'address_mismatch'],
    [rx(adv(200)), 'local_owner', started(cfg({ priority: 255 }))],
  ];
  for (const [ev, reason, st] of drops) {
    const from = st ?? s;
    const r = step(from, ev, 10);
    assert.deepEqual(of(r.effects, 'drop'), [{ type: 'drop', reason }], reason);
    assert.equal(r.state, from, reason);
  }
  // An owner's advert with a different list is accepted (RFC 5798 7.1: only non-owners are dropped).
  assert.equal(of(step(s, rx(adv(255, { addresses: ['198.18.0.99'] })), 10).effects, 'drop').length, 0);
  // The MAY check can be switched off.
  assert.equal(of(step(started(cfg({ checkAddresses: false })), rx(adv(200, { addresses: ['198.18.0.99'] })), 10).effects, 'drop').length, 0);
  // Prefix lengths and spelling do not matter.
  const c6 = cfg({ family: 6, addresses: ['2001:DB8::1/64'], primaryAddress: 'fe80::2' });
  assert.equal(of(step(started(c6), rx(adv(200, { family: 6, addresses: ['2001:db8::1'] }), 'fe80::3'), 10).effects, 'drop').length, 0);
});

test('7.1 (RFC 3768): v2 auth type and advertisement interval must match ours', () => {
  const c = cfg({ version: 2, advertIntervalMs: 1000 });
  const s = started(c);
  const v2 = (o: Partial<VrrpV2Advert> = {}): VrrpV2Advert => ({ version: 2, family: 4, vrid: 51, priority: 200, advertIntervalMs: 1000, addresses: ['198.18.0.100'], authType: 0, ...o });
  assert.deepEqual(of(step(s, rx(v2({ advertIntervalMs: 2000 })), 1).effects, 'drop'), [{ type: 'drop', reason: 'interval_mismatch' }]);
  assert.deepEqual(of(step(s, rx(v2({ authType: 1 })), 1).effects, 'drop'), [{ type: 'drop', reason: 'auth_mismatch' }]);
  assert.equal(of(step(s, rx(v2()), 1).effects, 'drop').length, 0);
});

test('7.1 an owner that is master discards other masters\' adverts but counts the split brain', () => {
  const s = started(cfg({ priority: 255 }));
  const r = step(s, rx(adv(255)), 10);
  assert.equal(r.state.state, 'master');
  assert.ok(counted(r.effects).includes('split_brain'));
  assert.ok(of(r.effects, 'log').some((l) => l.level === 'warn'));
});

// ---------------------------------------------------------------------------------------
// RFC 3768 (v2) timers
// ---------------------------------------------------------------------------------------

test('RFC 3768 6.4: v2 uses Skew_Time = (256 - Priority)/256 s and never learns the interval', () => {
  const c = cfg({ version: 2, advertIntervalMs: 3000 });
  const s = started(c);
  assert.equal(s.timers.master_down, 9000 + skewTimeV2(100));
  const v2zero: VrrpV2Advert = { version: 2, family: 4, vrid: 51, priority: 0, advertIntervalMs: 3000, addresses: ['198.18.0.100'], authType: 0 };
  const r = step(s, rx(v2zero), 100);
  assert.equal(r.state.timers.master_down, 100 + skewTimeV2(100));
  const m = master(c);
  assert.equal(of(step(m.state, { type: 'advert_timer' }, m.at + 3000).effects, 'send_advert')[0]?.advert.version, 2);
});

// ---------------------------------------------------------------------------------------
// Timers and unexpected events
// ---------------------------------------------------------------------------------------

test('a timer event that is not armed, or not due yet, is stale and ignored', () => {
  const s = started(cfg());
  const early = step(s, { type: 'master_down_timer' }, (s.timers.master_down as number) - 1);
  assert.equal(early.state, s);
  assert.ok(counted(early.effects).includes('stale_timer'));
  assert.ok(early.effects.some((e) => e.type === 'arm_timer' && e.timer === 'master_down' && e.atMs === s.timers.master_down), 'an early event arms its deadline again');
  const notArmed = step(s, { type: 'advert_timer' }, 99999);
  assert.equal(notArmed.state, s);
  assert.ok(counted(notArmed.effects).includes('stale_timer'));
  // A master-down callback queued before a cancel does nothing once the master has been heard.
  const heard = step(s, rx(adv(200)), 3000).state;
  assert.equal(step(heard, { type: 'master_down_timer' }, s.timers.master_down as number).state, heard);
});

test('unexpected events are a warning and a counter, never a throw', () => {
  const { state } = master();
  const r = step(state, { type: 'startup' }, 1);
  assert.equal(r.state, state);
  assert.ok(counted(r.effects).includes('unexpected_event'));
  assert.ok(of(r.effects, 'log').some((l) => l.level === 'warn'));
  const g = step(state, { type: 'group_state', state: 'backup' }, 1); // not in a group
  assert.equal(g.state, state);
  const junk = step(state, { type: 'no_such_event' } as unknown as VrrpEvent, 1);
  assert.equal(junk.state, state);
  assert.ok(counted(junk.effects).includes('unexpected_event'));
  const stopped = step(initialState(cfg()), { type: 'shutdown' }, 1);
  assert.equal(stopped.state.state, 'initialize');
  const ignored = step(initialState(cfg()), rx(adv(200)), 1);
  assert.ok(counted(ignored.effects).includes('advert_ignored'));
});

// ---------------------------------------------------------------------------------------
// Priority changes (tracking)
// ---------------------------------------------------------------------------------------

test('priority_changed: a master advertises its new priority at once; values are clamped to 1..255', () => {
  const { state } = master(cfg({ priority: 200 }));
  const r = step(state, { type: 'priority_changed', priority: 90 }, 5000);
  assert.equal(r.state.priority, 90);
  assert.deepEqual(of(r.effects, 'send_advert').map((e) => e.priority), [90]);
  assert.equal(step(state, { type: 'priority_changed', priority: -5 }, 1).state.priority, 1);
  assert.equal(step(state, { type: 'priority_changed', priority: 999 }, 1).state.priority, 255);
  assert.equal(step(state, { type: 'priority_changed', priority: Number.NaN }, 1).state.priority, 1);
  assert.deepEqual(step(state, { type: 'priority_changed', priority: 200 }, 1).effects, []);
  // A lowered master loses to a preempting backup: the backup discards its adverts.
  const b = started(cfg({ priority: 150, primaryAddress: '198.18.0.9' }));
  assert.equal(kinds(step(b, rx(adv(90)), 10).effects).length, 0);
});

// ---------------------------------------------------------------------------------------
// Fault
// ---------------------------------------------------------------------------------------

test('fault: a master sends priority 0, releases the addresses and stops; cleared -> backup', () => {
  const { state } = master(cfg({ priority: 200 }));
  const f = step(state, { type: 'fault', source: 'interface:inside' }, 7000);
  assert.equal(f.state.state, 'fault');
  assert.deepEqual(kinds(f.effects), ['cancel_timer', 'send_advert', 'remove_vips', 'notify']);
  assert.equal(of(f.effects, 'send_advert')[0]?.priority, 0);
  assert.deepEqual(f.state.timers, {});
  assertTransitionLogged(f.effects, 'master', 'fault');
  // A second source; clearing the first leaves us in fault.
  const f2 = step(f.state, { type: 'fault', source: 'track:script' }, 7100);
  assert.deepEqual(f2.state.faults, ['interface:inside', 'track:script']);
  const c1 = step(f2.state, { type: 'fault_cleared', source: 'interface:inside' }, 8000);
  assert.equal(c1.state.state, 'fault');
  // Adverts are ignored in fault.
  assert.ok(counted(step(c1.state, rx(adv(10)), 8001).effects).includes('advert_ignored'));
  const c2 = step(c1.state, { type: 'fault_cleared', source: 'track:script' }, 9000);
  assert.equal(c2.state.state, 'backup');
  assert.equal(c2.state.timers.master_down, 9000 + masterDownInterval(200, 1000));
  assertTransitionLogged(c2.effects, 'fault', 'backup');
  // Duplicates and unknown clears change nothing.
  assert.equal(step(f.state, { type: 'fault', source: 'interface:inside' }, 1).state, f.state);
  assert.equal(step(c2.state, { type: 'fault_cleared', source: 'nope' }, 1).state, c2.state);
});

test('fault: a backup stops its timers; the owner returns straight to master; startup while faulted goes to fault', () => {
  const b = step(started(cfg()), { type: 'fault', source: 'eth0' }, 10);
  assert.equal(b.state.state, 'fault');
  assert.deepEqual(kinds(b.effects), ['cancel_timer', 'notify']);
  const owner = step(step(started(cfg({ priority: 255 })), { type: 'fault', source: 'eth0' }, 10).state, { type: 'fault_cleared', source: 'eth0' }, 20);
  assert.equal(owner.state.state, 'master');
  const pre = step(initialState(cfg()), { type: 'fault', source: 'eth0' }, 0);
  assert.equal(pre.state.state, 'initialize');
  const st = step(pre.state, { type: 'startup' }, 1);
  assert.equal(st.state.state, 'fault');
  assertTransitionLogged(st.effects, 'initialize', 'fault');
});

// ---------------------------------------------------------------------------------------
// Maintenance
// ---------------------------------------------------------------------------------------

test('maintenance: a master releases with priority 0 and stays backup, whatever it hears; off rejoins', () => {
  const { state } = master(cfg({ priority: 200 }));
  const on = step(state, { type: 'maintenance_on' }, 5000);
  assert.equal(on.state.state, 'backup');
  assert.equal(of(on.effects, 'send_advert')[0]?.priority, 0);
  assert.deepEqual(of(on.effects, 'remove_vips').length, 1);
  assert.deepEqual(on.state.timers, {}); // no Master_Down_Timer: never takes over
  // Adverts (even lower, even priority 0) arm nothing.
  const low = step(on.state, rx(adv(50)), 5100);
  assert.deepEqual(kinds(low.effects), []);
  assert.equal(low.state.master?.priority, 50);
  assert.deepEqual(kinds(step(low.state, rx(adv(0)), 5200).effects), ['released_heard']);
  const off = step(low.state, { type: 'maintenance_off' }, 6000);
  assert.equal(off.state.timers.master_down, 6000 + masterDownInterval(200, 1000));
  // A backup in maintenance just stops its timers; the owner comes back as master.
  const b = step(started(cfg()), { type: 'maintenance_on' }, 1);
  assert.deepEqual(kinds(b.effects), ['cancel_timer']);
  const o = step(step(started(cfg({ priority: 255 })), { type: 'maintenance_on' }, 1).state, { type: 'maintenance_off' }, 2);
  assert.equal(o.state.state, 'master');
  // Startup during maintenance: backup, no timer, even for the owner.
  const s = step(step(initialState(cfg({ priority: 255 })), { type: 'maintenance_on' }, 0).state, { type: 'startup' }, 1);
  assert.equal(s.state.state, 'backup');
  assert.deepEqual(s.state.timers, {});
});

// ---------------------------------------------------------------------------------------
// Preempt delay
// ---------------------------------------------------------------------------------------

test('preempt delay: a lower master starts the delay once; when it ends we take over', () => {
  const s = started(cfg({ priority: 200, preemptDelayMs: 5000 }));
  const a = step(s, rx(adv(100)), 1000);
  assert.equal(a.state.timers.preempt_delay, 6000);
  assert.equal(a.state.timers.master_down, 1000 + masterDownInterval(200, 1000)); // accepted meanwhile
  assert.ok(counted(a.effects).includes('preempt_delay_started'));
  const b = step(a.state, rx(adv(100)), 2000);
  assert.equal(b.state.timers.preempt_delay, 6000); // not restarted
  const fire = step(b.state, { type: 'preempt_delay_timer' }, 6000);
  assert.equal(fire.state.state, 'master');
  assertTransitionLogged(fire.effects, 'backup', 'master');
});

test('preempt delay: cancelled by a master at or above us, or by our priority dropping', () => {
  const s = step(started(cfg({ priority: 200, preemptDelayMs: 5000 })), rx(adv(100)), 1000).state;
  const higher = step(s, rx(adv(220)), 2000);
  assert.equal(higher.state.timers.preempt_delay, undefined);
  assert.ok(of(higher.effects, 'cancel_timer').some((e) => e.timer === 'preempt_delay'));
  const dropped = step(s, { type: 'priority_changed', priority: 90 }, 2000);
  assert.equal(dropped.state.timers.preempt_delay, undefined);
  // Priority 0 from the master: no delay left, we take over after Skew_Time.
  const zero = step(s, rx(adv(0)), 2000);
  assert.equal(zero.state.timers.preempt_delay, undefined);
  assert.equal(zero.state.timers.master_down, 2000 + skewTime(200, 1000));
});

test('preemption held (incomplete connection table): a higher-priority backup follows a live lower master, with or without a delay; takes over when it is gone; preempts once released', () => {
  for (const preemptDelayMs of [0, 5000]) {
    let s = step(started(cfg({ priority: 200, preemptDelayMs })), { type: 'preempt_hold', on: true }, 0).state;
    // A lower master's adverts are accepted: no preemption, no delay started.
    for (let t = 1000; t <= 20_000; t += 1000) {
      const r = step(s, rx(adv(100)), t);
      s = r.state;
      assert.equal(s.state, 'backup');
      assert.equal(s.timers.preempt_delay, undefined, 'no preempt delay while held');
      if (s.timers.master_down !== undefined) assert.equal(s.timers.master_down, t + masterDownInterval(200, 1000), 'the advert resets Master_Down_Timer');
    }
    // A delay already running when the hold comes ends at once.
    if (preemptDelayMs > 0) {
      const free = step(started(cfg({ priority: 200, preemptDelayMs })), rx(adv(100)), 1000).state;
      assert.equal(free.timers.preempt_delay, 6000);
      const held = step(free, { type: 'preempt_hold', on: true }, 2000);
      assert.equal(held.state.timers.preempt_delay, undefined);
      assert.equal(step(held.state, { type: 'preempt_delay_timer' }, 6000).state.state, 'backup');
    }
    // The master goes silent: a held node still takes over (an incomplete table beats no firewall).
    const down = step(s, { type: 'master_down_timer' }, s.timers.master_down as number);
    assert.equal(down.state.state, 'master');
    // Released: the next advert of a lower master is preempted (after the delay, if any).
    const released = step(s, { type: 'preempt_hold', on: false }, 20_500).state;
    const r = step(released, rx(adv(100)), 21_000);
    if (preemptDelayMs === 0) {
      // Preempt: the lower advert is discarded, Master_Down_Timer runs on and fires.
      assert.equal(r.state.timers.master_down, s.timers.master_down, 'discarded: the timer was not reset');
      assert.equal(step(r.state, { type: 'master_down_timer' }, r.state.timers.master_down as number).state.state, 'master');
    } else {
      assert.equal(r.state.timers.preempt_delay, 21_000 + preemptDelayMs);
      assert.equal(step(r.state, { type: 'preempt_delay_timer' }, 21_000 + preemptDelayMs).state.state, 'master');
    }
  }
});

test('nopreempt: a higher-priority backup keeps following a live lower master', () => {
  let s = started(cfg({ priority: 250, preempt: false }));
  for (let t = 1000; t < 60000; t += 1000) {
    s = step(s, rx(adv(100)), t).state;
    assert.equal(s.state, 'backup');
    assert.ok((s.timers.master_down as number) > t);
  }
  // ...but the owner always preempts (RFC 5798 6.1): it discards everything and takes over.
  assert.equal(started(cfg({ priority: 255, preempt: false })).state, 'master');
});

// ---------------------------------------------------------------------------------------
// Random event streams
// ---------------------------------------------------------------------------------------

const arbEvent: fc.Arbitrary<VrrpEvent> = fc.oneof(
  fc.constant({ type: 'startup' } as VrrpEvent),
  fc.constant({ type: 'shutdown' } as VrrpEvent),
  fc.constant({ type: 'master_down_timer' } as VrrpEvent),
  fc.constant({ type: 'advert_timer' } as VrrpEvent),
  fc.constant({ type: 'preempt_delay_timer' } as VrrpEvent),
  fc.constant({ type: 'maintenance_on' } as VrrpEvent),
  fc.constant({ type: 'maintenance_off' } as VrrpEvent),
  fc.constantFrom('master', 'backup').map((state) => ({ type: 'group_state', state }) as VrrpEvent),
  fc.integer({ min: -10, max: 300 }).map((priority) => ({ type: 'priority_changed', priority }) as VrrpEvent),
  fc.constantFrom('eth0', 'eth1', 'sync_group').map((source) => ({ type: 'fault', source }) as VrrpEvent),
  fc.constantFrom('eth0', 'eth1', 'sync_group').map((source) => ({ type: 'fault_cleared', source }) as VrrpEvent),
  fc
    .record({ p: fc.integer({ min: 0, max: 255 }), from: fc.constantFrom(LOWER_ADDR, HIGHER_ADDR, '198.18.0.2'), cs: fc.integer({ min: 1, max: 300 }) })
    .map(({ p, from, cs }) => rx(adv(p, { maxAdvertIntervalMs: cs * 10 }), from)),
);

test('any event stream: never throws, and the state invariants hold (property)', () => {
  fc.assert(
    fc.property(
      fc.record({
        priority: fc.integer({ min: 1, max: 255 }),
        preempt: fc.boolean(),
        preemptDelayMs: fc.constantFrom(0, 0, 3000),
        syncGroup: fc.constantFrom(undefined, 'edge'),
      }),
      fc.array(fc.tuple(arbEvent, fc.integer({ min: 0, max: 5000 }), fc.boolean()), { maxLength: 60 }),
      (o, events) => {
        let s = initialState(cfg(o));
        let now = 0;
        for (const [ev, dt, onTime] of events) {
          // Half the timer events arrive exactly when due, as a real timer would deliver them.
          const timer = ev.type === 'master_down_timer' ? 'master_down' : ev.type === 'advert_timer' ? 'advert' : ev.type === 'preempt_delay_timer' ? 'preempt_delay' : undefined;
          const due = timer ? s.timers[timer] : undefined;
          now = onTime && due !== undefined ? Math.max(now, due) : now + dt;
          const r = step(s, ev, now);
          for (const e of r.effects) {
            if (e.type === 'count') assert.ok((VRRP_COUNTERS as readonly string[]).includes(e.counter));
            if (e.type === 'arm_timer') assert.ok(e.atMs >= now);
          }
          const notifies = of(r.effects, 'notify');
          if (r.state.state !== s.state) {
            assert.equal(notifies.length, 1);
            assertTransitionLogged(r.effects, s.state, r.state.state);
          }
          s = r.state;
          // Invariants: the advert timer runs exactly in master; the master-down timer only in
          // backup, always unless in maintenance; nothing runs in initialize or fault.
          assert.equal(s.timers.advert !== undefined, s.state === 'master');
          if (s.state !== 'backup') assert.equal(s.timers.master_down, undefined);
          if (s.state === 'backup') assert.equal(s.timers.master_down !== undefined, !s.maintenance);
          if (s.state !== 'backup') assert.equal(s.timers.preempt_delay, undefined);
          if (s.state !== 'initialize') assert.equal(s.state === 'fault', s.faults.length > 0);
          if (s.state === 'master') assert.equal(s.maintenance, false);
          assert.ok(s.priority >= 1 && s.priority <= 255);
        }
      },
    ),
    { numRuns: 1500 },
  );
});
