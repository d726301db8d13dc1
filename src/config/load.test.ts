import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseConfig, loadConfigFile, MAX_ALIASES, MAX_CONFIG_BYTES } from './load.js';
import { formatIssue } from './issues.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

/** A small valid config; each bad case below changes one thing in it. */
const GOOD = `cluster:
  name: t
nodes:
  fw1:
    priority: 200
    addresses: { outside: 198.18.0.2/24, inside: 198.18.1.2/24, sync: 198.18.2.1/24 }
  fw2:
    priority: 100
    addresses: { outside: 198.18.0.3/24, inside: 198.18.1.3/24, sync: 198.18.2.2/24 }
interfaces:
  outside: eth0
  inside: eth1
  sync: eth2
vrrp:
  groups:
    edge:
      instances:
        ext: { interface: outside, vrid: 51, addresses: [198.18.0.100/24] }
state_sync: { interface: sync }
firewall:
  rules:
    - allow: { proto: tcp, port: 22, from: 198.18.0.0/24, to: self }
services:
  web:
    listen: 198.18.0.100:80/tcp
    backends:
      web1: { address: 198.18.1.11:80 }
`;

async function errorsOf(text: string, readText?: (p: string) => Promise<string>): Promise<string[]> {
  const r = await parseConfig(text, 'c.yaml', readText);
  assert.equal(r.ok, false, 'expected the config to be rejected');
  if (r.ok) return [];
  return r.error.issues.map((i) => formatIssue(i, 'c.yaml'));
}

function edit(from: string, to: string): string {
  assert.ok(GOOD.includes(from), `fixture does not contain ${from}`);
  return GOOD.replace(from, to);
}

