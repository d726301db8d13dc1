import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SharingService } from './sharing.js';
import { SharingHost } from './sharing-host.js';
import { parseConfig } from '../config/load.js';
import { nodeView } from '../config/node.js';
import { readFile } from 'node:fs/promises';
import { realClock } from '../lib/clock.js';

const repo = new URL('../../../', import.meta.url);

async function setup() {
  const r = await parseConfig(await readFile(new URL('examples/active-active.yaml', repo), 'utf8'), 'active-active.yaml');
  assert.ok(r.ok);
  const c = r.value.config;
  const log: string[] = [];
  const kernel = new Set<number>();
  const service = new SharingService({
    log: pino({ level: 'silent' }),
    self: 'fw1',
    buckets: c.sharing!.buckets,
    seed: 1,
    now: () => realClock.now(),
    apply: async (ch) => {
      log.push('replace' in ch ? `owned=${ch.replace.length}` : `owned+${ch.add.length}-${ch.remove.length}`);
      if ('replace' in ch) {
        kernel.clear();
        ch.replace.forEach((m) => kernel.add(m));
      } else {
        ch.remove.forEach((m) => kernel.delete(m));
        ch.add.forEach((m) => kernel.add(m));
      }
    },
  });
  const host = new SharingHost({
    log: pino({ level: 'silent' }),
    clock: realClock,
    service,
    addAddress: async (i, a) => void log.push(`add ${a} ${i}`),
    delAddress: async (i, a) => void log.push(`del ${a} ${i}`),
    joinMac: (i, m) => void log.push(`join ${m} ${i}`),
    leaveMac: (i, m) => void log.push(`leave ${m} ${i}`),
    apply: async (s) => void log.push(s.includes('table arp fwlb_share') ? 'arp' : 'other'),
    replaceTable: async (spec) => void log.push(`${spec.family} ${spec.name}: ${spec.rules.length} rules`),
    openGate: (s) => {
      assert.match(s, /flags owner/);
      log.push('gate');
      return { close: () => void log.push('gate closed') };
    },
    ownedScript: (marks) => `owned ${marks.length}`,
    handoverMs: 1,
    onConfig: (next) => void log.push(`config ${next.cluster.name}`),
  });
  return { c, view: nodeView(c, 'fw1'), host, service, kernel, log };
}

test('start: the owned set emptied, ARP and neighbour discovery, the gate, the MACs, then the addresses; buckets only once ready', async () => {
  const { c, view, host, service, kernel, log } = await setup();
  await host.start(c, view);
  // Two shared IPv6 addresses: two rules each (advertisements for it, solicitations from it).
  assert.deepEqual(log, ['owned=0', 'arp', 'ip6 fwlb_share6: 4 rules', 'gate', 'join 01:00:5e:7f:fb:00 eth1', 'join 01:00:5e:7f:fb:01 eth0', 'add 198.18.0.100/24 eth0', 'add 2001:2::100/64 eth0', 'add 198.18.1.1/24 eth1', 'add fe80::1/64 eth1']);
  assert.equal(host.carries(), false);
  service.setReady(true);
  await service.settled();
  assert.equal(kernel.size, 4096, 'alone, the node owns every bucket');
  assert.equal(host.carries(), true);
  assert.equal(host.ownedScript(), 'owned 4096', 'a full apply carries the owned set');
  const st = host.status(new Map([['shared_carried', 7]]), 1_700_000_000_000);
  assert.equal(st.gate, true);
  assert.equal(st.packets.carried, 7);
  assert.equal(st.packets.at, 1_700_000_000_000);
  assert.deepEqual(st.addresses, ['198.18.0.100/24', '2001:2::100/64', '198.18.1.1/24', 'fe80::1/64']);
});

test('stop: the buckets go first, then the addresses, the MACs and the gate; a second stop does nothing', async () => {
  const { c, view, host, service, kernel, log } = await setup();
  await host.start(c, view);
  service.setReady(true);
  await service.settled();
  log.length = 0;
  await host.stop();
  assert.equal(kernel.size, 0);
  assert.deepEqual(log, ['owned+0-4096', 'del 198.18.0.100/24 eth0', 'del 2001:2::100/64 eth0', 'del 198.18.1.1/24 eth1', 'del fe80::1/64 eth1', 'leave 01:00:5e:7f:fb:00 eth1', 'leave 01:00:5e:7f:fb:01 eth0', 'gate closed']);
  log.length = 0;
  await host.stop();
  assert.deepEqual(log, []);
  assert.equal(host.status(new Map(), 0).gate, false);
});

test('a ruleset applied (a reload): the config handed on first (the relay is compiled from it), then the owned set written whole again', async () => {
  const { c, host, service, log } = await setup();
  service.setReady(true);
  await service.settled();
  log.length = 0;
  host.afterCommit(c);
  await service.settled();
  assert.deepEqual(log, [`config ${c.cluster.name}`, `owned=${c.sharing!.buckets}`]);
});
