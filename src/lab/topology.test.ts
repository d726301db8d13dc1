import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FwlbError } from '../lib/errors.js';
import { buildPlan } from './plan.js';
import { LAB_ROUTER, LAB_VIPS, bootAddresses, describeLab, findHost, findIface, namespacesOf, sameLab } from './topology.js';

const addrOf = (spec: ReturnType<typeof describeLab>, node: string, iface: string) => findIface(findHost(spec, node), iface);

test('default lab: the sandwich under prefix fwlb, state in /run/fwlb-lab/fwlb', () => {
  const s = describeLab();
  assert.equal(s.topology, 'sandwich');
  assert.equal(s.prefix, 'fwlb');
  assert.equal(s.stateDir, '/run/fwlb-lab/fwlb');
  assert.deepEqual(namespacesOf(s), ['fwlb-sw', 'fwlb-fw1', 'fwlb-fw2', 'fwlb-client1', 'fwlb-web1', 'fwlb-web2']);
  // Two firewalls: the sync link is a cable between them, not a switch.
  assert.deepEqual(s.bridges, ['out', 'in']);
  assert.equal(s.vipsOn, null);
});

test('the sync link: a direct cable for two firewalls, a switch for more', () => {
  const two = buildPlan(describeLab({ topology: 'sandwich', prefix: 'p' }));
  assert.ok(two.switchBatch.lines.includes('link add fw1-sync type veth peer name eth2 netns p-fw2'));
  assert.ok(two.switchBatch.lines.includes('link set fw1-sync netns p-fw1'));
  assert.ok(!two.switchBatch.lines.some((l) => l.includes('fw2-sync')));
  const fw1 = two.hostBatches.find((b) => b.ns === 'p-fw1')!.lines;
  assert.ok(fw1.indexOf('link set fw1-sync name eth2') >= 0 && fw1.indexOf('link set fw1-sync name eth2') < fw1.indexOf('address add 198.18.2.1/24 dev eth2'));
  assert.ok(!two.hostBatches.find((b) => b.ns === 'p-fw2')!.lines.some((l) => l.includes('fw2-sync')));
  const three = describeLab({ topology: 'trio' });
  assert.deepEqual(three.bridges, ['out', 'in', 'sync']);
  assert.ok(three.hosts.every((h) => h.ifaces.every((i) => !i.direct)));
});

test('named topologies and overrides', () => {
  assert.deepEqual(describeLab({ topology: 'single' }).counts, { fws: 1, clients: 1, backends: 2 });
  assert.deepEqual(describeLab({ topology: 'trio' }).counts, { fws: 3, clients: 2, backends: 3 });
  assert.deepEqual(describeLab({ topology: 'trio', nodes: 4, clients: 5, backends: 6 }).counts, { fws: 4, clients: 5, backends: 6 });
  assert.equal(describeLab({ topology: 'trio', backends: 6 }).hosts.filter((h) => h.role === 'web').length, 6);
});

test('address plan: fwN .1+N outside and inside, .N on sync; clients .9+I; webs .10+I', () => {
  const s = describeLab({ topology: 'trio' });
  assert.deepEqual(findHost(s, 'fw3').ifaces.map((i) => [i.name, i.bridge, i.port, `${i.address}/${i.prefixLen}`]), [
    ['eth0', 'out', 'fw3-out', '198.18.0.4/24'],
    ['eth1', 'in', 'fw3-in', '198.18.1.4/24'],
    ['eth2', 'sync', 'fw3-sync', '198.18.2.3/24'],
  ]);
  assert.equal(addrOf(s, 'client2', 'eth0').address, '198.18.0.11');
  assert.equal(findHost(s, 'client2').gateway, LAB_VIPS.outside);
  assert.equal(addrOf(s, 'web3', 'eth0').address, '198.18.1.13');
  assert.equal(findHost(s, 'web3').gateway, LAB_VIPS.inside);
  assert.equal(findHost(s, 'fw1').sysctls['net.ipv4.ip_forward'], '1');
  assert.deepEqual(findHost(s, 'web1').sysctls, {});
});

