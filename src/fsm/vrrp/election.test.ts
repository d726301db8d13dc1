/**
 * Elections between several simulated routers on a fake clock. A tiny in-test "wire" carries
 * each `send_advert` effect to the other routers: it encodes the advert with the real codec
 * and decodes it on arrival (TTL 255, multicast destination), so the machines and the codec
 * are exercised together. This is a test harness that simulates a LAN, not product code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VRRP_MCAST_GROUP_V4, VRRP_MCAST_GROUP_V6 } from '../../codec/vrrp/constants.js';
import { decodeAdvert, encodeAdvert } from '../../codec/vrrp/packet.js';
import { initialGroupState, stepGroup, type SyncGroupState } from './group.js';
import { initialState, step, type VrrpEffect, type VrrpEvent, type VrrpInstanceConfig, type VrrpInstanceState, type VrrpTimer } from './instance.js';
import { masterDownInterval, skewTime, skewTimeV2 } from './timers.js';

// ---------------------------------------------------------------------------------------
// The wire
// ---------------------------------------------------------------------------------------

interface Router {
  name: string;
  /** Either one instance (member '') or a sync group of members. */
  inst?: VrrpInstanceState;
  group?: SyncGroupState;
  alive: boolean;
  /** VRIDs whose link is down at this router (nothing in, nothing out). */
  linkDown: Set<number>;
  timers: Map<string, { member: string; timer: VrrpTimer; at: number }>;
  /** Every notify, with its time: the state history. */
  notes: Array<{ t: number; member: string; state: string }>;
  counts: Map<string, number>;
  vips: Set<string>;
}

const TIMER_EVENT: Record<VrrpTimer, VrrpEvent> = {
  master_down: { type: 'master_down_timer' },
  advert: { type: 'advert_timer' },
  preempt_delay: { type: 'preempt_delay_timer' },
};

class Wire {
  now = 0;
  partitioned = false;
  readonly routers = new Map<string, Router>();
  private frames: Array<{ from: Router; vrid: number; family: 4 | 6; src: string; bytes: Buffer }> = [];
  private seq = 0;
  private order = new Map<string, number>();

  add(name: string, node: { inst?: VrrpInstanceConfig; group?: Record<string, VrrpInstanceConfig> }): Router {
    const r: Router = {
      name,
      inst: node.inst ? initialState(node.inst) : undefined,
      group: node.group ? initialGroupState(name, node.group) : undefined,
      alive: true,
      linkDown: new Set(),
      timers: new Map(),
      notes: [],
      counts: new Map(),
      vips: new Set(),
    };
    this.routers.set(name, r);
    return r;
  }

  get(name: string): Router {
    const r = this.routers.get(name);
    assert.ok(r, name);
    return r;
  }

  /** Feeds an event to a router (to one member, or to all members of a group). */
  send(name: string, event: VrrpEvent, member?: string): void {
    const r = this.get(name);
    if (!r.alive) return;
    if (r.inst) {
      const res = step(r.inst, event, this.now);
      r.inst = res.state;
      for (const e of res.effects) this.apply(r, '', e);
    } else if (r.group) {
      const res = stepGroup(r.group, member === undefined ? { type: 'all', event } : { type: 'member', member, event }, this.now);
      r.group = res.state;
      for (const e of res.effects) {
        if (e.type === 'member') this.apply(r, e.member, e.effect);
        else if (e.type === 'notify') r.notes.push({ t: this.now, member: '*', state: e.state });
      }
    }
    this.flush();
  }

  /** A power loss: the router stops, silently. */
  crash(name: string): void {
    const r = this.get(name);
    r.alive = false;
    r.timers.clear();
  }

  /** Runs timers and deliveries up to time `until`. */
  runUntil(until: number): void {
    for (;;) {
      this.flush();
      let next: { r: Router; key: string; member: string; timer: VrrpTimer; at: number } | undefined;
      for (const r of this.routers.values()) {
        if (!r.alive) continue;
        for (const [key, t] of r.timers) {
          const better = !next || t.at < next.at || (t.at === next.at && (this.order.get(key + r.name) ?? 0) < (this.order.get(next.key + next.r.name) ?? 0));
          if (better) next = { r, key, ...t };
        }
      }
      if (!next || next.at > until) break;
      this.now = next.at;
      next.r.timers.delete(next.key);
      this.send(next.r.name, TIMER_EVENT[next.timer], next.r.group ? next.member : undefined);
    }
    this.now = until;
  }

