/**
 * VRRPv3 over IPv6 on the wire (issue 22, RFC 9568 5.1.2), in two namespaces of its own
 * (tv6a-<pid>, tv6b-<pid>) joined by a veth pair: adverts sent through the IPv6 raw socket
 * (adapters/vrrp-socket-v6.ts) leave from the interface's link-local address, to ff02::12,
 * with hop limit 255, and the receiving socket reports those three and an advert whose
 * pseudo-header checksum verifies. Each side is a child process (src/lab/vrrp6-probe.ts)
 * that first waits for its link-local address to finish duplicate address detection. And
 * keepalived's IPv6 VRRPv3 in the same VRID, both ways.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { addNamespaces, deleteNamespaces, ipBatch, linkAddresses, nsExec, type LinkAddrInfo } from '../src/lab/netns.js';

const v6 = (links: LinkAddrInfo[]) => links.flatMap((l) => l.addr_info).filter((a) => a.family === 'inet6');
import { VRRP6_PROBE_JS } from '../src/lab/paths.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const A = `tv6a-${process.pid}`;
const B = `tv6b-${process.pid}`;

before(async () => {
  await addNamespaces([A, B]);
  await ipBatch(null, [`link add tv6a0 netns ${A} type veth peer name tv6b0 netns ${B}`]);
  await ipBatch(A, ['link set tv6a0 name eth0', 'link set eth0 up', 'link set lo up']);
  await ipBatch(B, ['link set tv6b0 name eth0', 'link set eth0 up', 'link set lo up']);
});
after(async () => {
  await deleteNamespaces([A, B]);
});

/** Starts the listener in `ns`; resolves with its JSON lines once it exits. */
function listen(ns: string, seconds: number): { ready: Promise<string>; done: Promise<Record<string, unknown>[]> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, VRRP6_PROBE_JS, 'listen', '--ifname', 'eth0', '--seconds', String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady: (ll: string) => void = () => undefined;
  const ready = new Promise<string>((r) => (onReady = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const first = out.split('\n')[0]!;
    if (out.includes('\n')) onReady((JSON.parse(first) as { listening: string }).listening);
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<Record<string, unknown>[]>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)) : reject(new Error(`listener exited ${code}: ${err}`)))),
  );
  return { ready, done };
}

test('IPv6 adverts leave from the link-local address to ff02::12 with hop limit 255, and arrive whole with their checksum', async () => {
  const l = listen(B, 4);
  await l.ready;
  const sent = JSON.parse(await nsExec(A, [process.execPath, VRRP6_PROBE_JS, 'send', '--ifname', 'eth0', '--vrid', '51', '--priority', '200', '--address', 'fe80::51', '--address', '2001:2::100', '--count', '3'])) as { linkLocal: string; sent: number };
  assert.match(sent.linkLocal, /^fe80:/);
  const ll = v6(await linkAddresses(A, 'eth0')).find((a) => a.local.startsWith('fe80'));
  assert.equal(sent.linkLocal, ll?.local, "the sender's source is its interface's link-local address");
  const lines = (await l.done).slice(1);
  assert.equal(lines.length, 3, JSON.stringify(lines));
  for (const line of lines) {
    assert.equal(line.source, sent.linkLocal);
    assert.equal(line.destination, 'ff02::12');
    assert.equal(line.hopLimit, 255);
    assert.deepEqual(line.advert, { version: 3, family: 6, vrid: 51, priority: 200, maxAdvertIntervalMs: 100, addresses: ['fe80::51', '2001:2::100'] });
  }
});