test('every address is unique and inside 198.18.0.0/15, even at the limits', () => {
  const s = describeLab({ nodes: 8, clients: 90, backends: 200, vipsOn: 'fw8' });
  const all = s.hosts.flatMap((h) => h.ifaces.flatMap((i) => [i.address, ...i.vips]));
  assert.equal(new Set(all).size, all.length);
  for (const a of all) assert.match(a, /^198\.1[89]\.\d+\.\d+$/);
});

test('interface names fit IFNAMSIZ (15 characters) at the limits', () => {
  for (const h of describeLab({ nodes: 8, clients: 90, backends: 200 }).hosts) {
    for (const i of h.ifaces) assert.ok(i.port.length <= 15 && i.name.length <= 15, i.port);
  }
});

test('vipsOn pins both VIPs on that node only', () => {
  const s = describeLab({ vipsOn: 'fw2' });
  assert.deepEqual(bootAddresses(addrOf(s, 'fw2', 'eth0')), ['198.18.0.3/24', '198.18.0.100/24', '2001:2::3/64']);
  assert.deepEqual(bootAddresses(addrOf(s, 'fw2', 'eth1')), ['198.18.1.3/24', '198.18.1.1/24', '2001:2:1::3/64']);
  assert.deepEqual(addrOf(s, 'fw2', 'eth2').vips, []);
  assert.deepEqual(addrOf(s, 'fw1', 'eth0').vips, []);
});

test('bad options are FwlbErrors with a code', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof FwlbError);
      return e.code;
    }
    return 'no error';
  };
  assert.equal(code(() => describeLab({ prefix: 'a-b' })), 'ERR_LAB_PREFIX');
  assert.equal(code(() => describeLab({ prefix: 'Upper' })), 'ERR_LAB_PREFIX');
  assert.equal(code(() => describeLab({ prefix: 'waytoolongprefix' })), 'ERR_LAB_PREFIX');
  assert.equal(code(() => describeLab({ topology: 'mesh' as never })), 'ERR_LAB_TOPOLOGY');
  assert.equal(code(() => describeLab({ nodes: 0 })), 'ERR_LAB_COUNT');
  assert.equal(code(() => describeLab({ nodes: 9 })), 'ERR_LAB_COUNT');
  assert.equal(code(() => describeLab({ clients: 1.5 })), 'ERR_LAB_COUNT');
  assert.equal(code(() => describeLab({ vipsOn: 'fw3' })), 'ERR_LAB_VIPS_ON');
  assert.equal(code(() => describeLab({ vipsOn: 'web1' })), 'ERR_LAB_VIPS_ON');
  assert.equal(code(() => findHost(describeLab(), 'fw9')), 'ERR_LAB_NODE');
  assert.equal(code(() => findIface(findHost(describeLab(), 'web1'), 'eth1')), 'ERR_LAB_IFACE');
});

test('hosts are found by node or namespace name; sameLab compares layouts', () => {
  const s = describeLab({ prefix: 'x' });
  assert.equal(findHost(s, 'x-web2').name, 'web2');
  assert.ok(sameLab(s, describeLab({ prefix: 'x' })));
  assert.ok(!sameLab(s, describeLab({ prefix: 'x', vipsOn: 'fw1' })));
  assert.ok(!sameLab(s, describeLab({ prefix: 'x', backends: 3 })));
});