  private apply(r: Router, member: string, e: VrrpEffect): void {
    const key = `${member}|`;
    switch (e.type) {
      case 'arm_timer':
        r.timers.set(key + e.timer, { member, timer: e.timer, at: e.atMs });
        this.order.set(key + e.timer + r.name, this.seq++);
        break;
      case 'cancel_timer':
        r.timers.delete(key + e.timer);
        break;
      case 'send_advert': {
        const inst = this.instance(r, member);
        if (r.linkDown.has(inst.config.vrid)) break;
        const dst = inst.config.family === 4 ? VRRP_MCAST_GROUP_V4 : VRRP_MCAST_GROUP_V6;
        const bytes = encodeAdvert(e.advert, { src: inst.config.primaryAddress, dst });
        this.frames.push({ from: r, vrid: inst.config.vrid, family: inst.config.family, src: inst.config.primaryAddress, bytes });
        break;
      }
      case 'add_vips':
        for (const a of e.addresses) r.vips.add(`${member}:${a}`);
        break;
      case 'remove_vips':
        for (const a of e.addresses) r.vips.delete(`${member}:${a}`);
        break;
      case 'notify':
        r.notes.push({ t: this.now, member, state: e.state });
        break;
      case 'count':
        r.counts.set(e.counter, (r.counts.get(e.counter) ?? 0) + 1);
        break;
      case 'drop':
        r.counts.set(`drop:${e.reason}`, (r.counts.get(`drop:${e.reason}`) ?? 0) + 1);
        break;
      case 'send_garp':
      case 'log':
        break;
    }
  }

  /** Delivers queued frames, in order, to every other live router on the same VRID. */
  private flush(): void {
    while (this.frames.length > 0) {
      const f = this.frames.shift()!;
      if (this.partitioned) continue;
      for (const to of this.routers.values()) {
        if (to === f.from || !to.alive || to.linkDown.has(f.vrid)) continue;
        const member = this.memberFor(to, f.vrid);
        if (member === undefined) continue;
        const dst = f.family === 4 ? VRRP_MCAST_GROUP_V4 : VRRP_MCAST_GROUP_V6;
        const d = decodeAdvert(f.bytes, { src: f.src, dst, ttl: 255, family: f.family });
        assert.ok(d.ok, 'the wire carries only valid adverts');
        this.send(to.name, { type: 'advert_received', advert: d.value, from: f.src }, to.group ? member : undefined);
      }
    }
  }

  private memberFor(r: Router, vrid: number): string | undefined {
    if (r.inst) return r.inst.config.vrid === vrid ? '' : undefined;
    return Object.entries(r.group?.members ?? {}).find(([, m]) => m.config.vrid === vrid)?.[0];
  }

  private instance(r: Router, member: string): VrrpInstanceState {
    return (r.inst ?? r.group?.members[member]) as VrrpInstanceState;
  }

  /** The state of a router (or of one member of its group). */
  state(name: string, member?: string): string {
    const r = this.get(name);
    return (member !== undefined ? r.group?.members[member]?.state : r.inst?.state ?? r.group?.state) as string;
  }

  /** When a router (member) last entered `state`. */
  lastEntered(name: string, state: string, member = ''): number | undefined {
    return [...this.get(name).notes].reverse().find((n) => n.member === member && n.state === state)?.t;
  }

  masters(): string[] {
    return [...this.routers.values()].filter((r) => r.alive && (r.inst?.state ?? r.group?.state) === 'master').map((r) => r.name);
  }
}

const IV = 1000;
function node(name: string, priority: number, addr: string, o: Partial<VrrpInstanceConfig> = {}): VrrpInstanceConfig {
  return {
    name,
    version: 3,
    family: 4,
    vrid: 51,
    priority,
    advertIntervalMs: IV,
    addresses: ['198.18.0.100/24'],
    primaryAddress: addr,
    preempt: true,
    preemptDelayMs: 0,
    acceptMode: false,
    ...o,
  };
}

