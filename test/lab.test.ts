/**
 * The lab itself, on the real kernel (needs root): a sandwich with the VIPs pinned on fw1,
 * its services, idempotent up, failure injection, and down.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { run } from '../src/lib/exec.js';
import { registerLabCommand } from '../src/cli/lab-command.js';
import { labDown, labStatus, labUp, type Lab, type LabStatus } from '../src/lab/lab.js';
import { namespacePids } from '../src/lab/netns.js';
import { BACKEND_SERVER_JS } from '../src/lab/paths.js';

const PREFIX = 'tlab';
const OPTS = { topology: 'sandwich', prefix: PREFIX, vipsOn: 'fw1' } as const;
const FW1 = { out: '198.18.0.2', in: '198.18.1.2' };
const VIP = { out: '198.18.0.100', in: '198.18.1.1' };
const WEB1 = '198.18.1.11';
const WEB2 = '198.18.1.12';
const CLIENT1 = '198.18.0.10';

let lab: Lab;

async function labNamespaces(): Promise<string[]> {
  const out = await run('ip', ['-j', 'netns', 'list']);
  return out.trim() === '' ? [] : (JSON.parse(out) as { name: string }[]).map((n) => n.name).filter((n) => n.startsWith(`${PREFIX}-`)).sort();
}

async function linkFlags(node: string, dev: string): Promise<string[]> {
  const [l] = JSON.parse(await lab.exec(node, ['ip', '-j', 'link', 'show', 'dev', dev])) as { flags: string[] }[];
  return l?.flags ?? [];
}

async function inet(node: string, dev: string): Promise<string[]> {
  const [l] = JSON.parse(await lab.exec(node, ['ip', '-j', '-4', 'address', 'show', 'dev', dev])) as { addr_info: { local: string; prefixlen: number }[] }[];
  return (l?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).sort();
}

async function pingOk(node: string, target: string): Promise<boolean> {
  return (await lab.ping(node, target, { timeoutMs: 300, count: 2, intervalMs: 50 })).received > 0;
}

/** Retries until `fn` holds (links coming back take a moment to carry traffic). */
async function eventually(fn: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return true;
    await sleep(50);
  }
  return false;
}

before(async () => {
  await labDown(PREFIX);
  lab = await labUp(OPTS);
});

after(async () => {
  await labDown(PREFIX);
});

