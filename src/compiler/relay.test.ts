/**
 * The relay table (BGP with sharing): the other nodes' buckets mapped to their relay
 * addresses, none of ours; the hash the same as sharing's (the owner files the relayed packet
 * under the bucket the relay computed); nothing without `bgp.relay`; IPv6 services refused
 * with a relay (not relayed yet).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import { nodeView } from '../config/node.js';
import { bucketOwners, defaultSeed } from '../fsm/sharing.js';
import { compileRelay } from './relay.js';
import { compileRuleset } from './ruleset.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

async function example() {
  const r = await parseConfig(await readFile(`${repo}examples/bgp.yaml`, 'utf8'), 'bgp.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value.config;
}

test('the owners of the other nodes\' buckets, each by its relay address; ours left to go on', async () => {
  const c = await example();
  const owners = bucketOwners(4096, ['fw1', 'fw2', 'fw3', 'fw4'], defaultSeed('bgp'));
  const text = compileRelay(c, nodeView(c, 'fw2'), owners);
  const elements = /elements = \{ ([^}]*) \}/.exec(text.split('map owners4')[1]!)![1]!.split(', ');
  const mine = owners.filter((o) => o === 'fw2').length;
  assert.equal(elements.length, 4096 - mine);
  const relayOf = { fw1: '198.18.2.1', fw3: '198.18.2.3', fw4: '198.18.2.4' } as Record<string, string>;
  for (const e of elements) {
    const [mark, addr] = e.split(' : ');
    const owner = owners[Number(mark) - 1]!;
    assert.notEqual(owner, 'fw2');
    assert.equal(addr, relayOf[owner]);
  }
  assert.match(text, /^table netdev fwlb_relay\ndelete table netdev fwlb_relay\n/);
  assert.match(text, /type filter hook ingress device "eth0" priority -300;/);
  assert.match(text, /set announced4 \{\n\t\ttype ipv4_addr\n\t\telements = \{ 198\.18\.30\.100 \}/);
  const seed = `0x${defaultSeed('bgp').toString(16).padStart(8, '0')}`;
  const hash = `jhash ip saddr . th sport mod 4096 seed ${seed} offset 1`;
  assert.ok(text.includes(`fwd ip to ${hash} map @owners4 device "eth2"`), text.split('chain outer')[1]);
  // Counted: every packet to the service on the outer link, and after the relay rule the ones that went on here.
  const chain = text.split('chain outer')[1]!;
  assert.ok(chain.indexOf('counter name relay_seen fwd') > 0 && chain.indexOf('counter name relay_local') > chain.indexOf('fwd ip to'), chain);
  // The owner's ruleset computes the same bucket for what arrives from the router or the relay.
  const rules = compileRuleset({ config: c, node: nodeView(c, 'fw1'), blocklist: [] });
  assert.ok(rules.includes(`ct state new iifname { "eth0", "eth2" } ip daddr 198.18.30.100 meta l4proto { tcp, udp } ct mark set ${hash}`));
});

test('alone, every bucket is ours: an empty map; no relay without bgp.relay or sharing', async () => {
  const c = await example();
  const alone = compileRelay(c, nodeView(c, 'fw1'), bucketOwners(4096, ['fw1'], 1));
  assert.doesNotMatch(alone.split('map owners4')[1]!.split('}')[0]!, /elements/);
  const noRelay = { ...c, bgp: { ...c.bgp!, relay: undefined } };
  assert.equal(compileRelay(noRelay, nodeView(c, 'fw1'), []), '');
});

test('the config: a relay needs sharing and every node\'s IPv4 address on its role; IPv6 services refused with it', async () => {
  const text = await readFile(`${repo}examples/bgp.yaml`, 'utf8');
  const bad = async (t: string) => {
    const r = await parseConfig(t, 'bgp.yaml');
    assert.equal(r.ok, false);
    return r.ok ? '' : r.error.message;
  };
  assert.match(await bad(text.replace('  relay: sync', '  relay: sink')), /bgp\.relay: unknown interface "sink"/);
  assert.match(await bad(text.replace('addresses: { outside: 198.18.3.3/24, inside: 198.18.1.3/24, sync: 198.18.2.2/24 }', 'addresses: { outside: 198.18.3.3/24, inside: 198.18.1.3/24, sync: "2001:2:2::2/64" }')), /nodes\.fw2\.addresses\.sync: needs an IPv4 address on interface "sync"/);
  assert.match(await bad(text.replace('services:\n', 'services:\n  web6:\n    listen: "[2001:2:30::100]:80/tcp"\n    backends: { web1: { address: "[2001:2:1::11]:80" } }\n')), /bgp\.relay: relays IPv4 only so far; .*services\.web6/);
});