/** A wire with routers started at time 0 (or at `startAt`). */
function lan(...configs: VrrpInstanceConfig[]): Wire {
  const w = new Wire();
  for (const c of configs) w.add(c.name, { inst: c });
  for (const c of configs) w.send(c.name, { type: 'startup' });
  return w;
}

// ---------------------------------------------------------------------------------------
// Elections
// ---------------------------------------------------------------------------------------

test('two routers: the higher priority becomes master after its Master_Down_Interval, the other stays backup', () => {
  const w = lan(node('a', 200, '198.18.0.2'), node('b', 100, '198.18.0.3'));
  w.runUntil(60_000);
  assert.deepEqual(w.masters(), ['a']);
  assert.equal(w.lastEntered('a', 'master'), masterDownInterval(200, IV)); // 3218
  assert.equal(w.lastEntered('b', 'master'), undefined);
  assert.deepEqual([...w.get('a').vips], [':198.18.0.100/24']);
  assert.equal(w.get('b').vips.size, 0);
  assert.equal(w.get('a').counts.get('split_brain'), undefined);
});

test('three routers: highest wins; when it crashes the next takes over Master_Down_Interval after its last advert', () => {
  const w = lan(node('r250', 250, '198.18.0.4'), node('r200', 200, '198.18.0.3'), node('r100', 100, '198.18.0.2'));
  w.runUntil(10_000);
  assert.deepEqual(w.masters(), ['r250']);
  const first = masterDownInterval(250, IV); // 3023
  assert.equal(w.lastEntered('r250', 'master'), first);
  w.crash('r250');
  w.runUntil(60_000);
  const lastAdvert = first + 6 * IV; // adverts at 3023, 4023, ..., 9023
  assert.equal(w.lastEntered('r200', 'master'), lastAdvert + masterDownInterval(200, IV));
  assert.deepEqual(w.masters(), ['r200']);
  assert.equal(w.lastEntered('r100', 'master'), undefined);
});

test('the address owner (255) is master at once on startup', () => {
  const w = lan(node('owner', 255, '198.18.0.1'), node('b', 254, '198.18.0.3'));
  assert.equal(w.state('owner'), 'master');
  assert.equal(w.lastEntered('owner', 'master'), 0);
  w.runUntil(60_000);
  assert.deepEqual(w.masters(), ['owner']);
});

test('preempt: a higher-priority router that starts later takes over after its Master_Down_Interval', () => {
  const w = lan(node('a', 100, '198.18.0.2'));
  w.runUntil(10_000);
  w.add('b', { inst: node('b', 200, '198.18.0.3') });
  w.send('b', { type: 'startup' });
  w.runUntil(60_000);
  const at = 10_000 + masterDownInterval(200, IV);
  assert.equal(w.lastEntered('b', 'master'), at);
  assert.equal(w.lastEntered('a', 'backup'), at); // a hears b's first advert at once
  assert.deepEqual(w.masters(), ['b']);
});

test('nopreempt: a higher-priority router that starts later stays backup while the master lives', () => {
  const w = lan(node('a', 100, '198.18.0.2'));
  w.runUntil(10_000);
  w.add('b', { inst: node('b', 200, '198.18.0.3', { preempt: false }) });
  w.send('b', { type: 'startup' });
  w.runUntil(120_000);
  assert.deepEqual(w.masters(), ['a']);
  // ...and takes over when the master dies.
  w.crash('a');
  w.runUntil(130_000);
  assert.deepEqual(w.masters(), ['b']);
});

test('preempt delay: the higher router waits the delay after first hearing the lower master, then takes over', () => {
  const w = lan(node('a', 100, '198.18.0.2'));
  w.runUntil(10_000);
  w.add('b', { inst: node('b', 200, '198.18.0.3', { preemptDelayMs: 5000 }) });
  w.send('b', { type: 'startup' });
  const firstHeard = masterDownInterval(100, IV) + 7 * IV; // a's adverts at 3609 + k s: 10609
  w.runUntil(firstHeard + 4999);
  assert.deepEqual(w.masters(), ['a']);
  w.runUntil(60_000);
  assert.equal(w.lastEntered('b', 'master'), firstHeard + 5000);
  assert.deepEqual(w.masters(), ['b']);
  assert.equal(w.get('b').counts.get('preempt_delay_started'), 1);
});