test('namespaces, addresses and sysctls as described; root namespace untouched', async () => {
  assert.deepEqual(await labNamespaces(), ['tlab-client1', 'tlab-fw1', 'tlab-fw2', 'tlab-sw', 'tlab-web1', 'tlab-web2']);
  assert.deepEqual(await inet('fw1', 'eth0'), ['198.18.0.100/24', '198.18.0.2/24']);
  assert.deepEqual(await inet('fw1', 'eth1'), ['198.18.1.1/24', '198.18.1.2/24']);
  assert.deepEqual(await inet('fw2', 'eth2'), ['198.18.2.2/24']);
  assert.deepEqual(await inet('web2', 'eth0'), ['198.18.1.12/24']);
  assert.match(await lab.exec('web1', ['ip', 'route', 'show', 'default']), /default via 198\.18\.1\.1 dev eth0/);
  assert.equal((await lab.exec('fw2', ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '1');
  assert.equal((await lab.exec('client1', ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '0');
  assert.equal((await lab.exec('web1', ['sysctl', '-n', 'net.ipv6.conf.eth0.accept_dad'])).trim(), '0');
  assert.ok((await linkFlags('sw', 'fw1-out')).includes('UP'));
  assert.match(await lab.exec('sw', ['ip', '-d', 'link', 'show', 'dev', 'in']), /mcast_snooping 0/);
  // Nothing of the lab in the root namespace.
  assert.doesNotMatch(await run('ip', ['-4', 'address', 'show']), /198\.1[89]\./);
  assert.doesNotMatch(await run('ip', ['link', 'show']), /fw1-out|fw1-sync|web1@/);
});

test('ping: client to fw1 and the outside VIP, web to its gateway VIP; an absent address fails', async () => {
  assert.ok(await pingOk('client1', FW1.out));
  assert.ok(await pingOk('client1', VIP.out));
  assert.ok(await pingOk('client1', '198.18.0.3'));
  assert.ok(await pingOk('web1', VIP.in));
  assert.ok(await pingOk('fw2', '198.18.2.1'));
  assert.equal(await pingOk('client1', '198.18.0.99'), false);
});

test('HTTP on 80: names the backend and the source it saw; /healthz is ok', async () => {
  assert.match(await lab.exec('fw1', ['curl', '-sS', '-m', '2', `http://${WEB1}/`]), /^web1 198\.18\.1\.2:\d+\n$/);
  assert.equal(await lab.exec('fw1', ['curl', '-sS', '-m', '2', `http://${WEB2}/healthz`]), 'ok');
  assert.match(await lab.probe('fw1', ['http', `http://${WEB2}/anything`]), /^web2 198\.18\.1\.2:\d+\n$/);
  // Through fw1 (forwarding, no NAT yet): the client's own address arrives.
  assert.match(await lab.probe('client1', ['http', `http://${WEB1}/`]), /^web1 198\.18\.0\.10:\d+\n$/);
});

test('TCP echo and whoami, UDP on 7; clients serve too', async () => {
  assert.equal(await lab.probe('fw1', ['echo', WEB1, '7', 'hello sandwich']), 'hello sandwich');
  assert.match(await lab.probe('fw1', ['read', WEB2, '8']), /^web2 198\.18\.1\.2:\d+\n$/);
  assert.equal(await lab.probe('fw1', ['udp', WEB2, '7', 'ping']), 'web2 ping');
  assert.match(await lab.probe('web1', ['read', CLIENT1, '8']), /^client1 198\.18\.1\.11:\d+\n$/);
  await assert.rejects(lab.probe('fw1', ['read', WEB1, '9'], 500), /ECONNREFUSED/);
});

test('a second up keeps a healthy lab; a broken one is rebuilt', async () => {
  const servers = lab.processes().filter((p) => p.kind === 'server').map((p) => p.pid).sort();
  assert.equal(servers.length, 3);
  const again = await labUp(OPTS);
  assert.deepEqual(again.processes().filter((p) => p.kind === 'server').map((p) => p.pid).sort(), servers);
  assert.equal(await lab.probe('fw1', ['http', `http://${WEB1}/healthz`]), 'ok');

  const web2 = lab.processes('web2').find((p) => p.kind === 'server');
  assert.ok(web2);
  await lab.stop(web2.pid, 'SIGKILL');
  await assert.rejects(lab.probe('fw1', ['http', `http://${WEB2}/healthz`], 500));
  assert.ok((await labStatus(PREFIX)).problems.includes('web2: server not running'));
  lab = await labUp(OPTS);
  assert.equal(await lab.probe('fw1', ['http', `http://${WEB2}/healthz`]), 'ok');
  assert.deepEqual((await labStatus(PREFIX)).problems, []);
});

test('spawn runs the real process under its own PID in the namespace; stop ends it', async () => {
  const h = lab.spawn('client1', ['sleep', '30']);
  await h.started();
  assert.deepEqual(readFileSync(`/proc/${h.pid}/cmdline`, 'utf8').split('\0').filter(Boolean), ['sleep', '30']);
  assert.ok((await namespacePids('tlab-client1')).includes(h.pid));
  assert.ok(lab.processes('client1').some((p) => p.pid === h.pid));
  const e = await lab.stop(h);
  assert.equal(e.signal, 'SIGTERM');
  assert.ok(!existsSync(`/proc/${h.pid}`));
  assert.ok(!lab.processes('client1').some((p) => p.pid === h.pid));
});

test('startDaemon, daemonKill and gracefulStop act on the daemon alone', async () => {
  // The harness is tested with a stand-in daemon (the backend server, which exits 0 on SIGTERM).
  const start = () => lab.startDaemon('fw2', ['--name', 'fw2d'], { entry: BACKEND_SERVER_JS });
  const d = start();
  assert.ok(await eventually(async () => (await lab.execRaw('client1', ['curl', '-s', '-m', '1', 'http://198.18.0.3/healthz'])).stdout === 'ok'));
  assert.equal(lab.daemon('fw2')?.pid, d.pid);
  assert.throws(() => start(), /already runs a daemon/);
  const killed = await lab.daemonKill('fw2');
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal(lab.daemon('fw2'), null);
  assert.ok((await linkFlags('fw2', 'eth0')).includes('UP'), 'a daemon kill leaves the links alone');

  start();
  await sleep(300);
  const stopped = await lab.gracefulStop('fw2', 5000);
  assert.deepEqual(stopped, { code: 0, signal: null });
  assert.match(readFileSync(`${lab.stateDir}/fw2.daemon.log`, 'utf8'), /"event":"stopping","signal":"SIGTERM"/);
  await assert.rejects(lab.gracefulStop('fw2'), /no daemon running on fw2/);
});

test('linkDown(fw1, eth0) cuts the client off fw1; linkUp restores it', async () => {
  await lab.linkDown('fw1', 'eth0');
  assert.ok(!(await linkFlags('fw1', 'eth0')).includes('UP'));
  assert.equal(await pingOk('client1', FW1.out), false);
  assert.ok(await pingOk('client1', '198.18.0.3'), 'fw2 stays reachable');
  await lab.linkUp('fw1', 'eth0');
  assert.ok(await eventually(() => pingOk('client1', FW1.out)));

  // Cable pull: the switch port goes down, the node sees carrier loss.
  await lab.linkDown('web1', 'eth0', { cable: true });
  assert.ok(await eventually(async () => !(await linkFlags('web1', 'eth0')).includes('LOWER_UP')));
  assert.equal(await pingOk('web1', VIP.in), false);
  await lab.linkUp('web1', 'eth0');
  assert.ok(await eventually(() => pingOk('web1', VIP.in)));
});

test('crash kills every process and downs every link; recover brings the node back clean', async () => {
  // Dirty fw1 the way a running node would: an extra address, a table, conntrack entries.
  await lab.exec('fw1', ['ip', 'address', 'add', '198.18.0.200/24', 'dev', 'eth0']);
  await lab.exec('fw1', ['nft', '-f', '-'], 'table inet fwlb {\n chain f {\n  type filter hook forward priority 0; policy accept;\n  ct state established,related accept\n }\n}\n');
  await lab.probe('client1', ['http', `http://${WEB1}/`]);
  assert.ok(Number((await lab.exec('fw1', ['conntrack', '-C'])).trim()) > 0);
  const d = lab.startDaemon('fw1', ['--name', 'fw1d'], { entry: BACKEND_SERVER_JS });
  const other = lab.spawn('fw1', ['sleep', '30']);

  const { killed } = await lab.crash('fw1');
  assert.ok(killed.includes(d.pid) && killed.includes(other.pid));
  assert.deepEqual(await namespacePids('tlab-fw1'), []);
  for (const dev of ['eth0', 'eth1', 'eth2']) assert.ok(!(await linkFlags('fw1', dev)).includes('UP'), dev);
  assert.equal(await pingOk('client1', VIP.out), false);
  assert.deepEqual((await labStatus(PREFIX)).problems.filter((p) => p.startsWith('node')), ['node fw1 crashed']);

  await lab.recover('fw1');
  for (const dev of ['eth0', 'eth1', 'eth2']) assert.ok((await linkFlags('fw1', dev)).includes('UP'), dev);
  assert.deepEqual(await inet('fw1', 'eth0'), ['198.18.0.100/24', '198.18.0.2/24'], 'extra address gone, pinned VIP kept');
  assert.equal((await lab.exec('fw1', ['nft', 'list', 'tables'])).trim(), '');
  assert.equal((await lab.exec('fw1', ['conntrack', '-C'])).trim(), '0');
  assert.ok(await eventually(() => pingOk('client1', VIP.out)));
  assert.match(await lab.probe('client1', ['http', `http://${WEB1}/`]), /^web1 /);

  // A crashed web node gets its server back on recovery.
  await lab.crash('web2');
  await assert.rejects(lab.probe('fw1', ['http', `http://${WEB2}/healthz`], 500));
  await lab.recover('web2');
  assert.equal(await lab.probe('fw1', ['http', `http://${WEB2}/healthz`]), 'ok');
  assert.deepEqual((await labStatus(PREFIX)).problems, []);
});

test('fwlb lab status --json reports the namespaces and processes', async () => {
  let out = '';
  const program = new Command().exitOverride();
  registerLabCommand(program, { out: (t) => { out += t; }, err: (t) => { out += t; } });
  await program.parseAsync(['lab', 'status', '--prefix', PREFIX, '--json'], { from: 'user' });
  const st = JSON.parse(out) as LabStatus;
  assert.equal(st.condition, 'up');
  assert.deepEqual(st.namespaces.map((n) => n.ns), await labNamespaces());
  const web1 = st.namespaces.find((n) => n.node === 'web1');
  assert.ok(web1?.processes.some((p) => p.cmdline.includes('backend-server.js --name web1')));
  assert.deepEqual(web1?.links.find((l) => l.name === 'eth0')?.addresses, ['198.18.1.11/24']);
});

test('down removes every namespace and the state, works twice and without a state file', async () => {
  writeFileSync(`${lab.stateDir}/lab.json`, '{ corrupt');
  const r = await labDown(PREFIX);
  assert.equal(r.namespaces.length, 6);
  assert.ok(r.killed.length >= 3);
  assert.deepEqual(await labNamespaces(), []);
  assert.ok(!existsSync(lab.stateDir));
  assert.deepEqual(await labDown(PREFIX), { namespaces: [], killed: [] });
  assert.equal((await labStatus(PREFIX)).condition, 'down');
});