test('the base config and its defaults', async () => {
  const r = await parseConfig(GOOD, 'c.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const c = r.value.config;
  assert.equal(c.vrrp?.version, 3);
  assert.equal(c.vrrp?.advert_interval, 100);
  assert.deepEqual(c.vrrp?.preempt, { enabled: true, delayMs: 0 });
  assert.equal(c.state_sync?.port, 3780);
  assert.equal(c.state_sync?.lag_bound, 1000);
  assert.equal(c.services.web?.scheduler, 'rr');
  assert.deepEqual(c.services.web?.listen, { address: '198.18.0.100', port: 80, proto: 'tcp', family: 4 });
  assert.equal(c.services.web?.backends.web1?.weight, 1);
  assert.deepEqual(c.firewall.rules[0], { action: 'accept', proto: 'tcp', port: [22], from: ['198.18.0.0/24'], to: ['self'] });
});

test('bgp: its defaults, a node\'s own BIRD', async () => {
  const r = await parseConfig(edit('priority: 100', 'priority: 100\n    bgp: { socket: /run/fw2/bird.ctl }') + 'bgp: { communities: ["65010:100"], drain: 5s, addresses: [198.18.30.1] }\n', 'c.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const c = r.value.config;
  assert.deepEqual(c.bgp, { socket: '/run/bird/bird.ctl', include: '/run/fwlb/bird/announce.conf', device: 'fwlb-bgp', communities: [[65010, 100]], drain: 5000, addresses: ['198.18.30.1'] });
  assert.deepEqual(c.nodes.fw2?.bgp, { socket: '/run/fw2/bird.ctl' });
});

// Ten and more kinds of bad config, each with the message and line it must give.
const BAD: [string, string, RegExp][] = [
  ['YAML syntax', edit('  name: t', '  name: [t'), /^c\.yaml:\d+:\d+: \(top level\): YAML: /],
  ['duplicate key', edit('  inside: eth1', '  inside: eth1\n  inside: eth3'), /YAML: Map keys must be unique/],
  ['unknown key', edit('  name: t', '  name: t\n  colour: blue'), /^c\.yaml:3:3: cluster\.colour: unknown key "colour"/],
  ['missing section', edit('interfaces:\n  outside: eth0\n  inside: eth1\n  sync: eth2\n', ''), /^c\.yaml:1:1: interfaces: is required/],
  ['priority out of range', edit('priority: 200', 'priority: 300'), /^c\.yaml:5:15: nodes\.fw1\.priority: .*(<=|at most|255)/],
  ['bad duration', 'vrrp:\n  advert_interval: fast\n' + GOOD.split('vrrp:\n')[1], /vrrp\.advert_interval: "fast" is not a duration/],
  ['bad listen', edit('198.18.0.100:80/tcp', '198.18.0.100/tcp'), /^c\.yaml:\d+:13: services\.web\.listen: "198\.18\.0\.100\/tcp" is not a listen address/],
  ['bad backend address', edit('198.18.1.11:80', '198.18.1.300:80'), /services\.web\.backends\.web1\.address: "198\.18\.1\.300:80" is not a backend address/],
  ['unknown interface role', edit('interface: outside, vrid', 'interface: outsyde, vrid'), /vrrp\.groups\.edge\.instances\.ext\.interface: unknown interface "outsyde" \(interfaces defines: outside, inside, sync\)/],
  ['duplicate VRID on one interface', edit('ext: { interface: outside, vrid: 51, addresses: [198.18.0.100/24] }', 'ext: { interface: outside, vrid: 51, addresses: [198.18.0.100/24] }\n        ext2: { interface: outside, vrid: 51, addresses: [198.18.0.101/24] }'), /instances\.ext2\.vrid: VRID 51 is already used over IPv4 on interface "outside" by vrrp\.groups\.edge\.instances\.ext/],
  ['overlapping services', edit('services:\n', 'services:\n  web2:\n    listen: 198.18.0.100:80/tcp\n    backends: { a: { address: 198.18.1.20 } }\n'), /services\.web: overlaps service "web2"|services\.web2: .*overlaps|overlaps service/],
  ['node without an address on a VRRP interface', edit('addresses: { outside: 198.18.0.3/24, inside: 198.18.1.3/24, sync: 198.18.2.2/24 }', 'addresses: { inside: 198.18.1.3/24, sync: 198.18.2.2/24 }'), /nodes\.fw2\.addresses: has no address on interface "outside", which VRRP instance edge\.ext runs on/],
  ['sharing without the state sync', edit('state_sync: { interface: sync }\n', 'sharing: { addresses: { inside: 198.18.1.1/24 } }\n'), /sharing: needs state_sync with its liveness on/],
  ['a shared address that is also VRRP\'s', edit('state_sync: { interface: sync }\n', 'state_sync: { interface: sync }\nsharing: { addresses: { outside: 198.18.0.100/24 } }\n'), /sharing\.addresses\.outside\[0\]: 198\.18\.0\.100\/24 is also a VRRP address/],
  ['sharing without a cluster key', edit('state_sync: { interface: sync }\n', 'state_sync: { interface: sync }\nsharing: { addresses: { inside: 198.18.1.1/24 } }\n'), /sharing: needs cluster\.key_file/],
  ['sharing with an outer role that does not exist', edit('state_sync: { interface: sync }\n', 'state_sync: { interface: sync }\nsharing: { addresses: { inside: 198.18.1.1/24 }, outer: outsyde }\n'), /sharing\.outer: unknown interface "outsyde"/],
  ['sharing on two roles with no way to tell the outer one', edit('state_sync: { interface: sync }\n', 'state_sync: { interface: sync }\nsharing: { addresses: { inside: 198.18.1.1/24, sync: 198.18.2.100/24 } }\n'), /sharing: cannot tell which interface faces the clients .*sharing\.outer/],
  ['round robin under sharing', edit('state_sync: { interface: sync }\n', 'state_sync: { interface: sync }\nsharing: { addresses: { inside: 198.18.1.1/24 } }\n').replace('    listen: 198.18.0.100:80/tcp\n', '    listen: 198.18.0.100:80/tcp\n    scheduler: rr\n'), /services\.web\.scheduler: rr is not for sharing/],
  ['a shared MAC that is not multicast', edit('state_sync: { interface: sync }\n', 'state_sync: { interface: sync }\nsharing: { addresses: { inside: 198.18.1.1/24 }, mac: { inside: 02:00:00:00:00:01 } }\n'), /sharing\.mac\.inside: .*is not an IPv4 multicast MAC/],
  ['ports without tcp/udp', edit('proto: tcp, port: 22', 'proto: icmp, port: 22'), /firewall\.rules\[0\]\.allow\.port: ports need proto tcp or udp/],
  ['reject is not an action', edit('- allow: { proto: tcp', '- reject: { proto: tcp'), /firewall\.rules\[0\]\.reject: unknown key "reject"/],
  ['rule target neither prefix nor role', edit('from: 198.18.0.0/24', 'from: internet'), /firewall\.rules\[0\]\.allow\.from: "internet" is neither a prefix, an interface/],
  ['health timeout not below interval', edit("      web1: { address: 198.18.1.11:80 }\n", "      web1: { address: 198.18.1.11:80 }\n    health: { tcp: {}, interval: 1s, timeout: 2s }\n"), /services\.web\.health\.timeout: \(2000 ms\) must be shorter than the interval/],
  ['VRRP v2 with IPv6', edit('vrrp:\n', 'vrrp:\n  version: 2\n').replace('[198.18.0.100/24]', '[2001:db8::1/64]'), /VRRP version 2 \(RFC 3768\) carries IPv4 addresses only/],
  ['an invalid VIP: the message quotes it', edit('[198.18.0.100/24]', '[198.18.0.300/24]'), /instances\.ext\.addresses\[0\]: is not an IP address or address\/prefix-length \(got "198\.18\.0\.300\/24"\)/],
  ['a priority out of range: the message quotes it', edit('priority: 200', 'priority: 300'), /nodes\.fw1\.priority: .*\(got "300"\)/],
  ['bad node name', edit('  fw2:', '  FW2:'), /nodes\.FW2: .*lowercase|nodes: .*lowercase/],
  ['VRRP v2 at the v3 default interval', edit('vrrp:\n', 'vrrp:\n  version: 2\n  advert_interval: 100ms\n'), /vrrp\.advert_interval: advertisement interval 100 ms is not a whole number of seconds \(VRRPv2\)/],
  ['advert interval 0', edit('vrrp:\n', 'vrrp:\n  advert_interval: 0ms\n'), /vrrp\.advert_interval: advertisement interval 0 ms is outside 1\.\.4095 centiseconds/],
  ['IPv6 VRRP without its link-local virtual address first', edit('[198.18.0.100/24]', '["2001:2::1/64"]'), /instances\.ext\.addresses\[0\]: an IPv6 instance's first address must be its link-local virtual address \(RFC 9568 5\.2\.9\), e\.g\. "fe80::33\/64" before "2001:2::1"/],
  ['IPv6 VRRP over unicast', edit('vrrp:\n', 'vrrp:\n  unicast: true\n').replace('[198.18.0.100/24]', '[fe80::1/64, 2001:2::1/64]'), /vrrp\.unicast: IPv6 VRRP runs on multicast \(ff02::12\) only; instance edge\.ext is IPv6/],
  ['node addresses of two families on one role', edit('sync: 198.18.2.2/24 }', 'sync: "2001:2:2::2/64" }'), /nodes\.fw2\.addresses\.sync: is IPv6 where node fw1's address on "sync" is IPv4: the nodes talk over it in one family/],
  ['IPv6 VRRP mixing families', edit('[198.18.0.100/24]', '[fe80::1/64, 198.18.0.100/24]'), /instances\.ext\.addresses: mixes IPv4 and IPv6 addresses; use one instance per family/],
  ['service names that collide in the kernel', edit('services:\n', 'services:\n  we_b:\n    listen: 198.18.0.100:81/tcp\n    backends: { a: { address: 198.18.1.20 } }\n  we-b:\n    listen: 198.18.0.100:82/tcp\n    backends: { a: { address: 198.18.1.20 } }\n'), /services\.we-b: the name is too close to service "we_b" \(both become svc_we_b in the kernel\)/],
  ['a comment nft cannot carry', edit('to: self }', `to: self, comment: "${'é'.repeat(70)}" }`), /firewall\.rules\[0\]\.allow\.comment: is longer than 120 bytes/],
  ['bad interface name', edit('outside: eth0', 'outside: this-name-is-far-too-long'), /interfaces\.outside: is not a valid interface name/],
  ['a lag bound of 0', edit('state_sync: { interface: sync }\n', 'state_sync: { interface: sync, lag_bound: 0s }\n'), /state_sync\.lag_bound: must be above 0/],
  ['a lag bound that is no duration', edit('state_sync: { interface: sync }\n', 'state_sync: { interface: sync, lag_bound: soon }\n'), /state_sync\.lag_bound: "soon" is not a duration/],
  ['a BGP community out of range', GOOD + 'bgp: { communities: ["65010:70000"] }\n', /bgp\.communities\[0\]: is not a BGP community: each half is at most 65535/],
  ['a BGP community that is not ASN:VALUE', GOOD + 'bgp: { communities: ["no-export"] }\n', /bgp\.communities\[0\]: is not a BGP community \(use ASN:VALUE/],
  ['a relative BIRD include', GOOD + 'bgp: { include: fwlb.conf }\n', /bgp\.include: must be an absolute path/],
  ['a node\'s BGP override with an unknown key', edit('priority: 200', 'priority: 200\n    bgp: { sockt: /run/b.ctl }'), /nodes\.fw1\.bgp\.sockt: unknown key "sockt"/],
  ['a BGP address that is not one', GOOD + 'bgp: { addresses: [198.18.30.300] }\n', /bgp\.addresses\[0\]: is not an IPv4 or IPv6 address/],
];

for (const [name, text, expect] of BAD) {
  test(`bad config is rejected with a located message: ${name}`, async () => {
    const errs = await errorsOf(text);
    assert.ok(errs.some((e) => expect.test(e)), `no error matched ${expect}; got:\n${errs.join('\n')}`);
  });
}

test('dual stack: an IPv4 and an IPv6 instance, the same VRID on one interface (RFC 9568 7.3: apart per family), an IPv6 service', async () => {
  const text = edit('        ext: { interface: outside, vrid: 51, addresses: [198.18.0.100/24] }\n', '        ext: { interface: outside, vrid: 51, addresses: [198.18.0.100/24] }\n        ext6: { interface: outside, vrid: 51, addresses: [fe80::1/64, 2001:2::100/64] }\n').replace('services:\n', 'services:\n  web6:\n    listen: "[2001:2::100]:80/tcp"\n    backends: { a: { address: "[2001:2:1::11]:80" } }\n');
  const r = await parseConfig(text, 'c.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.deepEqual(r.value.config.vrrp?.groups.edge?.instances.ext6?.addresses, ['fe80::1/64', '2001:2::100/64']);
  // The state sync over IPv6: global or link-local node addresses on the sync role.
  for (const [a, b] of [['2001:2:2::1/64', '2001:2:2::2/64'], ['fe80::2:1/64', 'fe80::2:2/64']]) {
    const v6sync = await parseConfig(text.replace('sync: 198.18.2.1/24', `sync: "${a}"`).replace('sync: 198.18.2.2/24', `sync: "${b}"`), 'c.yaml');
    assert.ok(v6sync.ok, v6sync.ok ? '' : v6sync.error.message);
  }
});

test('every error is collected, not only the first', async () => {
  const text = edit('priority: 200', 'priority: 0').replace('198.18.0.100:80/tcp', 'nonsense').replace('vrid: 51', 'vrid: 0');
  const errs = await errorsOf(text);
  assert.ok(errs.length >= 3, errs.join('\n'));
  assert.ok(errs.some((e) => e.includes('nodes.fw1.priority')));
  assert.ok(errs.some((e) => e.includes('services.web.listen')));
  assert.ok(errs.some((e) => e.includes('vrrp.groups.edge.instances.ext.vrid')));
});

test('block files are read relative to the config and bad lines are named with their own file and line', async () => {
  const text = edit('firewall:\n', 'firewall:\n  block: [198.19.0.0/16]\n  block_files: [bad.txt]\n');
  const files: Record<string, string> = { '/etc/fwlb/bad.txt': '# comment\n198.20.0.0/24\n\n198.20.1.0/33\n' };
  const r = await parseConfig(text, '/etc/fwlb/c.yaml', async (p) => {
    const body = files[p];
    if (body === undefined) throw new Error('ENOENT');
    return body;
  });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.match(formatIssue(r.error.issues[0]!, '/etc/fwlb/c.yaml'), /^\/etc\/fwlb\/bad\.txt:4:1: firewall\.block_files\[0\]: "198\.20\.1\.0\/33" is not an IP prefix/);

  files['/etc/fwlb/bad.txt'] = '198.20.0.0/24 # a comment\n198.19.5.0/24\n';
  const ok = await parseConfig(text, '/etc/fwlb/c.yaml', async (p) => files[p] ?? Promise.reject(new Error('ENOENT')));
  assert.ok(ok.ok);
  assert.deepEqual([...ok.value.blocklist].sort(), ['198.19.0.0/16', '198.19.5.0/24', '198.20.0.0/24']);
});

test('a missing block file is an error at its key', async () => {
  const text = edit('firewall:\n', 'firewall:\n  block_files: [nowhere.txt]\n');
  const errs = await errorsOf(text, async () => {
    throw new Error('ENOENT: no such file');
  });
  assert.match(errs[0] ?? '', /^c\.yaml:\d+:\d+: firewall\.block_files\[0\]: cannot read .*nowhere\.txt/);
});

test('shipped examples are valid', async () => {
  const dir = `${repo}examples`;
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 2);
  for (const f of files) {
    const r = await loadConfigFile(`${dir}/${f}`);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    assert.match(await readFile(`${dir}/${f}`, 'utf8'), /cluster:/);
  }
});

/** A "billion laughs" document: `levels` anchors, each nine aliases of the one before. */
function aliasBomb(levels: number): string {
  const lines = ['cluster:', '  name: lab', 'x0: &x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < levels; i++) lines.push(`x${i}: &x${i} [${Array(9).fill(`*x${i - 1}`).join(',')}]`);
  return lines.join('\n') + '\n';
}

test('an alias bomb is refused before it expands, at the alias past the limit; a smaller one by the expansion limit; never a throw', async () => {
  const big = await parseConfig(aliasBomb(9), 'bomb.yaml'); // 72 aliases
  assert.equal(big.ok, false);
  if (big.ok) return;
  assert.equal(big.error.issues.length, 1);
  const issue = big.error.issues[0]!;
  assert.match(issue.message, new RegExp(`72 aliases .*at most ${MAX_ALIASES}`));
  // The 65th alias is the second of line 11 (x8's list): nine per line from line 4 on.
  assert.equal(issue.line, 11);
  const small = await parseConfig(aliasBomb(7), 'bomb.yaml'); // 54 aliases, 9^6 items once expanded
  assert.equal(small.ok, false);
  if (!small.ok) assert.match(small.error.issues[0]!.message, /^YAML: .*alias/i);
});

test('a config past the size limit is refused unread', async () => {
  const r = await parseConfig(`# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`, 'huge.yaml');
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.error.issues[0]!.message, /bytes: at most/);
});
