/**
 * BGP on a reload: what may change is handed to the announcer (the addresses, communities,
 * the drain, a node's include file), with the services' availability as it is now; turning
 * BGP on or off, or another device or BIRD socket, is refused naming the key and line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load.js';
import { nodeView } from '../config/node.js';
import { BgpPart, bgpSettings } from './bgp-part.js';
import type { BgpService, BgpSettings } from './bgp.js';
import type { NodeConfig } from '../ports/subsystem.js';

const BASE = `cluster: { name: t }
nodes:
  fw1: { priority: 200, addresses: { outside: 198.18.0.2/24 }, bgp: { include: /run/t/fw1.conf } }
interfaces: { outside: eth0 }
services:
  web: { listen: "198.18.30.100:80/tcp", backends: { web1: { address: "198.18.1.11:80" } } }
  web6: { listen: "[2001:2:0:30::100]:80/tcp", backends: { web1: { address: "[2001:2:1::11]:80" } } }
`;

async function cfg(extra: string): Promise<NodeConfig> {
  const r = await parseConfig(BASE + extra, 'c.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return { loaded: r.value, view: nodeView(r.value.config, 'fw1') };
}

test('the node\'s settings: its own include over the cluster\'s, every service\'s address', async () => {
  const c = await cfg('bgp: { communities: ["65010:100"], addresses: [198.18.30.1] }\n');
  assert.deepEqual(bgpSettings(c.loaded.config, c.view), {
    node: 'fw1',
    socket: '/run/bird/bird.ctl',
    include: '/run/t/fw1.conf',
    device: 'fwlb-bgp',
    communities: [[65010, 100]],
    drainMs: 3000,
    extra: ['198.18.30.1'],
    services: [
      { name: 'web', address: '198.18.30.100' },
      { name: 'web6', address: '2001:2:0:30::100' },
    ],
  });
  assert.equal(bgpSettings((await cfg('')).loaded.config, c.view), undefined);
});

test('a reload: new communities reach the announcer with the availability now; on/off, device or socket refused', async () => {
  const seen: string[] = [];
  const bgp = {
    reconfigure: (s: BgpSettings) => seen.push(`reconfigure ${s.communities.map((x) => x.join(':')).join(',')}`),
    setServiceAvailable: (s: string, up: boolean) => seen.push(`${s} ${up}`),
  } as unknown as BgpService;
  const part = new BgpPart({ bgp, availabilityNow: () => new Map([['web', true], ['web6', false]]) });
  const start = await part.prepare(await cfg('bgp: { communities: ["65010:100"] }\n'));
  await part.commit(start.plan);
  const next = await part.prepare(await cfg('bgp: { communities: ["65010:200"], drain: 1s }\n'));
  await part.commit(next.plan);
  assert.deepEqual(seen, ['reconfigure 65010:100', 'web true', 'web6 false', 'reconfigure 65010:200', 'web true', 'web6 false']);
  await assert.rejects(part.prepare(await cfg('')), /bgp was removed: it cannot change on a reload .*Restart the node/);
  await assert.rejects(part.prepare(await cfg('bgp: { device: bgp9 }\n')), /bgp\.device or the BIRD socket changed/);
  const off = new BgpPart({ bgp: undefined, availabilityNow: () => new Map() });
  await off.commit((await off.prepare(await cfg(''))).plan);
  await assert.rejects(off.prepare(await cfg('bgp: {}\n')), /bgp was added/);
});