test('a socket is not opened on a link-local address still in duplicate address detection: the probe waits for it', async () => {
  // A new interface: its link-local starts tentative (DAD takes about a second here).
  await ipBatch(A, ['link add dad6 type veth peer name dad6p', 'link set dad6p up', 'link set dad6 up']);
  const t0 = Date.now();
  let tentative = false;
  for (let i = 0; i < 50 && !tentative; i++) tentative = v6(await linkAddresses(A, 'dad6')).some((a) => a.local.startsWith('fe80') && a.tentative);
  assert.ok(tentative, 'a new link-local address is tentative for a while (DAD)');
  const out = JSON.parse(await nsExec(A, [process.execPath, VRRP6_PROBE_JS, 'send', '--ifname', 'dad6', '--address', 'fe80::51', '--count', '1'])) as { linkLocal: string };
  assert.match(out.linkLocal, /^fe80:/);
  const now = v6(await linkAddresses(A, 'dad6')).find((a) => a.local === out.linkLocal);
  assert.ok(now, 'the address it used is the interface\'s');
  assert.equal(now.tentative ?? false, false, 'bound only once DAD was over');
  assert.ok(Date.now() - t0 >= 100, `it waited (the address was tentative; bound after ${Date.now() - t0} ms)`);
});

test("keepalived's IPv6 VRRPv3, both ways: its adverts pass our socket and decoder (checksum, hop limit, link-local source); ours make it a backup that gives up its VIPs", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fwlb-v6k-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    `${dir}/k.conf`,
    ['global_defs {', '  router_id kb', '  vrrp_version 3', '}', 'vrrp_instance V6 {', '  state BACKUP', '  interface eth0', '  virtual_router_id 51', '  priority 100', '  advert_int 0.1', '  virtual_ipaddress {', '    fe80::51/64 dev eth0', '    2001:2::100/64 dev eth0', '  }', '}', ''].join('\n'),
  );
  const k = spawn('ip', ['netns', 'exec', B, 'keepalived', '--vrrp', '--dont-fork', '--log-console', '-f', `${dir}/k.conf`, '-p', `${dir}/k.pid`, '-r', `${dir}/kv.pid`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  k.stdout.on('data', (d: Buffer) => (log += d.toString()));
  k.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise((r) => k.on('exit', r));
  t.after(async () => {
    if (k.exitCode === null) k.kill('SIGTERM');
    await exited;
  });
  const bAddrs = async () => v6(await linkAddresses(B, 'eth0')).map((a) => a.local);
  // keepalived alone on the link becomes master: its VIPs on B, its adverts on the wire.
  const deadline = Date.now() + 10_000;
  while (!(await bAddrs()).includes('2001:2::100')) {
    assert.ok(Date.now() < deadline, `keepalived never became master: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const l = listen(A, 1);
  await l.ready;
  const heard = (await l.done).slice(1);
  assert.ok(heard.length >= 3, `keepalived's adverts heard: ${JSON.stringify(heard)}`);
  const bLinkLocal = (await bAddrs()).find((a) => a.startsWith('fe80:') && a !== 'fe80::51');
  for (const h of heard) {
    assert.equal(h.source, bLinkLocal, 'from its interface link-local, not a VIP');
    assert.equal(h.destination, 'ff02::12');
    assert.equal(h.hopLimit, 255);
    assert.deepEqual(h.advert, { version: 3, family: 6, vrid: 51, priority: 100, maxAdvertIntervalMs: 100, addresses: ['fe80::51', '2001:2::100'] }, `decoded (the checksum verified): ${JSON.stringify(h)}`);
  }
  // Ours at a higher priority: keepalived goes back to backup and removes its VIPs.
  await nsExec(A, [process.execPath, VRRP6_PROBE_JS, 'send', '--ifname', 'eth0', '--vrid', '51', '--priority', '200', '--address', 'fe80::51', '--address', '2001:2::100', '--count', '10']);
  const addrs = await bAddrs();
  assert.ok(!addrs.includes('2001:2::100') && !addrs.includes('fe80::51'), `keepalived still holds its VIPs: ${addrs.join(', ')}`);
  assert.match(log, /\(V6\) Entering BACKUP STATE\s*$/m, log);
});
