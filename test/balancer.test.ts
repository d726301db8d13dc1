/**
 * Load balancing in a real lab (root): `fwlb run` on fw1 of a `single` lab with three
 * web servers and two clients; real TCP and UDP through the kernel's DNAT maps.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { controlCall } from '../src/control/client.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import type { ServiceStatus } from '../src/services/balancer.js';
import { ECHO_SESSION_JS, FLOWS_JS } from '../src/lab/paths.js';
import type { ProcessHandle } from '../src/lab/processes.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tlb';
const VIP = '198.18.0.100';
let lab: Lab;
let control: string;

const CONFIG = `cluster: { name: lbtest }
nodes:
  fw1: { priority: 200, addresses: { outside: 198.18.0.2/24, inside: 198.18.1.2/24, sync: 198.18.2.1/24 } }
interfaces: { outside: eth0, inside: eth1, sync: eth2 }
firewall:
  rules:
    - allow: { from: inside, to: outside }
services:
  web:
    listen: ${VIP}:80/tcp
    scheduler: wrr
    backends:
      web1: { address: 198.18.1.11:80, weight: 1 }
      web2: { address: 198.18.1.12:80, weight: 2 }
      web3: { address: 198.18.1.13:80, weight: 3 }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }
  sticky:
    listen: ${VIP}:81/tcp
    scheduler: source-hash
    backends: { web1: { address: 198.18.1.11:8 }, web2: { address: 198.18.1.12:8 }, web3: { address: 198.18.1.13:8 } }
  consistent:
    listen: ${VIP}:82/tcp
    scheduler: maglev
    backends: { web1: { address: 198.18.1.11:8 }, web2: { address: 198.18.1.12:8 }, web3: { address: 198.18.1.13:8 } }
  pool:
    listen: ${VIP}:83/tcp
    backends: { web1: { address: 198.18.1.11:8 } }
  echo:
    listen: ${VIP}:7/tcp
    backends: { web1: { address: 198.18.1.11 }, web2: { address: 198.18.1.12 }, web3: { address: 198.18.1.13 } }
    health: { tcp: {}, interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }
  udp-echo:
    listen: ${VIP}:7/udp
    backends: { web1: { address: 198.18.1.11 }, web2: { address: 198.18.1.12 }, web3: { address: 198.18.1.13 } }
`;

const status = () => controlCall(control, 'status') as Promise<NodeStatus>;
const service = async (name: string): Promise<ServiceStatus> => (await status()).services.find((s) => s.name === name)!;
const backend = (args: Record<string, unknown>) => controlCall(control, 'backend', args, 30_000) as Promise<Record<string, unknown>>;

async function flows(from: string, port: number, count: number, opts: { mode?: 'read' | 'http'; localPort?: number } = {}): Promise<(string | null)[]> {
  const args = [process.execPath, FLOWS_JS, VIP, String(port), '--count', String(count), '--mode', opts.mode ?? 'read'];
  if (opts.localPort !== undefined) args.push('--local-port', String(opts.localPort));
  return (JSON.parse(await lab.exec(from, args)) as { who: (string | null)[] }).who;
}

const tally = (who: readonly (string | null)[]) => who.reduce<Record<string, number>>((acc, w) => ((acc[w ?? 'failed'] = (acc[w ?? 'failed'] ?? 0) + 1), acc), {});


/** Starts a long echo session through the VIP and finds the backend conntrack sent it to. */
async function session(seconds: number, name: string): Promise<{ handle: ProcessHandle; backend: string; log: string }> {
  const log = `${lab.stateDir}/${name}.log`;
  const handle = lab.spawn('client1', [process.execPath, ECHO_SESSION_JS, VIP, '7', '--every', '50', '--seconds', String(seconds)], { log });
  const localPort = await waitFor('the session to connect', async () => {
    const first = (await readFile(log, 'utf8')).split('\n')[0];
    return first ? (JSON.parse(first) as { localPort: number }).localPort : undefined;
  });
  const ct = await lab.exec('fw1', ['conntrack', '-L', '-p', 'tcp', '--orig-port-src', String(localPort)]);
  const m = /src=198\.18\.1\.(\d+) dst=198\.18\.0\.10 sport=7/.exec(ct);
  assert.ok(m, `no conntrack entry for the session:\n${ct}`);
  return { handle, backend: `web${Number(m[1]) - 10}`, log };
}

async function sessionResult(s: { handle: ProcessHandle; log: string }) {
  await s.handle.wait(30_000);
  return JSON.parse((await readFile(s.log, 'utf8')).trim().split('\n').pop()!) as { sent: number; echoed: number; error: string | null; maxGapMs: number };
}

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'single', backends: 3, clients: 2, vipsOn: 'fw1' });
  const cfg = `${lab.stateDir}/cluster.yaml`;
  control = `${lab.stateDir}/fw1.sock`;
  await writeFile(cfg, CONFIG);
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control, '--log-level', 'debug', '--metrics', '127.0.0.1:9780']);
  await waitFor('the daemon', async () => (await status()).ruleset.digest);
});

