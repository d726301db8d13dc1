/**
 * VRRP failover in real labs (root): fwlb on two and three firewalls, real adverts on raw
 * sockets, VIPs through rtnetlink, gratuitous ARP, and the failure modes of PRODUCT.md.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { controlCall } from '../src/control/client.js';
import { ARP_LISTEN_JS, ECHO_SESSION_JS, REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import type { ProcessHandle } from '../src/lab/processes.js';
import { waitFor } from '../src/lib/wait.js';

const VIP_OUT = '198.18.0.100';
const VIP_IN = '198.18.1.1';


/** The firewalls holding an address on an interface. */
async function holders(lab: Lab, fws: string[], address: string, iface: string): Promise<string[]> {
  const out: string[] = [];
  for (const fw of fws) {
    const r = await lab.execRaw(fw, ['ip', '-j', 'addr', 'show', 'dev', iface]);
    const info = r.status === 0 ? (JSON.parse(r.stdout) as { addr_info: { local: string }[] }[]) : [];
    if (info.some((l) => l.addr_info.some((a) => a.local === address))) out.push(fw);
  }
  return out;
}

function macOf(lab: Lab, node: string, iface: string): Promise<string> {
  return lab.exec(node, ['cat', `/sys/class/net/${iface}/address`]).then((s) => s.trim());
}

/** The MAC the client has for an address in its neighbour table (after talking to it). */
async function clientNeighbour(lab: Lab, address: string): Promise<string | undefined> {
  const out = JSON.parse(await lab.exec('client1', ['ip', '-j', 'neigh', 'show', address])) as { lladdr?: string }[];
  return out[0]?.lladdr;
}

class Cluster {
  readonly daemons = new Map<string, ProcessHandle>();
  constructor(readonly lab: Lab, readonly config: string) {}

  control(fw: string): string {
    return `${this.lab.stateDir}/${fw}.sock`;
  }

  status(fw: string): Promise<NodeStatus> {
    return controlCall(this.control(fw), 'status') as Promise<NodeStatus>;
  }

  async start(fw: string, env?: Record<string, string>): Promise<void> {
    this.daemons.set(fw, this.lab.startDaemon(fw, ['run', '-c', this.config, '--node', fw, '--control', this.control(fw), '--log-level', 'debug'], env ? { env: { ...(process.env as Record<string, string>), ...env } } : {}));
    await waitFor(`${fw} to run`, async () => (await this.status(fw)).vrrp.groups[0]?.state);
  }

  groupState(fw: string): Promise<string | undefined> {
    return this.status(fw).then((s) => s.vrrp.groups[0]?.state);
  }

  async waitMaster(fw: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(`${fw} to be master`, async () => ((await this.groupState(fw)) === 'master' ? true : undefined), timeoutMs);
  }
}

function config(extra: { preempt: string; priorities?: number[]; nodes?: number; unicast?: boolean; track?: string; health?: string }): string {
  const n = extra.nodes ?? 2;
  const prios = extra.priorities ?? [200, 100, 50];
  const nodes = Array.from({ length: n }, (_, i) => `  fw${i + 1}:
    priority: ${prios[i]}
    addresses: { outside: 198.18.0.${2 + i}/24, inside: 198.18.1.${2 + i}/24, sync: 198.18.2.${1 + i}/24 }`).join('\n');
  return `cluster: { name: vrrptest }
nodes:
${nodes}
interfaces: { outside: eth0, inside: eth1, sync: eth2 }
vrrp:
  version: 3
  advert_interval: 50ms
  garp: { refresh: 1s }
  preempt: ${extra.preempt}
  unicast: ${extra.unicast ?? false}
  groups:
    edge:
      instances:
        ext: { interface: outside, vrid: 51, addresses: [${VIP_OUT}/24] }
        int: { interface: inside, vrid: 52, addresses: [${VIP_IN}/24] }
      track: { interfaces: [outside, inside]${extra.track ?? ''} }
      notify: NOTIFY
state_sync: { interface: sync }
firewall:
  rules:
    - allow: { from: inside, to: outside }
    - allow: { proto: tcp, port: 7, from: outside, to: inside }
services:
  web:
    listen: ${VIP_OUT}:80/tcp
    backends: { web1: { address: 198.18.1.11 }, web2: { address: 198.18.1.12 } }
${extra.health ?? ''}`;
}