test('build plan: bridges without snooping, veth peers created in the hosts, routes after links', () => {
  const p = buildPlan(describeLab({ prefix: 'p', topology: 'single', vipsOn: 'fw1' }));
  assert.deepEqual(p.namespaces, ['p-sw', 'p-fw1', 'p-client1', 'p-web1', 'p-web2']);
  assert.equal(p.switchBatch.ns, 'p-sw');
  assert.ok(p.switchBatch.lines.includes('link add out type bridge mcast_snooping 0'));
  assert.ok(p.switchBatch.lines.includes('link add fw1-sync type veth peer name eth2 netns p-fw1'));
  assert.ok(p.switchBatch.lines.includes('link set web2 master in'));
  const fw1 = p.hostBatches.find((b) => b.ns === 'p-fw1');
  assert.deepEqual(fw1?.lines, [
    'link set lo up',
    'address add 198.18.0.2/24 dev eth0', 'address add 198.18.0.100/24 dev eth0', 'address add 2001:2::2/64 dev eth0', 'link set eth0 up',
    'address add 198.18.1.2/24 dev eth1', 'address add 198.18.1.1/24 dev eth1', 'address add 2001:2:1::2/64 dev eth1', 'link set eth1 up',
    'address add 198.18.2.1/24 dev eth2', 'address add 2001:2:2::1/64 dev eth2', 'link set eth2 up',
  ]);
  // Dual stack: IPv6 through the link-local virtual address of the inside IPv6 instance.
  assert.deepEqual(p.hostBatches.find((b) => b.ns === 'p-web2')?.lines.slice(-3), [
    'link set eth0 up', 'route replace default via 198.18.1.1 dev eth0', 'route replace default via fe80::1 dev eth0',
  ]);
  for (const s of p.sysctls) assert.equal(s.values['net.ipv6.conf.default.accept_dad'], '0');
  assert.equal(p.sysctls.find((s) => s.ns === 'p-fw1')?.values['net.ipv4.ip_forward'], '1');
  assert.equal(p.sysctls.find((s) => s.ns === 'p-sw')?.values['net.ipv4.ip_forward'], undefined);
});

test('the bgp topology: a router between the clients and the firewalls\' edge segment, ECMP over the ports', () => {
  const s = describeLab({ topology: 'bgp', prefix: 'b' });
  assert.deepEqual(s.counts, { fws: 4, clients: 2, backends: 3 });
  assert.deepEqual(s.bridges, ['out', 'in', 'sync', 'edge']);
  const rt = findHost(s, 'rt');
  assert.equal(rt.role, 'router');
  assert.deepEqual(rt.ifaces.map((i) => [i.name, i.bridge, i.address, i.address6]), [
    ['eth0', 'out', LAB_ROUTER.outside, LAB_ROUTER.outside6],
    ['eth1', 'edge', LAB_ROUTER.edge, LAB_ROUTER.edge6],
  ]);
  assert.equal(rt.sysctls['net.ipv4.fib_multipath_hash_policy'], '1');
  assert.equal(rt.sysctls['net.ipv6.fib_multipath_hash_policy'], '1');
  assert.equal(rt.runsServer, false);
  assert.deepEqual(findHost(s, 'fw4').ifaces.map((i) => [i.name, i.bridge, i.address]), [
    ['eth0', 'edge', '198.18.3.5'],
    ['eth1', 'in', '198.18.1.5'],
    ['eth2', 'sync', '198.18.2.4'],
  ]);
  assert.deepEqual([findHost(s, 'fw1').gateway, findHost(s, 'fw1').gateway6], [LAB_ROUTER.edge, LAB_ROUTER.edge6]);
  assert.deepEqual([findHost(s, 'client1').gateway, findHost(s, 'client1').gateway6], [LAB_ROUTER.outside, LAB_ROUTER.outside6]);
  assert.equal(findHost(s, 'web1').gateway, LAB_VIPS.inside);
  const all = s.hosts.flatMap((h) => h.ifaces.flatMap((i) => [i.address, i.address6]));
  assert.equal(new Set(all).size, all.length);
  const plan = buildPlan(s);
  assert.ok(plan.hostBatches.find((b) => b.ns === 'b-fw1')!.lines.includes(`route replace default via ${LAB_ROUTER.edge} dev eth0`));
});