after(async () => {
  await labDown(PREFIX);
});

test('weighted round robin: the spread follows the weights 1:2:3 (within 3 points of share)', async () => {
  const who = await flows('client1', 80, 600, { mode: 'http' });
  const t = tally(who);
  assert.equal(t.failed, undefined, JSON.stringify(t));
  for (const [b, w] of [['web1', 1], ['web2', 2], ['web3', 3]] as const) {
    const share = (t[b] ?? 0) / 600;
    assert.ok(Math.abs(share - w / 6) < 0.03, `${b}: ${share.toFixed(3)} of flows, want ${(w / 6).toFixed(3)}: ${JSON.stringify(t)}`);
  }
  const web = await service('web');
  assert.deepEqual(web.backends.map((b) => b.slots), [21, 43, 64]); // 3 backends: 128 slots
  assert.ok(web.backends.every((b) => (b.newConnections ?? 0) >= 90), JSON.stringify(web.backends));
});

test('source hash keeps each client on one backend', async () => {
  for (const client of ['client1', 'client2']) {
    const t = tally(await flows(client, 81, 30));
    assert.equal(Object.keys(t).length, 1, `${client} spread over ${JSON.stringify(t)}`);
    assert.match(Object.keys(t)[0]!, /^web[123]$/);
  }
});

test('maglev: removing one of three backends moves its flows (about 1/3) and no other', async () => {
  const N = 240;
  const beforeWho = await flows('client1', 82, N, { localPort: 30000 });
  const t0 = tally(beforeWho);
  assert.equal(t0.failed, undefined, JSON.stringify(t0));
  assert.equal(Object.keys(t0).length, 3, JSON.stringify(t0));
  await backend({ op: 'remove', service: 'consistent', backend: 'web2' });
  const afterWho = await flows('client1', 82, N, { localPort: 30000 });
  let moved = 0;
  for (let i = 0; i < N; i++) {
    if (beforeWho[i] === 'web2') {
      assert.notEqual(afterWho[i], 'web2');
      assert.ok(afterWho[i], `flow ${i} failed after the removal`);
      moved++;
    } else {
      assert.equal(afterWho[i], beforeWho[i], `flow ${i} moved from ${beforeWho[i]} to ${afterWho[i]} though its backend stayed`);
    }
  }
  assert.ok(moved / N > 0.2 && moved / N < 0.47, `moved ${moved}/${N}`);
  await backend({ op: 'enable', service: 'consistent', backend: 'web2' });
  assert.deepEqual(await flows('client1', 82, N, { localPort: 30000 }), beforeWho, 'enabled again, every flow maps where it did');
});

test("a backend whose service stops leaves the rotation by health check; open connections to the others are untouched", async () => {
  // One session per backend (round robin), then stop web3's servers.
  const sessions = [await session(6, 's1'), await session(6, 's2'), await session(6, 's3')];
  const web3server = lab.processes('web3').find((p) => p.kind === 'server');
  assert.ok(web3server);
  await lab.stop(web3server.pid, 'SIGKILL');
  const t0 = Date.now();
  // Both services that web3 serves (their checks run apart: tcp for echo, http for web).
  const down = await waitFor('web3 to be marked down', async () => {
    const downIn = async (name: string) => {
      const b = (await service(name)).backends.find((x) => x.name === 'web3');
      return b?.health === 'down' && b.slots === 0;
    };
    return (await downIn('echo')) && (await downIn('web')) ? Date.now() - t0 : undefined;
  });
  assert.ok(down < 2000, `took ${down} ms (fall 2 x interval 200 ms)`);
  const t = tally(await flows('client1', 80, 60, { mode: 'http' }));
  assert.deepEqual(Object.keys(t).sort(), ['web1', 'web2'], JSON.stringify(t));
  for (const s of sessions) {
    const r = await sessionResult(s);
    if (s.backend === 'web3') continue; // its server is gone: that session may die
    assert.equal(r.error, null, `session on ${s.backend}: ${JSON.stringify(r)}`);
    assert.equal(r.echoed, r.sent, `session on ${s.backend}`);
  }
  await lab.startServers([lab.host('web3')]);
  await waitFor('web3 back after rise', async () => ((await service('web')).backends.find((x) => x.name === 'web3')?.health === 'up' ? true : undefined));
  const back = tally(await flows('client1', 80, 60, { mode: 'http' }));
  assert.ok((back.web3 ?? 0) > 0, JSON.stringify(back));
});