test('priority-0 handover: on graceful stop the backup takes over after Skew_Time, not Master_Down_Interval', () => {
  const w = lan(node('a', 200, '198.18.0.2'), node('b', 100, '198.18.0.3'));
  w.runUntil(10_000);
  w.send('a', { type: 'shutdown' });
  w.runUntil(60_000);
  assert.equal(w.lastEntered('b', 'master'), 10_000 + skewTime(100, IV)); // 609 ms later
  assert.equal(w.lastEntered('a', 'stop'), 10_000);
  assert.equal(w.get('a').vips.size, 0);
  assert.deepEqual(w.masters(), ['b']);
});

test('priority-0 handover among three: the best backup wins on its shorter Skew_Time', () => {
  const w = lan(node('r250', 250, '198.18.0.4'), node('r200', 200, '198.18.0.3'), node('r100', 100, '198.18.0.2'));
  w.runUntil(10_000);
  w.send('r250', { type: 'shutdown' });
  w.runUntil(60_000);
  assert.equal(w.lastEntered('r200', 'master'), 10_000 + skewTime(200, IV)); // 218 ms
  assert.equal(w.lastEntered('r100', 'master'), undefined);
});

test('split brain: partitioned, both become master; healed, the RFC rules pick one and both count it', () => {
  const w = lan(node('a', 200, '198.18.0.2'), node('b', 100, '198.18.0.3'));
  w.runUntil(10_000);
  w.partitioned = true;
  w.runUntil(20_000);
  assert.deepEqual(w.masters().sort(), ['a', 'b']);
  w.partitioned = false;
  w.runUntil(22_000);
  assert.deepEqual(w.masters(), ['a']);
  assert.ok((w.get('a').counts.get('split_brain') ?? 0) >= 1 || (w.get('b').counts.get('split_brain') ?? 0) >= 1);
  assert.ok((w.get('b').counts.get('split_brain') ?? 0) >= 1); // b heard a, a master
});

test('split brain with equal priorities: the higher primary address wins (RFC 5798 6.4.3)', () => {
  const w = lan(node('low', 100, '198.18.0.2'), node('high', 100, '198.18.0.3'));
  w.partitioned = true;
  w.runUntil(10_000);
  assert.equal(w.masters().length, 2);
  w.partitioned = false;
  w.runUntil(13_000);
  assert.deepEqual(w.masters(), ['high']);
  assert.equal(w.state('low'), 'backup');
});

test('link down on the master: the backup takes over after Master_Down_Interval; link back: the master preempts', () => {
  const w = lan(node('a', 200, '198.18.0.2'), node('b', 100, '198.18.0.3'));
  w.runUntil(10_000);
  const a = w.get('a');
  a.linkDown.add(51); // its priority-0 advert cannot leave
  w.send('a', { type: 'fault', source: 'interface:outside' });
  assert.equal(w.state('a'), 'fault');
  assert.equal(a.vips.size, 0);
  w.runUntil(30_000);
  const lastAdvert = masterDownInterval(200, IV) + 6 * IV; // 9218
  assert.equal(w.lastEntered('b', 'master'), lastAdvert + masterDownInterval(100, IV));
  a.linkDown.delete(51);
  w.send('a', { type: 'fault_cleared', source: 'interface:outside' });
  assert.equal(w.state('a'), 'backup');
  w.runUntil(60_000);
  assert.equal(w.lastEntered('a', 'master'), 30_000 + masterDownInterval(200, IV)); // b's lower adverts are discarded
  assert.deepEqual(w.masters(), ['a']);
});

test('a tracked failure (link still up): the master says priority 0 and the backup takes over after Skew_Time', () => {
  const w = lan(node('a', 200, '198.18.0.2'), node('b', 100, '198.18.0.3'));
  w.runUntil(10_000);
  w.send('a', { type: 'fault', source: 'track:service:web' });
  w.runUntil(20_000);
  assert.equal(w.lastEntered('b', 'master'), 10_000 + skewTime(100, IV));
});

