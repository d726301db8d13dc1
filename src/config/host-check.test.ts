import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from './load.js';
import { nodeView } from './node.js';
import { hostCheck, routedAddresses, type HostState } from './host-check.js';
import { formatIssue } from './issues.js';

const TEXT = `cluster: { name: t }
nodes:
  fw1: { priority: 200, addresses: { outside: 198.18.0.2/24, inside: 198.18.1.2/24, sync: 198.18.2.1/24 } }
interfaces: { outside: eth0, inside: eth1, sync: eth2 }
vrrp:
  groups:
    g:
      instances:
        ext: { interface: outside, vrid: 1, addresses: [198.18.0.100/24] }
        int: { interface: inside, vrid: 2, addresses: [198.18.1.1/24] }
state_sync: { interface: sync }
services:
  web:
    listen: 198.18.0.100:80/tcp
    backends: { web1: { address: 198.18.1.11 }, web2: { address: 198.18.3.12 } }
`;

const HOST: HostState = {
  links: {
    lo: { up: true, addresses: ['127.0.0.1/8'] },
    eth0: { up: true, addresses: ['198.18.0.2/24', '198.18.0.100/24'] },
    eth1: { up: true, addresses: ['198.18.1.2/24'] },
    eth2: { up: true, addresses: ['198.18.2.1/24'] },
  },
  routes: { '198.18.1.11': 'eth1', '198.18.3.12': 'eth1' },
};

async function check(text: string, host: HostState): Promise<string[]> {
  const r = await parseConfig(text, 'c.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return hostCheck(r.value.config, nodeView(r.value.config, 'fw1'), host).map((i) => formatIssue(r.value.locate(i), 'c.yaml'));
}

test('a host that matches the config passes, with VIPs already present (after a daemon restart)', async () => {
  assert.deepEqual(await check(TEXT, HOST), []);
  const r = await parseConfig(TEXT, 'c.yaml');
  assert.ok(r.ok);
  assert.deepEqual(routedAddresses(r.value.config), ['198.18.1.11', '198.18.3.12']);
});

test('a missing interface and a missing node address are named with their keys', async () => {
  const host: HostState = { ...HOST, links: { ...HOST.links, eth1: { up: true, addresses: ['198.18.1.9/24'] } } };
  delete (host.links as Record<string, unknown>).eth2;
  const errs = await check(TEXT, host);
  assert.ok(errs.some((e) => /interfaces\.sync: interface "eth2" does not exist on this host/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /nodes\.fw1\.addresses\.inside: 198\.18\.1\.2\/24 is not configured on eth1 \(it has: 198\.18\.1\.9\/24\)/.test(e)), errs.join('\n'));
});

test('a VIP outside its interface subnet is an error at the VIP', async () => {
  const errs = await check(TEXT.replace('[198.18.1.1/24]', '[198.18.5.1/24]'), HOST);
  assert.equal(errs.length, 1, errs.join('\n'));
  assert.match(errs[0]!, /^c\.yaml:10:\d+: vrrp\.groups\.g\.instances\.int\.addresses\[0\]: 198\.18\.5\.1\/24 is outside the subnet of eth1 \(198\.18\.1\.2\/24\)/);
});

test('a backend with no route, or routed via the sync link or an unmanaged interface, is unreachable', async () => {
  for (const [dev, why] of [[null, 'no route'], ['eth2', 'routed via eth2'], ['docker0', 'routed via docker0']] as const) {
    const errs = await check(TEXT, { ...HOST, routes: { ...HOST.routes, '198.18.3.12': dev } });
    assert.equal(errs.length, 1, errs.join('\n'));
    assert.match(errs[0]!, new RegExp(`services\\.web\\.backends\\.web2\\.address: 198\\.18\\.3\\.12 is not reachable from any inside interface of fw1 \\(${why}\\)`));
  }
});
