import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { loadConfigFile, parseConfig } from '../config/load.js';
import { nodeView } from '../config/node.js';
import { parsePrefix, prefixContains } from '../lib/ip.js';
import { aggregatePrefixes, compileRuleset } from './ruleset.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const update = process.env.UPDATE_GOLDEN === '1';

/**
 * Golden files keep big element lists (a Maglev table has 65,537 slots) as their count and
 * digest, so the files stay readable while any change to the list still shows.
 */
function summarize(ruleset: string): string {
  return ruleset.replace(/elements = \{ (.{2000,}?) \}$/gm, (_, body: string) => {
    const n = body.split(', ').length;
    return `elements = { ...${n} elements, sha256 ${createHash('sha256').update(body).digest('hex').slice(0, 16)}... }`;
  });
}

/** Every example compiled for every node, against test/golden/<example>.<node>.nft. */
test('golden rulesets for the shipped examples', async () => {
  const examples = (await readdir(`${repo}examples`)).filter((f) => f.endsWith('.yaml')).sort();
  let compared = 0;
  for (const ex of examples) {
    const r = await loadConfigFile(`${repo}examples/${ex}`);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    for (const node of Object.keys(r.value.config.nodes)) {
      const out = summarize(compileRuleset({ config: r.value.config, node: nodeView(r.value.config, node), blocklist: r.value.blocklist }));
      const golden = `${repo}test/golden/${ex.replace(/\.yaml$/, '')}.${node}.nft`;
      if (update) await writeFile(golden, out);
      assert.equal(out, await readFile(golden, 'utf8'), `${golden} differs (UPDATE_GOLDEN=1 rewrites it after review)`);
      compared++;
    }
  }
  assert.ok(compared >= 4);
});

/** The body of one chain or map block of a compiled ruleset. */
const block = (out: string, head: string) => out.split(`\t${head} {\n`)[1]!.split('\n\t}')[0]!;

const BASE = `cluster: { name: t }
nodes:
  a: { priority: 200, addresses: { out: 198.18.0.2/24, sync: 198.18.2.1/24 } }
  b: { priority: 100, addresses: { out: 198.18.0.3/24, sync: 198.18.2.2/24 } }
  c: { priority: 50, addresses: { out: 198.18.0.4/24, sync: 198.18.2.3/24 } }
interfaces: { out: eth0, in: eth1, sync: eth2 }
vrrp:
  groups:
    g: { instances: { x: { interface: out, vrid: 1, addresses: [198.18.0.100/24] } } }
state_sync: { interface: sync }
`;