describe('two firewalls', () => {
  let lab: Lab;
  let c: Cluster;
  const FWS = ['fw1', 'fw2'];

  before(async () => {
    lab = await labUp({ prefix: 'tvr', topology: 'sandwich' });
    const notify = `${lab.stateDir}/notify.sh`;
    await writeFile(notify, `#!/bin/sh\necho "$FWLB_NODE $1 $2 $FWLB_STATE" >> ${lab.stateDir}/notify.log\n`, { mode: 0o755 });
    await writeFile(`${lab.stateDir}/nopreempt.yaml`, config({ preempt: 'false' }).replace('NOTIFY', notify));
    await writeFile(`${lab.stateDir}/preempt.yaml`, config({ preempt: '{ delay: 1s }' }).replace('NOTIFY', notify));
    c = new Cluster(lab, `${lab.stateDir}/nopreempt.yaml`);
  });
  after(async () => {
    if (!process.env.FWLB_KEEP_LAB) await labDown('tvr');
  });

  test('election by priority: fw1 (200) holds both VIPs, fw2 (100) is backup; notify hooks ran', async () => {
    await c.start('fw1');
    await c.waitMaster('fw1');
    await c.start('fw2');
    await sleep(300);
    assert.equal(await c.groupState('fw2'), 'backup');
    assert.deepEqual(await holders(lab, FWS, VIP_OUT, 'eth0'), ['fw1']);
    assert.deepEqual(await holders(lab, FWS, VIP_IN, 'eth1'), ['fw1']);
    assert.match(await lab.probe('client1', ['http', `http://${VIP_OUT}/`]), /^web\d /);
    const st = await c.status('fw2');
    const ext = st.vrrp.groups[0]!.instances.find((i) => i.name === 'ext')!;
    assert.equal(ext.master?.address, '198.18.0.2');
    assert.equal(ext.master?.priority, 200);
    const notes = await readFile(`${lab.stateDir}/notify.log`, 'utf8');
    assert.match(notes, /^fw1 edge master master$/m);
    assert.match(notes, /^fw2 edge backup backup$/m);
  });

  test('the master refreshes its gratuitous ARPs while it stays master (garp.refresh: 1s): a listener on the segment sees them', async () => {
    await c.waitMaster('fw1');
    const before = await c.status('fw1');
    const out = JSON.parse(await lab.exec('client1', [process.execPath, ARP_LISTEN_JS, '--dev', 'eth0', '--ip', VIP_OUT, '--seconds', '3.5'])) as { garps: { at: number; mac: string }[] };
    const after = await c.status('fw1');
    const mac = await macOf(lab, 'fw1', 'eth0');
    assert.equal(after.vrrp.groups[0]!.transitions, before.vrrp.groups[0]!.transitions, 'no transition meanwhile: these are refreshes');
    const fromFw1 = out.garps.filter((g) => g.mac === mac);
    assert.ok(fromFw1.length >= 2 && fromFw1.length <= 5, `gratuitous ARPs for ${VIP_OUT} from fw1 in 3.5 s: ${JSON.stringify(out.garps)}`);
    const gaps = fromFw1.slice(1).map((g, i) => g.at - fromFw1[i]!.at);
    for (const g of gaps) assert.ok(g > 800 && g < 1300, `refresh interval ${g} ms`);
    assert.ok(after.vrrp.garpRefreshes >= before.vrrp.garpRefreshes + 2);
  });

  test('kill -9 of the master daemon: the backup takes over; the restarted daemon drops its stale VIPs and rejoins (nopreempt holds) without disturbing a session', async () => {
    await lab.daemonKill('fw1');
    assert.deepEqual(await holders(lab, FWS, VIP_OUT, 'eth0'), ['fw1'], 'the kernel keeps the VIPs of a killed daemon');
    await c.waitMaster('fw2', 5000);
    const log = `${lab.stateDir}/session-kill.log`;
    const session = lab.spawn('client1', [process.execPath, ECHO_SESSION_JS, '198.18.1.11', '7', '--every', '50', '--seconds', '3'], { log });
    await sleep(500);
    await c.start('fw1');
    await waitFor('fw1 to drop its stale VIPs', async () => ((await holders(lab, FWS, VIP_OUT, 'eth0')).join() === 'fw2' ? true : undefined));
    await sleep(500);
    assert.equal(await c.groupState('fw1'), 'backup', 'nopreempt: fw1 does not take back a live lower master');
    assert.equal(await c.groupState('fw2'), 'master');
    await session.wait(10_000);
    const r = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { sent: number; echoed: number; error: string | null };
    assert.equal(r.error, null, JSON.stringify(r));
    assert.equal(r.echoed, r.sent);
  });

  test('graceful stop hands over at once (priority 0)', async () => {
    const t0 = Date.now();
    await lab.gracefulStop('fw2');
    await c.waitMaster('fw1', 2000);
    assert.ok(Date.now() - t0 < 2000);
    assert.deepEqual(await holders(lab, FWS, VIP_OUT, 'eth0'), ['fw1']);
    assert.deepEqual(await holders(lab, FWS, VIP_IN, 'eth1'), ['fw1']);
    const st = await c.status('fw1');
    assert.ok((st.vrrp.counters.priority_zero_received ?? 0) >= 1, JSON.stringify(st.vrrp.counters));
  });

  test('crash of the master: the backup owns every VIP and the client resolves the VIP to it; recovery with preempt', async () => {
    await lab.gracefulStop('fw1');
    c = new Cluster(lab, `${lab.stateDir}/preempt.yaml`);
    await c.start('fw1');
    await c.waitMaster('fw1');
    await c.start('fw2');
    await sleep(300);
    assert.match(await lab.probe('client1', ['http', `http://${VIP_OUT}/`]), /^web\d /);
    assert.equal(await clientNeighbour(lab, VIP_OUT), await macOf(lab, 'fw1', 'eth0'));

    await lab.crash('fw1');
    await c.waitMaster('fw2', 3000);
    assert.deepEqual(await holders(lab, ['fw2'], VIP_OUT, 'eth0'), ['fw2']);
    assert.deepEqual(await holders(lab, ['fw2'], VIP_IN, 'eth1'), ['fw2']);
    // The gratuitous ARP moved the client's entry for the VIP to fw2, and fw2 answers ARP for it.
    await waitFor('the client to learn fw2 for the VIP', async () => ((await clientNeighbour(lab, VIP_OUT)) === (await macOf(lab, 'fw2', 'eth0')) ? true : undefined), 3000);
    assert.match(await lab.probe('client1', ['http', `http://${VIP_OUT}/`]), /^web\d /);
    await lab.exec('client1', ['ip', 'neigh', 'flush', 'dev', 'eth0']);
    assert.match(await lab.probe('client1', ['http', `http://${VIP_OUT}/`]), /^web\d /, 'fw2 answers ARP for the VIP');
    assert.equal(await clientNeighbour(lab, VIP_OUT), await macOf(lab, 'fw2', 'eth0'));

    await lab.recover('fw1');
    await c.start('fw1');
    assert.equal(await c.groupState('fw1'), 'backup');
    await c.waitMaster('fw1', 5000);
    await waitFor('fw2 to step down', async () => ((await c.groupState('fw2')) === 'backup' ? true : undefined), 3000);
    assert.deepEqual(await holders(lab, FWS, VIP_OUT, 'eth0'), ['fw1']);
  });

  test("the master's outside link down: the whole group (inside VIP too) moves", async () => {
    await lab.linkDown('fw1', 'eth0');
    await c.waitMaster('fw2', 3000);
    assert.deepEqual(await holders(lab, FWS, VIP_IN, 'eth1'), ['fw2']);
    assert.deepEqual(await holders(lab, FWS, VIP_OUT, 'eth0'), ['fw2']);
    const st = await c.status('fw1');
    assert.equal(st.vrrp.groups[0]!.state, 'fault');
    await lab.linkUp('fw1', 'eth0');
    await c.waitMaster('fw1', 5000);
  });

  test('maintenance on demotes the master at once; off lets it take back', async () => {
    await controlCall(c.control('fw1'), 'maintenance', { on: true });
    await c.waitMaster('fw2', 2000);
    assert.equal(await c.groupState('fw1'), 'backup');
    const text = await lab.exec('fw1', [process.execPath, `${REPO_ROOT}/dist/src/cli/main.js`, 'status', '--control', c.control('fw1')]);
    assert.match(text, /maintenance: demoted by hand/);
    await controlCall(c.control('fw1'), 'maintenance', { on: false });
    await c.waitMaster('fw1', 5000);
  });

  test('reload: a firewall change keeps mastership; a VRRP change restarts VRRP with a handover and the node comes back', async () => {
    const cfg = c.config;
    const original = await readFile(cfg, 'utf8');
    const transitions = async () => (await c.status('fw1')).vrrp.groups[0]!.transitions;
    const t0 = await transitions();
    await writeFile(cfg, original.replace('  rules:\n', '  rules:\n    - allow: { proto: tcp, port: 2222, from: outside, to: self }\n'));
    const r1 = (await controlCall(c.control('fw1'), 'reload', undefined, 30_000)) as { ok: boolean; changed: boolean };
    assert.deepEqual(r1, { ok: true, changed: true });
    assert.equal(await transitions(), t0, 'a ruleset change does not touch VRRP');
    assert.equal(await c.groupState('fw1'), 'master');

    const zeros = async () => (await c.status('fw2')).vrrp.counters.priority_zero_received ?? 0;
    const z0 = await zeros();
    await writeFile(cfg, original.replace('advert_interval: 50ms', 'advert_interval: 60ms'));
    const r2 = (await controlCall(c.control('fw1'), 'reload', undefined, 30_000)) as { ok: boolean };
    assert.ok(r2.ok);
    await c.waitMaster('fw1', 5000);
    const st = await c.status('fw1');
    assert.equal(st.vrrp.groups[0]!.instances[0]!.advertIntervalMs, 60);
    assert.ok((await zeros()) > z0, 'fw1 handed over (priority 0) before restarting VRRP');
    await writeFile(cfg, original);
    await controlCall(c.control('fw1'), 'reload', undefined, 30_000);
    await c.waitMaster('fw1', 5000);
  });

  /** fw1 restarted with failpoints armed (FWLB_FAILPOINTS), master again (it preempts after 1 s), fw2 backup. */
  async function restartWithFailpoints(spec: string): Promise<void> {
    await lab.gracefulStop('fw1');
    await c.waitMaster('fw2', 5000);
    await c.start('fw1', { FWLB_FAILPOINTS: spec });
    await c.waitMaster('fw1', 15_000);
    await waitFor('fw2 backup', async () => ((await c.groupState('fw2')) === 'backup' ? true : undefined), 5000);
    await sleep(300);
  }

  /** fw1's ruleset as nft lists it (no counters). */
  const fw1Ruleset = () => lab.exec('fw1', ['nft', '-s', 'list', 'table', 'inet', 'fwlb']);

  /** A reload of fw1 with a firewall rule and a VRRP change at once; the file is put back after. */
  async function reloadRuleAndVrrp(port: number): Promise<{ ok: boolean; error?: string }> {
    const original = await readFile(c.config, 'utf8');
    await writeFile(c.config, original.replace('  rules:\n', `  rules:\n    - allow: { proto: tcp, port: ${port}, from: outside, to: self }\n`).replace('advert_interval: 50ms', 'advert_interval: 70ms'));
    try {
      return (await controlCall(c.control('fw1'), 'reload', undefined, 30_000)) as { ok: boolean; error?: string };
    } finally {
      await writeFile(c.config, original);
    }
  }

  /** An echo session through the VIP for `seconds`; its check: every line came back. */
  function echoSession(name: string, seconds: number): () => Promise<void> {
    const log = `${lab.stateDir}/${name}.log`;
    const session = lab.spawn('client1', [process.execPath, ECHO_SESSION_JS, '198.18.1.11', '7', '--every', '50', '--seconds', String(seconds)], { log });
    return async () => {
      await session.wait((seconds + 9) * 1000);
      const r = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { sent: number; echoed: number; error: string | null };
      assert.equal(r.error, null, JSON.stringify(r));
      assert.equal(r.echoed, r.sent, 'the session kept every line');
    };
  }

  test('a reload whose VRRP part fails (failpoint vrrp.prepare) is refused whole: ruleset, VIPs and sessions as they were, and it says why', async () => {
    await restartWithFailpoints('vrrp.prepare@2');
    const before = { ruleset: await fw1Ruleset(), out: await holders(lab, FWS, VIP_OUT, 'eth0'), in: await holders(lab, FWS, VIP_IN, 'eth1'), transitions: (await c.status('fw1')).vrrp.groups[0]!.transitions };
    assert.deepEqual(before.out, ['fw1']);
    const kept = echoSession('session-reload', 3);
    await sleep(500);
    // A firewall rule and a VRRP change at once: the rule must not be applied either.
    const r = await reloadRuleAndVrrp(2223);
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /^vrrp: failpoint vrrp\.prepare/, 'the reason names the part');
    await sleep(500);
    assert.equal(await fw1Ruleset(), before.ruleset, 'the ruleset is the one before the reload');
    assert.deepEqual(await holders(lab, FWS, VIP_OUT, 'eth0'), before.out);
    assert.deepEqual(await holders(lab, FWS, VIP_IN, 'eth1'), before.in);
    const st = await c.status('fw1');
    assert.equal(st.vrrp.groups[0]!.transitions, before.transitions, 'VRRP was not restarted');
    assert.equal(st.vrrp.groups[0]!.instances[0]!.advertIntervalMs, 50);
    assert.equal(st.reloads.failed, 1);
    assert.match(st.reloads.lastError ?? '', /vrrp: failpoint/);
    await kept();
    assert.match(await readFile(`${lab.stateDir}/fw1.daemon.log`, 'utf8'), /"event":"reload_failed".*vrrp: failpoint vrrp\.prepare/);
  });

  test('a reload whose VRRP commit fails half-way (failpoint vrrp.commit: after the handover) puts the running config back: ruleset and VRRP as before, the node master again, no session lost, and it says so', async () => {
    await restartWithFailpoints('vrrp.commit#2');
    const before = await fw1Ruleset();
    const kept = echoSession('session-reload-commit', 6);
    await sleep(500);
    // The rule is committed first, then VRRP hands over and fails before its new groups
    // start; both are put back.
    const r = await reloadRuleAndVrrp(2224);
    assert.equal(r.ok, false);
    assert.equal(r.error, 'vrrp: failpoint vrrp.commit (FWLB_FAILPOINTS); the running config was put back (vrrp, ruleset)');
    // Its old groups run again and take the VIPs back (preempt, after its delay).
    await c.waitMaster('fw1', 10_000);
    assert.equal(await fw1Ruleset(), before, 'the ruleset is the one before the reload');
    const st = await c.status('fw1');
    assert.equal(st.vrrp.groups[0]!.instances[0]!.advertIntervalMs, 50);
    assert.equal(st.reloads.failed, 1);
    assert.equal(st.reloads.ok, 0);
    await kept();
    assert.match(await readFile(`${lab.stateDir}/fw1.daemon.log`, 'utf8'), /"event":"reload_failed".*vrrp: failpoint vrrp\.commit/);
  });

  test('a tracked service with no healthy backend from the master lowers its priority: the peer takes over', async () => {
    await lab.gracefulStop('fw1');
    await lab.gracefulStop('fw2');
    const cfg = `${lab.stateDir}/track.yaml`;
    await writeFile(cfg, config({ preempt: 'true', track: ', services: [web], weight: -150', health: '    health: { http: { path: /healthz }, interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }\n' }).replace(/\n\s+notify: NOTIFY/, ''));
    c = new Cluster(lab, cfg);
    await c.start('fw1');
    await c.waitMaster('fw1');
    await c.start('fw2');
    await sleep(500);
    assert.equal(await c.groupState('fw2'), 'backup');
    // fw1 alone can no longer reach the web servers (its own health checks fail).
    await lab.exec('fw1', ['nft', 'add table ip cut; add chain ip cut out { type filter hook output priority 0; }; add rule ip cut out tcp dport 80 drop']);
    await c.waitMaster('fw2', 5000);
    // fw1 hears fw2's first advert and steps down (until then both say master).
    await waitFor('fw1 to step down', async () => ((await c.groupState('fw1')) === 'backup' ? true : undefined), 5000);
    const st = await c.status('fw1');
    assert.equal(st.vrrp.groups[0]!.instances[0]!.priority, 50, 'priority 200 - 150 while web has no available backend');
    assert.ok(st.services.find((x) => x.name === 'web')!.backends.every((b) => b.health === 'down'));
    await lab.exec('fw1', ['nft', 'delete table ip cut']);
    await c.waitMaster('fw1', 5000);
    assert.equal((await c.status('fw1')).vrrp.groups[0]!.instances[0]!.priority, 200);
  });
});

