/**
 * The sharing data plane in a real kernel (root; issue 14, first part): three firewalls with
 * the compiled sharing ruleset, its ARP table and the bucket sets fwlb computes, and the
 * shared addresses on every firewall, set up here as the daemon will (no daemon yet). The
 * client and the servers resolve the shared addresses by ARP to the shared MACs; every
 * frame reaches every firewall, and each flow must be carried by exactly one of them, each
 * carrying a share.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { REPO_ROOT, SESSIONS_JS } from '../src/lab/paths.js';
import { parseConfig } from '../src/config/load.js';
import { nodeView } from '../src/config/node.js';
import { compileAliveGate, compileRulesetParts, sharedMacs } from '../src/compiler/ruleset.js';
import { compileSharingArp } from '../src/compiler/sharing-arp.js';
import { bucketOwners, defaultSeed, ownedMarks } from '../src/fsm/sharing.js';
import type { Config } from '../src/config/schema.js';

const PREFIX = 'tsd';
const FWS = ['fw1', 'fw2', 'fw3'];
const SESSIONS = 90;
let lab: Lab;
let config: Config;

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'trio' });
  const r = await parseConfig(await readFile(`${REPO_ROOT}/examples/active-active.yaml`, 'utf8'), 'active-active.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  config = r.value.config;
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

/** ESTABLISHED echo flows (to the shared address, port 7) in a firewall's conntrack table, by client port. */
async function flowsOn(fw: string): Promise<string[]> {
  const out = await lab.exec(fw, ['conntrack', '-L', '-p', 'tcp', '--orig-dst', '198.18.0.100', '--orig-port-dst', '7']);
  return out.split('\n').filter((l) => l.includes('ESTABLISHED')).map((l) => /sport=(\d+)/.exec(l)?.[1] ?? '?');
}

test('three firewalls, one shared address: every flow carried by exactly one of them, each carrying a share; the others drop its frames', async () => {
  const sh = config.sharing!;
  const seed = sh.seed ?? defaultSeed(config.cluster.name);
  const owners = bucketOwners(sh.buckets, FWS, seed);
  const macs = sharedMacs(config);
  for (const fw of FWS) {
    const parts = compileRulesetParts({ config, node: nodeView(config, fw), blocklist: [], sharedOwned: ownedMarks(owners, fw) });
    // The daemon holds the gate in a table it owns (gone with the process); here, a plain one.
    const gate = compileAliveGate(config).replace('\tflags owner\n', '');
    await lab.exec(fw, ['nft', '-f', '-'], parts.script + compileSharingArp(config, nodeView(config, fw)) + gate);
    // The NIC takes frames to the shared MACs (a veth does anyway; a real NIC needs this),
    // and every node holds the shared addresses.
    await lab.exec(fw, ['ip', 'maddr', 'add', macs.outside!, 'dev', 'eth0']);
    await lab.exec(fw, ['ip', 'maddr', 'add', macs.inside!, 'dev', 'eth1']);
    await lab.exec(fw, ['ip', 'address', 'add', '198.18.0.100/24', 'dev', 'eth0']);
    await lab.exec(fw, ['ip', 'address', 'add', '198.18.1.1/24', 'dev', 'eth1']);
  }
  for (const h of ['client1', 'web1', 'web2']) await lab.exec(h, ['ip', 'neigh', 'flush', 'all']);
  // The client resolves the shared address by ARP: to the shared MAC, whichever node answered.
  await lab.probe('client1', ['connect', '198.18.0.100', '7']).catch(() => undefined);
  const neigh = await lab.exec('client1', ['ip', 'neigh', 'show', '198.18.0.100']);
  assert.match(neigh, new RegExp(`lladdr ${macs.outside}`), `the client resolved the shared address to ${neigh.trim()}`);

  const log = `${lab.stateDir}/sessions.log`;
  const h = lab.spawn('client1', [process.execPath, SESSIONS_JS, '198.18.0.100', '7', '--count', String(SESSIONS), '--every', '100', '--seconds', '6'], { log });
  await new Promise((r) => setTimeout(r, 3000));
  const carried = Object.fromEntries(await Promise.all(FWS.map(async (fw) => [fw, await flowsOn(fw)] as const)));
  await h.wait(20_000);
  const r = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { connected: number; kept: number; lost: number };
  assert.equal(r.connected, SESSIONS);
  assert.equal(r.kept, SESSIONS, `sessions lost through the shared address: ${JSON.stringify(r)}`);

  const all = FWS.flatMap((fw) => carried[fw]!);
  assert.equal(all.length, SESSIONS, `each flow on exactly one firewall: ${JSON.stringify(Object.fromEntries(FWS.map((fw) => [fw, carried[fw]!.length])))}`);
  assert.equal(new Set(all).size, SESSIONS, 'no flow on two firewalls');
  for (const fw of FWS) {
    assert.ok(carried[fw]!.length > 0, `${fw} carries none of ${SESSIONS} flows`);
    const drops = await lab.exec(fw, ['nft', 'list', 'counter', 'inet', 'fwlb', 'shared_others']);
    const n = Number(/packets (\d+)/.exec(drops)?.[1] ?? 0);
    assert.ok(n > 0, `${fw} dropped no frame of another node's bucket`);
  }
  const webNeigh = await lab.exec('web1', ['ip', 'neigh', 'show', '198.18.1.1']);
  assert.match(webNeigh, new RegExp(`lladdr ${macs.inside}`), `the server resolved its gateway to ${webNeigh.trim()}`);
  console.log(`# shares of ${SESSIONS} flows: ${FWS.map((fw) => `${fw} ${carried[fw]!.length}`).join(', ')}`);
});