async function compile(extra: string, node = 'a', blocklist?: string[]): Promise<string> {
  const r = await parseConfig(BASE + extra, 't.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return compileRuleset({ config: r.value.config, node: nodeView(r.value.config, node), blocklist: blocklist ?? r.value.blocklist });
}

test('the well-formed skeleton: drop policies, established first, invalid and SYN-less new TCP dropped, no reject', async () => {
  const out = await compile('');
  for (const chain of ['input', 'forward']) {
    const body = block(out, `chain ${chain}`);
    const lines = body.trim().split('\n').map((l) => l.trim());
    assert.equal(lines[0], `type filter hook ${chain} priority filter; policy drop;`);
    const est = lines.indexOf('ct state established,related accept');
    assert.ok(est >= 1 && est <= 2, `${chain}: established must come first`);
    assert.match(lines[est + 1]!, /^ct state invalid counter drop/);
    assert.match(lines[est + 2]!, /^tcp flags & \(fin \| syn \| rst \| ack\) != syn ct state new counter drop/);
  }
  assert.doesNotMatch(out, /\breject\b/);
  assert.match(out, /^table inet fwlb\ndelete table inet fwlb\ntable inet fwlb \{/m);
  assert.doesNotMatch(out, /flush ruleset/);
});

test('VRRP and sync are accepted only from the peers, on their interfaces', async () => {
  const out = await compile('', 'b');
  assert.match(out, /iifname "eth0" ip saddr \{ 198\.18\.0\.2, 198\.18\.0\.4 \} ip protocol vrrp accept/);
  assert.match(out, /iifname "eth2" ip saddr \{ 198\.18\.2\.1, 198\.18\.2\.3 \} udp dport \{ 3780, 3781 \} accept/);
  assert.doesNotMatch(out, /198\.18\.0\.3 .*vrrp/, 'a node does not accept VRRP from itself');
});

test('rules: prefixes and ports become sets; roles become interface matches; self goes to input', async () => {
  const out = await compile(`firewall:
  rules:
    - allow: { proto: tcp, port: [22, 80, 8000-8080], from: [198.18.0.0/24, 198.18.5.0/24], to: self }
    - allow: { from: in, to: out }
    - drop: { proto: udp, from: [in, 198.18.9.0/24, "2001:db8::/32"], to: out }
`);
  const input = block(out, 'chain input');
  assert.match(input, /ip saddr \{ 198\.18\.0\.0\/24, 198\.18\.5\.0\/24 \} tcp dport \{ 22, 80, 8000-8080 \} counter accept comment "rules\[0\]"/);
  const fwd = block(out, 'chain forward');
  assert.match(fwd, /iifname "eth1" oifname "eth0" counter accept comment "rules\[1\]"/);
  assert.match(fwd, /iifname "eth1" oifname "eth0" meta l4proto udp counter drop comment "rules\[2\]"/);
  assert.match(fwd, /ip saddr 198\.18\.9\.0\/24 oifname "eth0" meta l4proto udp counter drop/);
  assert.match(fwd, /ip6 saddr 2001:db8::\/32 oifname "eth0" meta l4proto udp counter drop/);
});

test('services dispatch through one verdict map to per-service backend maps', async () => {
  const out = await compile(`services:
  web:
    listen: 198.18.0.100:80/tcp
    scheduler: wrr
    backends: { w1: { address: 198.18.1.11 }, w2: { address: 198.18.1.12:8080, weight: 3 }, w3: { address: 198.18.1.13, state: disabled } }
  dns:
    listen: 198.18.0.100:53/udp
    backends: { d1: { address: 198.18.1.21 } }
`);
  assert.match(out, /ip daddr \. meta l4proto \. th dport vmap \{ 198\.18\.0\.100 \. udp \. 53 : goto svc_dns, 198\.18\.0\.100 \. tcp \. 80 : goto svc_web \}/);
  const web = block(out, 'map svc_web');
  const slots = [...web.matchAll(/\d+ : ([\d.]+ \. \d+)/g)].map((m) => m[1]);
  // Tables sized to the work: 3 backends x 32 slots -> 128 (a power of two); 1 backend -> 64.
  assert.equal(slots.length, 128);
  assert.equal(slots.filter((s) => s === '198.18.1.12 . 8080').length, 96, 'weight 3 of 4; the disabled backend gets none');
  assert.equal(slots.filter((s) => s === '198.18.1.11 . 80').length, 32);
  assert.match(out, /meta l4proto tcp dnat ip to numgen inc mod 128 map @svc_web comment "service web, wrr"/);
  assert.match(out, /meta l4proto udp dnat ip to numgen inc mod 64 map @svc_dns/);
  assert.match(block(out, 'chain forward'), /ct state new ct status dnat counter name ip daddr \. th dport map @backend_counters_v4/);
  assert.match(out, /counter be_198_18_1_12_8080 \{/);
});

test('blocked prefixes are dropped before conntrack, deduplicated and aggregated', async () => {
  const out = await compile('', 'a', ['198.19.0.0/16', '198.19.4.0/24', '198.20.0.1', '2001:db8::/32', '2001:db8:1::/48']);
  assert.match(out, /elements = \{ 198\.19\.0\.0\/16, 198\.20\.0\.1 \}/);
  assert.match(out, /elements = \{ 2001:db8::\/32 \}/);
  assert.match(out, /type filter hook prerouting priority raw; policy accept;\n\t\tip saddr @blocklist_v4 counter drop/);
});

test('output is deterministic', async () => {
  const a = await compile('firewall: { block: [198.19.3.0/24, 198.19.1.0/24] }');
  const b = await compile('firewall: { block: [198.19.1.0/24, 198.19.3.0/24] }');
  assert.equal(a, b);
});

test('aggregatePrefixes: no element contains another, and every input is covered (property)', () => {
  const v4 = fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 8, max: 32 })).map(([n, l]) => `${[24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')}/${l}`);
  fc.assert(
    fc.property(fc.array(v4, { maxLength: 60 }), (list) => {
      const out = aggregatePrefixes(list).v4.map((p) => parsePrefix(p)!);
      for (let i = 0; i < out.length; i++) for (let j = 0; j < out.length; j++) if (i !== j) assert.ok(!prefixContains(out[i]!, out[j]!));
      for (const p of list) assert.ok(out.some((o) => prefixContains(o, parsePrefix(p)!)), `${p} not covered`);
    }),
  );
});