test('maintenance: the master hands over at once and stays backup; off, it preempts again', () => {
  const w = lan(node('a', 200, '198.18.0.2'), node('b', 100, '198.18.0.3'));
  w.runUntil(10_000);
  w.send('a', { type: 'maintenance_on' });
  w.runUntil(60_000);
  assert.equal(w.lastEntered('b', 'master'), 10_000 + skewTime(100, IV));
  assert.equal(w.state('a'), 'backup');
  assert.deepEqual(w.masters(), ['b']);
  w.send('a', { type: 'maintenance_off' });
  w.runUntil(70_000);
  assert.equal(w.lastEntered('a', 'master'), 60_000 + masterDownInterval(200, IV));
  assert.deepEqual(w.masters(), ['a']);
});

test('tracking lowers the master below the backup: the backup preempts after Master_Down_Interval', () => {
  const w = lan(node('a', 200, '198.18.0.2'), node('b', 150, '198.18.0.3'));
  w.runUntil(10_000);
  w.send('a', { type: 'priority_changed', priority: 100 });
  w.runUntil(20_000);
  // b discards a's adverts from the first at priority 100 (sent at once at 10 s).
  assert.equal(w.lastEntered('b', 'master'), masterDownInterval(200, IV) + 6 * IV + masterDownInterval(150, IV));
  assert.deepEqual(w.masters(), ['b']);
});

test('VRRPv2: the same election with RFC 3768 timers (Skew_Time in whole seconds / 256)', () => {
  const v2 = { version: 2 as const };
  const w = lan(node('a', 200, '198.18.0.2', v2), node('b', 100, '198.18.0.3', v2));
  w.runUntil(10_000);
  assert.equal(w.lastEntered('a', 'master'), 3 * IV + skewTimeV2(200));
  w.send('a', { type: 'shutdown' });
  w.runUntil(20_000);
  assert.equal(w.lastEntered('b', 'master'), 10_000 + skewTimeV2(100));
});

test('VRRPv3 over IPv6: link-local sources, the same election', () => {
  const v6 = (p: number, addr: string) => node(`r${p}`, p, addr, { family: 6, addresses: ['fe80::5:33', '2001:db8::100/64'] });
  const w = lan(v6(200, 'fe80::2'), v6(100, 'fe80::3'));
  w.runUntil(10_000);
  assert.deepEqual(w.masters(), ['r200']);
  w.send('r200', { type: 'shutdown' });
  w.runUntil(20_000);
  assert.equal(w.lastEntered('r100', 'master'), 10_000 + skewTime(100, IV));
});

test('a backup learns the master\'s advertisement interval (v3 Master_Adver_Interval)', () => {
  const w = lan(node('a', 200, '198.18.0.2', { advertIntervalMs: 200 }), node('b', 100, '198.18.0.3'));
  w.runUntil(10_000);
  assert.equal(w.get('b').inst?.masterAdverIntervalMs, 200);
  w.crash('a');
  w.runUntil(20_000);
  const aMaster = masterDownInterval(200, 200); // a's own timer before it heard anyone
  const lastAdvert = aMaster + Math.floor((10_000 - aMaster) / 200) * 200;
  assert.equal(w.lastEntered('b', 'master'), lastAdvert + masterDownInterval(100, 200));
});

// ---------------------------------------------------------------------------------------
// Sync groups on the wire: two firewalls, each with an outside (51) and an inside (52) instance
// ---------------------------------------------------------------------------------------

function firewall(priority: number, last: number): Record<string, VrrpInstanceConfig> {
  return {
    ext: node('ext', priority, `198.18.0.${last}`, { vrid: 51, addresses: ['198.18.0.100/24'] }),
    int: node('int', priority, `198.18.1.${last}`, { vrid: 52, addresses: ['198.18.1.1/24'] }),
  };
}

function cluster(): Wire {
  const w = new Wire();
  w.add('fw1', { group: firewall(200, 2) });
  w.add('fw2', { group: firewall(100, 3) });
  w.send('fw1', { type: 'startup' });
  w.send('fw2', { type: 'startup' });
  return w;
}

