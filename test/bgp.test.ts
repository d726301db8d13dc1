/**
 * BGP through BIRD 2 in a real lab (root; issue 26). A `single` lab: fw1 runs fwlb and its own
 * BIRD (AS 65010); client1 plays the upstream router, with a BIRD of its own (AS 65000) that
 * installs what it learns into client1's kernel. The service's address 198.18.30.100 is on no
 * segment: client1 reaches it only through the route fw1 announces. Checked from the router's
 * side (its kernel's routes, timed by `ip monitor`, and its BIRD's view):
 * - the route appears only after fwlb says it is ready, and traffic to the service then flows
 *   through fw1's DNAT to the web servers;
 * - the service without an available backend is withdrawn, and announced again when one is back;
 * - kill -9 of the daemon withdraws it at once (the TUN device goes with the process);
 * - the status page (in Chromium) shows the BGP section;
 * - a graceful stop tags it GRACEFUL_SHUTDOWN (the router's import filter makes LOCAL_PREF 0)
 *   for `bgp.drain`, then withdraws it, then the daemon ends;
 * - `fwlb status` shows what is announced, the BGP session and the routes exported.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { controlCall } from '../src/control/client.js';
import { FLOWS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import type { ProcessHandle } from '../src/lab/processes.js';
import { waitFor } from '../src/lib/wait.js';
import { readyAt } from '../src/lab/bird.js';

const PREFIX = 'tbgp';
const SERVICE = '198.18.30.100';
let lab: Lab;
let control: string;
let config: string;
let routerSock: string;
let monitorLog: string;

const birdConf = {
  router: (dir: string) => `log "${dir}/router.bird.log" all;
router id 198.18.0.10;
protocol device {}
protocol kernel { ipv4 { import none; export all; }; merge paths on; }
protocol bgp fw1 {
  local 198.18.0.10 as 65000; neighbor 198.18.0.2 as 65010;
  hold time 3; keepalive time 1; connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import filter { if (65535,0) ~ bgp_community then bgp_local_pref = 0; accept; }; export none; };
}
`,
  node: (dir: string) => `log "${dir}/fw1.bird.log" all;
router id 198.18.0.2;
protocol device {}
include "${dir}/fw1-bgp/*.conf";
protocol bgp upstream {
  local 198.18.0.2 as 65010; neighbor 198.18.0.10 as 65000;
  hold time 3; keepalive time 1; connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import none; export where proto ~ "fwlb*"; };
}
`,
};

const cluster = (dir: string) => `cluster: { name: bgptest }
nodes:
  fw1:
    priority: 200
    addresses: { outside: 198.18.0.2/24, inside: 198.18.1.2/24, sync: 198.18.2.1/24 }
    bgp: { socket: ${dir}/fw1.bird.ctl, include: ${dir}/fw1-bgp/announce.conf }
interfaces: { outside: eth0, inside: eth1, sync: eth2 }
bgp:
  communities: ["65010:100"]
  drain: 1500ms
services:
  web:
    listen: ${SERVICE}:80/tcp
    backends:
      web1: { address: 198.18.1.11:80 }
      web2: { address: 198.18.1.12:80 }
    health: { tcp: {}, interval: 200ms, timeout: 150ms, rise: 1, fall: 2 }
`;

before(async () => {
  // The servers' gateway (198.18.1.1) pinned on fw1: no VRRP here, only BGP.
  lab = await labUp({ prefix: PREFIX, topology: 'single', vipsOn: 'fw1' });
  const dir = lab.stateDir;
  await mkdir(`${dir}/fw1-bgp`, { recursive: true });
  await writeFile(`${dir}/router.bird.conf`, birdConf.router(dir));
  await writeFile(`${dir}/fw1.bird.conf`, birdConf.node(dir));
  config = `${dir}/bgp.yaml`;
  await writeFile(config, cluster(dir));
  control = `${dir}/fw1.sock`;
  routerSock = `${dir}/router.bird.ctl`;
  monitorLog = `${dir}/router.routes.log`;
  lab.spawn('client1', ['env', 'TZ=UTC', 'ip', '-ts', 'monitor', 'route'], { log: monitorLog });
  lab.spawn('client1', ['bird', '-f', '-c', `${dir}/router.bird.conf`, '-s', routerSock, '-P', `${dir}/router.bird.pid`]);
  lab.spawn('fw1', ['bird', '-f', '-c', `${dir}/fw1.bird.conf`, '-s', `${dir}/fw1.bird.ctl`, '-P', `${dir}/fw1.bird.pid`]);
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

const status = () => controlCall(control, 'status') as Promise<NodeStatus>;
const routerHas = async () => (await lab.exec('client1', ['ip', '-4', 'route', 'show', `${SERVICE}/32`])).includes('via 198.18.0.2');
const routerRoute = () => lab.exec('client1', ['birdcl', '-s', routerSock, 'show', 'route', 'all', `${SERVICE}/32`]);

/** The router's kernel route changes for the service, as `ip -ts monitor` saw them: [epoch ms, 'add' | 'del']. */
async function routeChanges(): Promise<[number, 'add' | 'del'][]> {
  const text = await readFile(monitorLog, 'utf8').catch(() => '');
  const out: [number, 'add' | 'del'][] = [];
  for (const m of text.matchAll(/^\[(\S+)\] (Deleted )?(\S+) via/gm)) if (m[3] === SERVICE) out.push([Date.parse(`${m[1]}Z`), m[2] ? 'del' : 'add']);
  return out;
}

