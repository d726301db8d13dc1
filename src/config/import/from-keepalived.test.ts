import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { parseConfig } from '../load.js';
import { readSources } from '../../cli/import-command.js';
import { importKeepalived } from './from-keepalived.js';
import { KaSyntaxError, parseKeepalived } from './keepalived-syntax.js';

const FIX = fileURLToPath(new URL('../../../../test/fixtures/keepalived/', import.meta.url));
const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const PEER = ['fw1.keepalived.conf', 'fw2.keepalived.conf', 'fw1.conntrackd.conf', 'fw2.conntrackd.conf'].map((f) => `${FIX}peer-reference/${f}`);
const PEER_ADDRESSES = { 'pb-fw1': { ext0: '198.18.1.2/24', int0: '198.18.2.2/24' }, 'pb-fw2': { ext0: '198.18.1.3/24', int0: '198.18.2.3/24' } };

test('the peer reference (keepalived 2.2.7 + conntrackd 1.4.7 of two nodes): a cluster file fwlb check accepts, with the same VRIDs, VIPs, priorities and sync link', async () => {
  const r = importKeepalived(readSources(PEER), { addresses: PEER_ADDRESSES });
  const parsed = await parseConfig(r.yaml, 'imported.yaml');
  assert.ok(parsed.ok, parsed.ok ? '' : `${parsed.error.message}\n${r.yaml}`);
  const c = parsed.value.config;
  assert.deepEqual(Object.keys(c.nodes).sort(), ['pb-fw1', 'pb-fw2']);
  assert.equal(c.nodes['pb-fw1']!.priority, 150);
  assert.equal(c.nodes['pb-fw2']!.priority, 100);
  assert.equal(c.nodes['pb-fw1']!.addresses.sync0, '198.18.3.1', "from conntrackd's IPv4_interface");
  assert.equal(c.nodes['pb-fw2']!.addresses.ext0, '198.18.1.3/24');
  assert.deepEqual(c.interfaces, { ext0: 'ext0', int0: 'int0', sync0: 'sync0' });
  assert.equal(c.vrrp?.version, 2);
  assert.equal(c.vrrp?.advert_interval, 1000);
  assert.equal(c.vrrp?.garp.repeat, 3);
  const g = c.vrrp!.groups.g1!;
  assert.deepEqual(g.instances.ext, { interface: 'ext0', vrid: 61, addresses: ['198.18.1.1/24'] });
  assert.deepEqual(g.instances.int, { interface: 'int0', vrid: 62, addresses: ['198.18.2.1/24'] });
  assert.equal(c.state_sync?.interface, 'sync0');
  assert.equal(c.cluster.key_file, 'cluster.key');
  assert.match(r.yaml, /^# cluster\.key: make it once with `fwlb keygen -o cluster\.key`/m);
  // What could not be carried, each with its file and line.
  const notes = r.notes.join('\n');
  assert.match(notes, /fw1\.keepalived\.conf:13: notify_master "\/tmp\/pb\/fw1\/notify\.sh primary": not carried as is/);
  assert.match(notes, /fw1\.keepalived\.conf:18: state MASTER: not carried: fwlb elects by priority/);
  assert.match(notes, /fw1\.keepalived\.conf:5: vrrp_garp_master_delay/);
  assert.match(notes, /fw1\.conntrackd\.conf:\d+: Multicast: fwlb sends to each peer's address/);
  assert.match(notes, /fw1\.conntrackd\.conf:\d+: Filter: not carried/);
  for (const n of r.notes) assert.match(r.yaml, new RegExp(`^# - ${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), 'every note is in the file too');
});

test('without the nodes\' own addresses on the VRRP links: said, with the option that gives them; fwlb check then names them', async () => {
  const r = importKeepalived(readSources(PEER));
  assert.ok(r.notes.some((n) => /nodes\.pb-fw1\.addresses\.ext0: keepalived does not say the node's own address on ext0 .*--address pb-fw1:ext0=ADDRESS\/LEN/.test(n)), r.notes.join('\n'));
  const parsed = await parseConfig(r.yaml, 'imported.yaml');
  assert.equal(parsed.ok, false);
  assert.match(parsed.ok ? '' : parsed.error.message, /nodes\.pb-fw1\.addresses: has no address on interface "ext0"/);
});

test('a config written as keepalived\'s documentation shows it: includes, ! and # comments, quoted strings, virtual servers with their checkers', async () => {
  const r = importKeepalived(readSources([`${FIX}doc-style/keepalived.conf`]), { addresses: { lvs_devel: { eth0: '198.18.0.2/24', eth1: '198.18.1.2/24' } } });
  const parsed = await parseConfig(r.yaml, 'imported.yaml');
  assert.ok(parsed.ok, parsed.ok ? '' : `${parsed.error.message}\n${r.yaml}`);
  const c = parsed.value.config;
  assert.deepEqual(Object.keys(c.nodes), ['lvs_devel']);
  assert.equal(c.nodes.lvs_devel!.priority, 200);
  const g = c.vrrp!.groups.vg_1!;
  assert.deepEqual(Object.keys(g.instances).sort(), ['vi_1', 'vi_2']);
  assert.deepEqual(g.track.interfaces.sort(), ['eth0', 'eth1']);
  assert.equal(g.track.script, '/usr/local/bin/check');
  assert.equal(g.track.weight, -20);
  assert.equal(g.track.script_interval, 2000);
  assert.equal(c.vrrp!.garp.refresh, 60_000);
  const web = c.services['vs-198-18-0-100-80-tcp']!;
  assert.deepEqual(web.listen, { address: '198.18.0.100', port: 80, proto: 'tcp', family: 4 });
  assert.equal(web.scheduler, 'rr');
  assert.deepEqual(Object.values(web.backends).map((b) => [b.address.address, b.weight]), [['198.18.1.11', 1], ['198.18.1.12', 2]]);
  assert.deepEqual(web.health?.http, { path: '/healthz', status: 200 });
  assert.equal(web.health?.interval, 6000);
  assert.equal(web.health?.timeout, 3000);
  assert.equal(web.health?.fall, 3);
  const dns = c.services['vs-198-18-0-100-53-udp']!;
  assert.equal(dns.scheduler, 'source-hash');
  assert.deepEqual(dns.health?.script, { path: '/usr/local/bin/check-dns', args: ['198.18.1.11'] });
  const notes = r.notes.join('\n');
  for (const re of [/lb_algo wlc: fwlb has rr, wrr, source-hash and maglev/, /persistence_timeout of virtual_server 198\.18\.0\.100 80/, /authentication: not carried/, /VIP 198\.18\.0\.100\/24 label eth0:vip: only the address/, /global_defs\.notification_email: not carried/, /fwlb runs a track script without arguments/, /conf\.d\/web\.conf:\d+: lb_algo wlc/]) {
    assert.match(notes, re);
  }
  assert.doesNotMatch(notes, /README/, 'the glob took *.conf only');
});

test('syntax errors name the file and line; an include loop is refused', () => {
  assert.throws(() => parseKeepalived('vrrp_instance X {\n  state MASTER\n', 'a.conf'), (e: unknown) => e instanceof KaSyntaxError && /a\.conf:2: a "\{" that is never closed/.test(e.message));
  assert.throws(() => parseKeepalived('}\n', 'b.conf'), /b\.conf:1: a "\}" with no "\{" open/);
  assert.throws(() => parseKeepalived('script "/bin/x\n', 'c.conf'), /c\.conf:1: a quote that is not closed/);
  const loop = (pattern: string) => [{ file: pattern, text: `include ${pattern}\n` }];
  assert.throws(() => parseKeepalived('include d.conf\n', 'd.conf', loop), /include loop: d\.conf -> d\.conf/);
  // One line, braces and words mixed.
  const s = parseKeepalived('vrrp_sync_group G { group { A B } }\n', 'e.conf');
  assert.deepEqual(s[0]!.block![0]!.block![0]!.words, ['A', 'B']);
});

test('fwlb import on the command line: the file on stdout, the notes on stderr, exit 0; a file that is neither is refused', () => {
  const args = [CLI, 'import', ...PEER, ...Object.entries(PEER_ADDRESSES).flatMap(([n, a]) => Object.entries(a).flatMap(([i, v]) => ['-a', `${n}:${i}=${v}`]))];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^vrrp:$/m);
  assert.match(r.stderr, /^not carried: .*notify_master/m);
  assert.match(r.stderr, /thing\(s\) not carried over; next: fwlb check -c FILE/);
  const bad = spawnSync(process.execPath, [CLI, 'import', `${FIX}doc-style/conf.d/README.txt`], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /neither a keepalived nor a conntrackd configuration/);
});