test('IPv6 VRRP: adverts from any link-local source with hop limit 255 are let in on the instance\'s interface (no config names the peers\' link-local addresses)', async () => {
  const r = await parseConfig(BASE, 't.yaml');
  assert.ok(r.ok);
  const before = compileRuleset({ config: r.value.config, node: nodeView(r.value.config, 'a'), blocklist: r.value.blocklist });
  assert.doesNotMatch(before, /VRRP \(IPv6\)/, 'none without an IPv6 instance');
  // The config refuses IPv6 VRRP until the daemon runs it; the compiler is ready for it.
  const g = r.value.config.vrrp!.groups.g!;
  const config = { ...r.value.config, vrrp: { ...r.value.config.vrrp!, groups: { g: { ...g, instances: { ...g.instances, x6: { ...g.instances.x!, vrid: 2, addresses: ['2001:2::100/64'] } } } } } };
  const input = block(compileRuleset({ config, node: nodeView(config, 'a'), blocklist: r.value.blocklist }), 'chain input');
  assert.match(input, /iifname "eth0" ip6 saddr fe80::\/10 ip6 hoplimit 255 ip6 nexthdr vrrp accept comment "VRRP \(IPv6\) from link-local sources"/);
  assert.match(input, /iifname "eth0" ip saddr \{ 198\.18\.0\.3, 198\.18\.0\.4 \} ip protocol vrrp accept/);
});

test('sharing in dual stack: new flows hashed per family into the same buckets; IPv6 masquerade to the first global shared IPv6 address, in the node\'s ports', async () => {
  const text = (await readFile(`${repo}examples/active-active.yaml`, 'utf8')).replace(
    '    - masquerade: { from: 198.18.1.0/24, out: outside }\n',
    '    - masquerade: { from: 198.18.1.0/24, out: outside }\n    - masquerade: { from: 2001:2:1::/64, out: outside }\n',
  );
  const r = await parseConfig(text, 'aa.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const out = compileRuleset({ config: r.value.config, node: nodeView(r.value.config, 'fw2'), blocklist: [] });
  for (const [k, fam] of [['ip', 'ipv4'], ['ip6', 'ipv6']]) {
    assert.match(out, new RegExp(`iifname "eth0" meta nfproto ${fam} meta l4proto \\{ tcp, udp \\} ct mark set jhash ${k} saddr \\. th sport mod 4096 seed 0x[0-9a-f]{8} offset 1`));
    assert.match(out, new RegExp(`iifname != "eth0" meta nfproto ${fam} meta l4proto \\{ tcp, udp \\} ct mark set jhash ${k} daddr \\. th dport mod 4096`));
  }
  assert.doesNotMatch(out, /carry IPv4 only/);
  const nat = block(out, 'chain nat_postrouting');
  assert.match(nat, /oifname "eth0" ip saddr 198\.18\.1\.0\/24 meta l4proto \{ tcp, udp \} snat ip to 198\.18\.0\.100:\d+-\d+/);
  assert.match(nat, /oifname "eth0" ip6 saddr 2001:2:1::\/64 meta l4proto \{ tcp, udp \} snat ip6 to \[2001:2::100\]:\d+-\d+/);
  assert.match(nat, /oifname "eth0" ip6 saddr 2001:2:1::\/64 snat ip6 to 2001:2::100$/m);
});
