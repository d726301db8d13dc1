/**
 * Dual stack in a real lab (root; issue 22): the pair of examples/dual-stack.yaml, with its
 * state sync, in the lab that every `fwlb lab up` builds (IPv6 in 2001:2::/48 beside IPv4).
 * One sync group holds an IPv4 and an IPv6 virtual router per link, the same VRID for both.
 * The IPv6 adverts leave from each firewall's own link-local address; the master holds the
 * IPv6 VIPs (the link-local virtual address fe80::1 first) without duplicate address
 * detection; an IPv6 service is load-balanced by DNAT and an IPv6 port no rule allows times
 * out; on a crash of the master, 200 long IPv6 TCP sessions through that DNAT go on (their
 * conntrack entries, NAT and all, were synced), a capture on the client segment shows the new
 * master's unsolicited neighbour advertisements (from the VIP, Router and Override set,
 * Solicited clear) and the client's entry for the IPv6 VIP moves to it, marked as a
 * router's. The IPv6 VIPs move back and forth on a link down and a graceful stop, and after a
 * reload the adverts still leave from the link-local address. A packet-too-big about a
 * tracked flow crosses the firewall to the flow's source though no rule allows ICMPv6 to it;
 * one about no flow it knows does not.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { NA_LISTEN_JS, REPO_ROOT, SESSIONS_JS, TOO_BIG_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tds';
const VIP4 = '198.18.0.100';
const VIP6 = '2001:2::100';
const VLL = 'fe80::1';

let lab: Lab;
let config: string;
const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
const groupState = async (fw: string) => (await status(fw)).vrrp.groups[0]?.state;

interface AddrInfo {
  family: string;
  local: string;
  scope: string;
  tentative?: boolean;
  dadfailed?: boolean;
}
async function addresses(fw: string, dev: string): Promise<AddrInfo[]> {
  const info = JSON.parse(await lab.exec(fw, ['ip', '-j', 'addr', 'show', 'dev', dev])) as { addr_info: AddrInfo[] }[];
  return info.flatMap((l) => l.addr_info);
}
const linkLocalOf = async (fw: string) => (await addresses(fw, 'eth0')).find((a) => a.family === 'inet6' && a.scope === 'link' && a.local !== VLL)?.local;
const macOf = async (fw: string) => (await lab.exec(fw, ['cat', '/sys/class/net/eth0/address'])).trim();
async function clientNeighbour(address: string): Promise<Record<string, unknown> | undefined> {
  return (JSON.parse(await lab.exec('client1', ['ip', '-j', '-6', 'neigh', 'show', address, 'dev', 'eth0'])) as Record<string, unknown>[])[0];
}

async function holdersOf(address: string, dev = 'eth0'): Promise<string[]> {
  const out: string[] = [];
  for (const fw of ['fw1', 'fw2']) if ((await addresses(fw, dev)).some((a) => a.local === address)) out.push(fw);
  return out;
}

function spawnNode(fw: string): void {
  lab.startDaemon(fw, ['run', '-c', config, '--node', fw, '--control', control(fw), '--log-level', 'debug']);
}
const waitReady = (fw: string) => waitFor(`${fw} to be ready`, async () => ((await status(fw).catch(() => undefined))?.ready.ready ? true : undefined), 15_000);
async function start(fw: string): Promise<void> {
  spawnNode(fw);
  await waitReady(fw);
}

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  config = await writeSyncedCluster(lab, await readFile(`${REPO_ROOT}/examples/dual-stack.yaml`, 'utf8'));
  // Duplicate address detection where the VIPs go: they must be added without it.
  for (const fw of ['fw1', 'fw2']) for (const dev of ['eth0', 'eth1']) await lab.exec(fw, ['sysctl', '-qw', `net.ipv6.conf.${dev}.accept_dad=1`]);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

test('dual stack: the master holds both families; IPv6 adverts come from its link-local address; an IPv6 service answers through DNAT', async () => {
  // Both at once: neither waits for a peer to sync from.
  spawnNode('fw1');
  spawnNode('fw2');
  await waitReady('fw1');
  await waitReady('fw2');
  await waitFor('fw1 to be master', async () => ((await groupState('fw1')) === 'master' ? true : undefined));
  await waitFor('fw2 to be backup', async () => ((await groupState('fw2')) === 'backup' ? true : undefined), 5000);
  const held = (await addresses('fw1', 'eth0')).map((a) => a.local);
  for (const v of [VIP4, VIP6, VLL]) assert.ok(held.includes(v), `fw1 holds ${v} on eth0: ${held.join(' ')}`);
  assert.ok((await addresses('fw1', 'eth1')).some((a) => a.local === '2001:2:1::1'), 'and the servers\' IPv6 gateway on eth1');
  assert.ok(!(await addresses('fw2', 'eth0')).some((a) => [VIP4, VIP6, VLL].includes(a.local)), 'the backup holds no VIP');
  const st = await status('fw2');
  const inst = (n: string) => st.vrrp.groups[0]!.instances.find((i) => i.name === n)!;
  assert.equal(inst('ext6').master?.address, await linkLocalOf('fw1'), "IPv6 adverts leave from the master's own link-local address");
  assert.equal(inst('ext').master?.address, '198.18.0.2', 'VRID 51 over IPv4 is a virtual router of its own');
  assert.match(await lab.probe('client1', ['http', `http://[${VIP6}]/`]), /^web\d \[?2001:2::10\]?:\d+/, 'the IPv6 service, balanced by DNAT, sees the client as it is');
  assert.equal((await clientNeighbour(VIP6))?.lladdr, await macOf('fw1'));
  assert.equal((await lab.probe('client1', ['connect', '2001:2:1::11', '80'], 1500)).trim(), 'timeout', 'an IPv6 port no rule allows is dropped');
  assert.equal((await lab.probe('client1', ['echo', '2001:2:1::11', '7', 'hi'])).trim(), 'hi', 'the rule for the servers\' echo port lets IPv6 through, routed (no NAT)');
});

test('dual stack: a packet-too-big about a tracked IPv6 flow reaches its source through the firewall; one about no flow is dropped', async () => {
  const CLIENT6 = '2001:2::10';
  const SERVER6 = '2001:2:1::11';
  const log = `${lab.stateDir}/ptb-session.log`;
  const h = lab.spawn('client1', [process.execPath, SESSIONS_JS, SERVER6, '7', '--count', '1', '--every', '200', '--seconds', '4'], { log });
  const sport = await waitFor("the session in fw1's table", async () => /sport=(\d+)/.exec(await lab.exec('fw1', ['conntrack', '-L', '-f', 'ipv6', '-p', 'tcp', '--orig-dst', SERVER6, '--dport', '7']))?.[1], 5000);
  // What web1's kernel counted (its namespace's own counters).
  const tooBigs = async () => Number(/Icmp6InPktTooBigs\s+(\d+)/.exec(await lab.exec('web1', ['cat', '/proc/net/snmp6']))?.[1]);
  // From client1, as a router on the outside would: about a reply of web1's to client1 that
  // did not fit. From the outside to the servers the rules allow TCP port 7 only.
  const send = (port: string) => lab.exec('client1', [process.execPath, TOO_BIG_JS, '--to', SERVER6, '--src', SERVER6, '--dst', CLIENT6, '--sport', '7', '--dport', port, '--mtu', '1280']);
  const n0 = await tooBigs();
  assert.ok(Number.isInteger(n0), 'web1 counts the packet-too-big messages it gets');
  await send(sport === '1' ? '2' : '1');
  await sleep(500);
  assert.equal(await tooBigs(), n0, 'a packet-too-big about no flow the firewall knows is dropped');
  await send(sport);
  const n1 = await waitFor('web1 to get the packet-too-big', async () => {
    const n = await tooBigs();
    return n > n0 ? n : undefined;
  }, 3000);
  assert.equal(n1, n0 + 1, 'the one about its session reached web1: related to the flow, though no rule lets ICMPv6 in from the outside');
  await h.wait(20_000);
});

test('dual stack: after a reload the IPv6 adverts still leave from the link-local address, never a VIP', async () => {
  await lab.exec('fw1', [process.execPath, `${REPO_ROOT}/dist/src/cli/main.js`, 'reload', '--control', control('fw1')]);
  await sleep(500);
  const inst = (await status('fw2')).vrrp.groups[0]!.instances.find((i) => i.name === 'ext6')!;
  assert.equal(inst.master?.address, await linkLocalOf('fw1'));
  assert.equal(await groupState('fw1'), 'master');
});

test('dual stack: a crash of the master keeps 200 IPv6 sessions through DNAT (synced entries), moves every VIP of both families; the neighbour advertisements are captured, from the VIP, Router and Override set; no DAD on the VIPs', async () => {
  const log = `${lab.stateDir}/sessions6.log`;
  const sessions = lab.spawn('client1', [process.execPath, SESSIONS_JS, VIP6, '7', '--count', '200', '--every', '50', '--seconds', '7', '--grace', '3000'], { log });
  const capture = lab.spawn('client1', [process.execPath, NA_LISTEN_JS, '--dev', 'eth0', '--seconds', '4', '--target', VIP6], { log: `${lab.stateDir}/na.log` });
  await sleep(2000);
  await lab.crash('fw1');
  await waitFor('fw2 to be master', async () => ((await groupState('fw2')) === 'master' ? true : undefined), 3000);
  for (const dev of ['eth0', 'eth1']) {
    for (const a of (await addresses('fw2', dev)).filter((x) => x.family === 'inet6' && [VIP6, VLL, '2001:2:1::1'].includes(x.local))) {
      assert.ok(!a.tentative && !a.dadfailed, `${a.local} on ${dev} usable at once, no DAD: ${JSON.stringify(a)}`);
    }
  }
  const mine = (await addresses('fw2', 'eth0')).map((a) => a.local);
  for (const v of [VIP4, VIP6, VLL]) assert.ok(mine.includes(v), `fw2 holds ${v}: ${mine.join(' ')}`);
  const mac = await macOf('fw2');
  await waitFor("the client's entry for the IPv6 VIP to move to fw2", async () => ((await clientNeighbour(VIP6))?.lladdr === mac ? true : undefined), 3000);
  const n = await clientNeighbour(VIP6);
  assert.ok(n && 'router' in n, `the entry is a router's (R=1 in the advertisement): ${JSON.stringify(n)}`);
  await capture.wait(10_000);
  const { adverts } = JSON.parse((await readFile(`${lab.stateDir}/na.log`, 'utf8')).trim().split('\n').pop()!) as { adverts: Record<string, unknown>[] };
  const fromFw2 = adverts.filter((a) => a.mac === mac && a.solicited === false);
  assert.ok(fromFw2.length >= 1, `unsolicited neighbour advertisements for ${VIP6} from fw2: ${JSON.stringify(adverts)}`);
  for (const a of fromFw2) assert.deepEqual({ source: a.source, destination: a.destination, router: a.router, override: a.override, hopLimit: a.hopLimit, targetLinkLayer: a.targetLinkLayer }, { source: VIP6, destination: 'ff02::1', router: true, override: true, hopLimit: 255, targetLinkLayer: mac });
  await sessions.wait(20_000);
  const r = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { sessions: number; kept: number; lost: number; worstStallMs: number };
  assert.equal(r.kept, 200, `every IPv6 session kept across the crash: ${JSON.stringify({ ...r, stalls: undefined })}`);
});

test('dual stack: the IPv6 VIPs follow a link down and a graceful stop', async () => {
  await lab.recover('fw1');
  await start('fw1');
  // Preempt (2 s delay in the example): fw1 takes its VIPs back once it holds the table.
  await waitFor('fw1 master again', async () => ((await groupState('fw1')) === 'master' ? true : undefined), 10_000);
  // fw2 lets its VIPs go once it hears fw1 master.
  await waitFor('fw1 alone to hold the IPv6 VIP', async () => ((await holdersOf(VIP6)).join() === 'fw1' ? true : undefined), 3000);
  await lab.linkDown('fw1', 'eth0');
  await waitFor('fw2 to hold the IPv6 VIP', async () => ((await holdersOf(VIP6)).join() === 'fw2' ? true : undefined), 3000);
  assert.deepEqual(await holdersOf('2001:2:1::1', 'eth1'), ['fw2'], "the servers' IPv6 gateway moves with the group");
  await lab.linkUp('fw1', 'eth0');
  await waitFor('fw1 master again after its link came back', async () => ((await holdersOf(VIP6)).join() === 'fw1' ? true : undefined), 10_000);
  await lab.gracefulStop('fw1');
  await waitFor('fw2 to hold the IPv6 VIP after the graceful stop', async () => ((await holdersOf(VIP6)).join() === 'fw2' ? true : undefined), 2000);
  assert.equal((await lab.probe('client1', ['echo', VIP6, '7', 'still'])).trim(), 'still');
  await lab.gracefulStop('fw2');
});

test('the state sync and its BEATs over an IPv6 sync link: sessions synced over it survive a crash of the master, taken over on the BEATs', async () => {
  const v6sync = `${lab.stateDir}/v6sync.yaml`;
  const text = (await readFile(config, 'utf8')).replace('sync: 198.18.2.1/24', 'sync: "2001:2:2::1/64"').replace('sync: 198.18.2.2/24', 'sync: "2001:2:2::2/64"');
  assert.ok(text.includes('2001:2:2::2/64'));
  await writeFile(v6sync, text);
  for (const fw of ['fw1', 'fw2']) lab.startDaemon(fw, ['run', '-c', v6sync, '--node', fw, '--control', control(fw), '--log-level', 'debug']);
  await waitReady('fw1');
  await waitReady('fw2');
  await waitFor('fw1 master', async () => ((await groupState('fw1')) === 'master' ? true : undefined), 10_000);
  const st = await status('fw2');
  assert.equal(st.sync?.bulk.state, 'done', JSON.stringify(st.sync?.bulk));
  assert.equal(st.liveness?.peers[0]?.state, 'up', 'BEATs heard over IPv6');
  const log = `${lab.stateDir}/sessions-v6sync.log`;
  const sessions = lab.spawn('client1', [process.execPath, SESSIONS_JS, VIP4, '7', '--count', '50', '--every', '50', '--seconds', '5', '--grace', '3000'], { log });
  await sleep(1500);
  await lab.crashSwitched('fw1');
  await waitFor('fw2 master', async () => ((await groupState('fw2')) === 'master' ? true : undefined), 3000);
  assert.ok(((await status('fw2')).liveness?.peers[0]?.released ?? 0) >= 1, 'taken over on the BEATs (over IPv6), not by Master_Down_Interval');
  await sessions.wait(20_000);
  const r = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { kept: number };
  assert.equal(r.kept, 50, JSON.stringify(r));
  await lab.gracefulStop('fw2');
});

test('the state sync and its BEATs between link-local node addresses: a node started later syncs the table over them and hears the BEATs', async () => {
  await lab.recover('fw1');
  // Fixed link-local addresses on the sync link, as an operator would give them.
  for (const [fw, a] of [['fw1', 'fe80::a:1'], ['fw2', 'fe80::a:2']] as const) await lab.exec(fw, ['ip', 'address', 'add', `${a}/64`, 'dev', 'eth2', 'nodad']);
  const llsync = `${lab.stateDir}/llsync.yaml`;
  const text = (await readFile(config, 'utf8')).replace('sync: 198.18.2.1/24', 'sync: "fe80::a:1/64"').replace('sync: 198.18.2.2/24', 'sync: "fe80::a:2/64"');
  assert.ok(text.includes('fe80::a:2/64'));
  await writeFile(llsync, text);
  const run = (fw: string) => lab.startDaemon(fw, ['run', '-c', llsync, '--node', fw, '--control', control(fw), '--log-level', 'debug']);
  run('fw1');
  await waitReady('fw1');
  await waitFor('fw1 master', async () => ((await groupState('fw1')) === 'master' ? true : undefined), 10_000);
  const log = `${lab.stateDir}/sessions-llsync.log`;
  const sessions = lab.spawn('client1', [process.execPath, SESSIONS_JS, VIP4, '7', '--count', '30', '--every', '100', '--seconds', '6'], { log });
  await waitFor('the sessions in fw1\'s table', async () => ((await lab.exec('fw1', ['conntrack', '-C'])).trim() !== '0' ? true : undefined), 5000);
  await sleep(1000);
  run('fw2');
  await waitReady('fw2');
  const st = await status('fw2');
  assert.equal(st.sync?.bulk.state, 'done', `bulk sync over link-local addresses: ${JSON.stringify(st.sync?.bulk)}`);
  await waitFor('BEATs heard between link-local addresses', async () => ((await status('fw2')).liveness?.peers[0]?.state === 'up' ? true : undefined), 3000);
  const held = await lab.exec('fw2', ['conntrack', '-L', '-p', 'tcp', '--orig-dst', VIP4, '--dport', '7']);
  const n = held.split('\n').filter((l) => l.includes('ESTABLISHED')).length;
  assert.ok(n >= 30, `fw2 holds ${n} of the 30 sessions, synced from fw1 over fe80::a:1 -> fe80::a:2`);
  await sessions.wait(20_000);
  await lab.gracefulStop('fw2');
  await lab.gracefulStop('fw1');
});