async function startDaemon(): Promise<ProcessHandle> {
  const d = lab.startDaemon('fw1', ['run', '-c', config, '--node', 'fw1', '--control', control, '--metrics', '127.0.0.1:9780']);
  await waitFor('fw1 ready', async () => ((await status().catch(() => undefined))?.ready.ready ? true : undefined), 30_000);
  return d;
}

test('announced only once ready; the service reached through the route; withdrawn without backends and on kill -9', async () => {
  let daemon = await startDaemon();
  await waitFor('the router has the route', async () => ((await routerHas()) ? true : undefined), 10_000);
  const ready = await readyAt(lab, 'fw1');
  const firstAdd = (await routeChanges()).find(([, k]) => k === 'add');
  assert.ok(ready !== undefined && firstAdd, 'the ready line and the route');
  assert.ok(firstAdd[0] >= ready - 5, `the route came ${ready - firstAdd[0]} ms before the node was ready`);

  // Through the route to the service: fw1's DNAT to both web servers.
  const who = JSON.parse(await lab.exec('client1', [process.execPath, FLOWS_JS, SERVICE, '80', '--count', '20', '--mode', 'http'])) as { who: (string | null)[] };
  assert.deepEqual([...new Set(who.who)].sort(), ['web1', 'web2'], JSON.stringify(who.who));

  const st = await status();
  assert.ok(st.bgp, 'status has bgp');
  assert.deepEqual([st.bgp.deviceUp, st.bgp.announced, st.bgp.error], [true, [SERVICE], null]);
  const upstream = st.bgp.protocols?.find((p) => p.name === 'upstream');
  assert.equal(upstream?.session, 'Established', JSON.stringify(st.bgp.protocols));
  assert.deepEqual(upstream?.exported, { ipv4: 1 });
  assert.match(await routerRoute(), /BGP\.community: \(65010,100\)/);

  // Every backend down: withdrawn; one back: announced again.
  for (const b of ['web1', 'web2']) await controlCall(control, 'backend', { service: 'web', backend: b, op: 'disable' });
  await waitFor('withdrawn without backends', async () => ((await routerHas()) ? undefined : true), 5_000);
  assert.match((await status()).bgp?.why ?? '', /withdrawn for want of a backend: 198\.18\.30\.100/);
  await controlCall(control, 'backend', { service: 'web', backend: 'web2', op: 'enable' });
  await waitFor('announced again', async () => ((await routerHas()) ? true : undefined), 5_000);

  // kill -9: the device goes with the process, BIRD withdraws at once.
  const before = (await routeChanges()).length;
  const killedAt = Date.now();
  await lab.stop(daemon, 'SIGKILL');
  const del = await waitFor('withdrawn after kill -9', async () => (await routeChanges()).slice(before).find(([, k]) => k === 'del'), 5_000);
  assert.ok(del[0] - killedAt < 1000, `withdrawn ${del[0] - killedAt} ms after kill -9`);

  // Back: announced again only once ready.
  daemon = await startDaemon();
  await waitFor('announced after the restart', async () => ((await routerHas()) ? true : undefined), 10_000);
  const again = (await routeChanges()).slice(before).find(([, k]) => k === 'add');
  const ready2 = await readyAt(lab, 'fw1');
  assert.ok(again && ready2 !== undefined && again[0] >= ready2 - 5, `announced ${ready2! - again![0]} ms before ready after the restart`);
});

test("the status page (Chromium in fw1's namespace) shows the BGP section: announcing, the address, BIRD's session with the router", async () => {
  if (!lab.daemon('fw1')) await startDaemon();
  await waitFor('the router has the route', async () => ((await routerHas()) ? true : undefined), 10_000);
  const wrapper = `${lab.stateDir}/chromium-in-fw1.sh`;
  await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${lab.host('fw1').ns} /usr/bin/chromium "$@"\n`);
  await chmod(wrapper, 0o755);
  const browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.goto('http://127.0.0.1:9780/');
    await page.waitForFunction((a) => (document.getElementById('bgp')?.textContent ?? '').includes(a), SERVICE, { timeout: 5000 });
    assert.equal(await page.locator('#bgp-box').isVisible(), true);
    assert.match((await page.locator('#bgp').textContent()) ?? '', /announcing/);
    const upstream = page.locator('#bgp [data-protocol="upstream"] td');
    assert.deepEqual([await upstream.nth(1).textContent(), await upstream.nth(2).textContent(), await upstream.nth(3).textContent()], ['BGP', 'up', 'Established']);
  } finally {
    await browser.close();
  }
});

test('a graceful stop: tagged GRACEFUL_SHUTDOWN (LOCAL_PREF 0 at the router) for the drain, then withdrawn, then the daemon ends', async () => {
  const daemon = lab.daemon('fw1') ?? (await startDaemon());
  await waitFor('the router has the route', async () => ((await routerHas()) ? true : undefined), 10_000);
  const before = (await routeChanges()).length;
  const t0 = Date.now();
  const exit = lab.stop(daemon, 'SIGTERM', 15_000);
  const tagged = await waitFor('tagged', async () => {
    const r = await routerRoute();
    return /\(65535,0\)/.test(r) ? r : undefined;
  }, 3_000);
  assert.match(tagged, /BGP\.local_pref: 0/);
  assert.ok(await routerHas(), 'still announced while draining');
  const del = await waitFor('withdrawn after the drain', async () => (await routeChanges()).slice(before).find(([, k]) => k === 'del'), 10_000);
  assert.ok(del[0] - t0 >= 1400, `withdrawn ${del[0] - t0} ms after SIGTERM, before the 1.5 s drain`);
  const e = await exit;
  assert.equal(e.code, 0);
});