test('sync group: both instances of the better firewall become master together', () => {
  const w = cluster();
  w.runUntil(10_000);
  const at = masterDownInterval(200, IV);
  assert.equal(w.lastEntered('fw1', 'master', 'ext'), at);
  assert.equal(w.lastEntered('fw1', 'master', 'int'), at);
  assert.equal(w.lastEntered('fw1', 'master', '*'), at); // the group's own notify
  assert.equal(w.state('fw2'), 'backup');
  assert.deepEqual(w.masters(), ['fw1']);
});

test('sync group: the inside link of the master fails; the whole group moves to the other firewall', () => {
  const w = cluster();
  w.runUntil(10_000);
  const fw1 = w.get('fw1');
  fw1.linkDown.add(52);
  w.send('fw1', { type: 'fault', source: 'interface:inside' }, 'int');
  assert.equal(w.state('fw1'), 'fault');
  assert.equal(w.state('fw1', 'ext'), 'fault'); // dragged along: releases the outside VIP too
  assert.equal(fw1.vips.size, 0);
  w.runUntil(30_000);
  // fw2's ext hears priority 0; its group takes that as the peer releasing the whole group,
  // so int does not wait out Master_Down_Interval on the dead link (keepalived's sync group
  // does wait: the trap noted in the peer reference). Both move after Skew_Time, together.
  const at = 10_000 + skewTime(100, IV);
  assert.equal(w.lastEntered('fw2', 'master', 'ext'), at);
  assert.equal(w.lastEntered('fw2', 'master', 'int'), at);
  // Link back: fw1 rejoins as backup, then preempts with both instances together.
  fw1.linkDown.delete(52);
  w.send('fw1', { type: 'fault_cleared', source: 'interface:inside' }, 'int');
  assert.equal(w.state('fw1', 'ext'), 'backup');
  assert.equal(w.state('fw1', 'int'), 'backup');
  w.runUntil(60_000);
  assert.equal(w.lastEntered('fw1', 'master', 'ext'), 30_000 + masterDownInterval(200, IV));
  assert.equal(w.lastEntered('fw1', 'master', 'int'), 30_000 + masterDownInterval(200, IV));
  assert.deepEqual(w.masters(), ['fw1']);
  assert.equal(w.state('fw2', 'ext'), 'backup');
  assert.equal(w.state('fw2', 'int'), 'backup');
});

test('sync group: graceful stop hands both instances over after Skew_Time', () => {
  const w = cluster();
  w.runUntil(10_000);
  w.send('fw1', { type: 'shutdown' });
  w.runUntil(20_000);
  assert.equal(w.lastEntered('fw2', 'master', 'ext'), 10_000 + skewTime(100, IV));
  assert.equal(w.lastEntered('fw2', 'master', 'int'), 10_000 + skewTime(100, IV));
  assert.equal(w.lastEntered('fw1', 'stop', '*'), 10_000);
});

test('sync group: one instance outranked elsewhere holds the group back instead of thrashing', () => {
  const w = cluster();
  w.runUntil(10_000);
  // fw2's inside now outranks fw1's inside, but fw2's outside still hears a better master.
  w.send('fw2', { type: 'priority_changed', priority: 250 }, 'int');
  w.runUntil(120_000);
  assert.deepEqual(w.masters(), ['fw1']);
  assert.equal(w.state('fw2', 'int'), 'backup');
  assert.deepEqual(w.get('fw1').notes.filter((n) => n.t > masterDownInterval(200, IV)), []); // fw1 never moved
  assert.ok((w.get('fw2').counts.get('held_by_sync_group') ?? 0) > 10);
});

test('sync group: maintenance on the master firewall moves the whole group', () => {
  const w = cluster();
  w.runUntil(10_000);
  w.send('fw1', { type: 'maintenance_on' });
  w.runUntil(20_000);
  assert.equal(w.lastEntered('fw2', 'master', 'ext'), 10_000 + skewTime(100, IV));
  assert.equal(w.lastEntered('fw2', 'master', 'int'), 10_000 + skewTime(100, IV));
  assert.equal(w.state('fw1'), 'backup');
  w.send('fw1', { type: 'maintenance_off' });
  w.runUntil(40_000);
  assert.deepEqual(w.masters(), ['fw1']);
});