test('drain keeps an open connection alive while new ones go elsewhere; enable brings it back', async () => {
  const s = await session(3, 'drain');
  const drained = await backend({ op: 'drain', service: 'echo', backend: s.backend });
  assert.equal(drained.admin, 'drain');
  const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => lab.probe('client2', ['echo', VIP, '7', `x${i}\n`])));
  assert.ok(answers.every((a, i) => a === `x${i}\n`));
  const ct = await lab.exec('fw1', ['conntrack', '-L', '-p', 'tcp', '--orig-dst', VIP, '--orig-port-dst', '7', '--orig-src', '198.18.0.11']);
  assert.doesNotMatch(ct, new RegExp(`src=198\\.18\\.1\\.${10 + Number(s.backend.slice(3))} `), 'a new flow went to the drained backend');
  const st = (await service('echo')).backends.find((b) => b.name === s.backend)!;
  assert.equal(st.admin, 'drain');
  assert.equal(st.slots, 0);
  // Flow counts are cached for a second: wait out a count taken before the session opened.
  await waitFor('the drained backend to show its session', async () => {
    const b = (await service('echo')).backends.find((x) => x.name === s.backend)!;
    return (b.activeConnections ?? 0) >= 1 ? true : undefined;
  }, 3000);
  const r = await sessionResult(s);
  assert.equal(r.error, null, JSON.stringify(r));
  assert.equal(r.echoed, r.sent);
  await backend({ op: 'enable', service: 'echo', backend: s.backend });
  assert.ok((await service('echo')).backends.every((b) => b.slots >= 30)); // 2 backends: 64 slots
});

test('add and remove backends at runtime; a reload keeps runtime changes the file does not touch', async () => {
  assert.deepEqual(tally(await flows('client1', 83, 10)), { web1: 10 });
  await backend({ op: 'add', service: 'pool', backend: 'web2', address: '198.18.1.12', port: 8 });
  assert.deepEqual(tally(await flows('client1', 83, 10)), { web1: 5, web2: 5 });
  await backend({ op: 'weight', service: 'echo', backend: 'web1', weight: 3 });

  // Reload with the same file: the runtime backend and weight stay.
  const r = (await controlCall(control, 'reload', undefined, 30_000)) as { ok: boolean };
  assert.ok(r.ok);
  assert.deepEqual(tally(await flows('client1', 83, 10)), { web1: 5, web2: 5 });
  assert.equal((await service('echo')).backends.find((b) => b.name === 'web1')!.weight, 3);

  await backend({ op: 'remove', service: 'pool', backend: 'web2' });
  assert.deepEqual(tally(await flows('client1', 83, 10)), { web1: 10 });
  assert.equal((await service('pool')).backends.length, 1);
  await assert.rejects(backend({ op: 'drain', service: 'pool', backend: 'nope' }), /no backend "nope"/);
  await assert.rejects(backend({ op: 'add', service: 'pool', backend: 'web1', address: '198.18.1.13' }), /use enable/);
});

test('a UDP service spreads requests over its backends', async () => {
  const who: string[] = [];
  for (let i = 0; i < 9; i++) who.push((await lab.probe('client1', ['udp', VIP, '7', `ping${i}`])).split(' ')[0]!);
  const t = tally(who);
  assert.deepEqual(Object.keys(t).sort(), ['web1', 'web2', 'web3'], JSON.stringify(t));
});

test('fwlb status shows per-backend health, weight, share, active and new connections', async () => {
  const text = await lab.exec('fw1', [process.execPath, new URL('../src/cli/main.js', import.meta.url).pathname, 'status', '--control', control]);
  assert.match(text, /service web {2}198\.18\.0\.100:80\/tcp {2}wrr \(128 slots\)/);
  assert.match(text, /web3 +198\.18\.1\.13:80 +3 enabled +up +50\.0% +\d+ +\d+/);
});

test('Prometheus metrics: over the control socket and over HTTP, per backend and per reason', async () => {
  const text = (await controlCall(control, 'metrics')) as string;
  assert.match(text, /^fwlb_backend_weight\{service="web",backend="web3",node="fw1",cluster="lbtest"\} 3$/m);
  assert.match(text, /^fwlb_backend_new_connections_total\{service="web",backend="web1",node="fw1",cluster="lbtest"\} [1-9]\d*$/m);
  assert.match(text, /^fwlb_backend_table_share\{service="web",backend="web2",node="fw1",cluster="lbtest"\} 0\.33/m);
  assert.match(text, /^# TYPE fwlb_vrrp_rx_dropped_total counter$/m);
  const http = await lab.exec('fw1', ['curl', '-sf', 'http://127.0.0.1:9780/metrics']);
  assert.match(http, /^fwlb_backend_up\{service="echo",backend="web1",node="fw1",cluster="lbtest"\} 1$/m);
});