describe('three firewalls', () => {
  let lab: Lab;
  let c: Cluster;
  const FWS = ['fw1', 'fw2', 'fw3'];

  before(async () => {
    lab = await labUp({ prefix: 'tv3', topology: 'trio' });
    // Unicast adverts between the three (as where multicast is not allowed).
    await writeFile(`${lab.stateDir}/c.yaml`, config({ preempt: 'true', nodes: 3, priorities: [150, 200, 100], unicast: true }).replace(/\n\s+notify: NOTIFY/, ''));
    c = new Cluster(lab, `${lab.stateDir}/c.yaml`);
  });
  after(async () => {
    await labDown('tv3');
  });

  test('election by priority among three, unicast adverts; a crash of the master goes to the next in line', async () => {
    await Promise.all(FWS.map((fw) => c.start(fw)));
    await c.waitMaster('fw2');
    await sleep(300);
    assert.equal(await c.groupState('fw1'), 'backup');
    assert.equal(await c.groupState('fw3'), 'backup');
    assert.deepEqual(await holders(lab, FWS, VIP_OUT, 'eth0'), ['fw2']);
    await lab.crash('fw2');
    await c.waitMaster('fw1', 3000);
    await sleep(300);
    assert.equal(await c.groupState('fw3'), 'backup');
    assert.deepEqual(await holders(lab, ['fw1', 'fw3'], VIP_OUT, 'eth0'), ['fw1']);
    assert.deepEqual(await holders(lab, ['fw1', 'fw3'], VIP_IN, 'eth1'), ['fw1']);
  });
});
