/**
 * Interop with keepalived (Debian's 2.2.7, started by the test): fwlb on fw1 and keepalived
 * on fw2 in one virtual router, VRRPv3 and VRRPv2, and VRRPv3 over IPv6 (issue 22: adverts
 * from each side's link-local address, the link-local virtual address first). The right
 * master is elected and the addresses fail over both ways.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { controlCall } from '../src/control/client.js';
import { Keepalived } from '../src/lab/keepalived.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { runRaw } from '../src/lib/exec.js';
import { CLI_MAIN_JS, REPO_ROOT } from '../src/lab/paths.js';

const VIP = '198.18.0.100';
const VIP6 = '2001:2::100';
let lab: Lab;


async function holders(vip = VIP): Promise<string[]> {
  const out: string[] = [];
  for (const fw of ['fw1', 'fw2']) {
    const info = JSON.parse(await lab.exec(fw, ['ip', '-j', 'addr', 'show', 'dev', 'eth0'])) as { addr_info: { local: string }[] }[];
    if (info.some((l) => l.addr_info.some((a) => a.local === vip))) out.push(fw);
  }
  return out;
}

const heldBy = (fw: string, timeoutMs: number, vip = VIP) => waitFor(`${vip} on ${fw} alone`, async () => ((await holders(vip)).join() === fw ? true : undefined), timeoutMs);

function fwlbConfig(version: 2 | 3, priority: number): string {
  return `cluster: { name: interop }
nodes:
  fw1: { priority: ${priority}, addresses: { outside: 198.18.0.2/24, inside: 198.18.1.2/24, sync: 198.18.2.1/24 } }
  fw2: { priority: 100, addresses: { outside: 198.18.0.3/24, inside: 198.18.1.3/24, sync: 198.18.2.2/24 } }
interfaces: { outside: eth0, inside: eth1, sync: eth2 }
vrrp:
  version: ${version}
  advert_interval: ${version === 3 ? '100ms' : '1s'}
  preempt: true
  groups:
    edge:
      instances:
        ext: { interface: outside, vrid: 51, addresses: [${VIP}/24] }
`;
}

async function startFwlb(version: 2 | 3, priority: number, ipv6 = false) {
  const cfg = `${lab.stateDir}/v${version}-${priority}${ipv6 ? '-ipv6' : ''}.yaml`;
  await writeFile(cfg, ipv6 ? fwlbConfig(3, priority).replace(`addresses: [${VIP}/24]`, `addresses: [fe80::1/64, ${VIP6}/64]`) : fwlbConfig(version, priority));
  const control = `${lab.stateDir}/fw1.sock`;
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control, '--log-level', 'debug']);
  await waitFor('fwlb to run', async () => ((await controlCall(control, 'status')) as NodeStatus).vrrp.groups[0]?.state, 10_000);
  return {
    status: async () => ((await controlCall(control, 'status')) as NodeStatus).vrrp.groups[0]!.instances[0]!,
  };
}

before(async () => {
  lab = await labUp({ prefix: 'tka', topology: 'sandwich' });
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown('tka');
});

for (const version of [3, 2] as const) {
  const advertInt = version === 3 ? 0.1 : 1;
  // Master_Down_Interval is about 3.6 advert intervals: allow a margin.
  const mdi = Math.ceil(advertInt * 1000 * 4 + 1500);

  test(`VRRPv${version}: keepalived master -> fwlb (higher priority) preempts -> graceful stop hands back -> keepalived crash hands to fwlb`, async () => {
    const ka = await Keepalived.start(lab, 'fw2', {
      routerId: 'fw2',
      version,
      instances: [{ name: 'EXT', iface: 'eth0', vrid: 51, priority: 100, advertInt, vips: [`${VIP}/24`] }],
    });
    await heldBy('fw2', mdi + 2000);

    // fwlb with a higher priority preempts keepalived; fwlb learned keepalived's adverts first.
    let fwlb = await startFwlb(version, 200);
    await heldBy('fw1', mdi);
    const st = await fwlb.status();
    assert.equal(st.state, 'master');
    assert.equal(st.version, version);
    await sleep(Math.max(500, advertInt * 3000));
    assert.deepEqual(await holders(), ['fw1'], 'keepalived stays backup under fwlb');

    // Graceful stop of fwlb: priority 0, keepalived takes over after its skew time.
    await lab.gracefulStop('fw1');
    await heldBy('fw2', 2000);

    // fwlb back with a lower priority: it follows keepalived as backup.
    fwlb = await startFwlb(version, 50);
    await sleep(Math.max(600, advertInt * 3000));
    assert.equal((await fwlb.status()).state, 'backup');
    assert.equal((await fwlb.status()).master?.address, '198.18.0.3');
    assert.deepEqual(await holders(), ['fw2']);

    // keepalived crashes (no priority 0): fwlb takes over after Master_Down_Interval.
    await ka.crash();
    await lab.exec('fw2', ['ip', 'addr', 'del', `${VIP}/24`, 'dev', 'eth0']); // the crashed node's leftover
    await waitFor('fwlb master', async () => ((await fwlb.status()).state === 'master' ? true : undefined), mdi);
    assert.deepEqual(await holders(), ['fw1']);
    await lab.gracefulStop('fw1');
  });
}

test('VRRPv3 over IPv6: keepalived master -> fwlb (higher priority) preempts -> graceful stop hands back -> keepalived crash hands to fwlb; each side\'s adverts from its link-local address', async () => {
  const mdi = 1900;
  const ka = await Keepalived.start(lab, 'fw2', {
    routerId: 'fw2',
    version: 3,
    instances: [{ name: 'EXT6', iface: 'eth0', vrid: 51, priority: 100, advertInt: 0.1, vips: ['fe80::1/64', `${VIP6}/64`] }],
  });
  await heldBy('fw2', mdi + 2000, VIP6);
  const kaLinkLocal = (JSON.parse(await lab.exec('fw2', ['ip', '-j', 'addr', 'show', 'dev', 'eth0'])) as { addr_info: { family: string; scope: string; local: string }[] }[])
    .flatMap((l) => l.addr_info)
    .find((a) => a.family === 'inet6' && a.scope === 'link' && a.local !== 'fe80::1')?.local;

  let fwlb = await startFwlb(3, 200, true);
  await heldBy('fw1', mdi, VIP6);
  assert.equal((await fwlb.status()).state, 'master');
  await sleep(500);
  assert.deepEqual(await holders(VIP6), ['fw1'], 'keepalived stays backup under fwlb');

  await lab.gracefulStop('fw1');
  await heldBy('fw2', 2000, VIP6);

  fwlb = await startFwlb(3, 50, true);
  await sleep(600);
  const st = await fwlb.status();
  assert.equal(st.state, 'backup');
  assert.equal(st.master?.address, kaLinkLocal, "keepalived's adverts come from its link-local address, and fwlb follows it");
  assert.deepEqual(await holders(VIP6), ['fw2']);

  await ka.crash();
  for (const a of ['fe80::1/64', `${VIP6}/64`]) await lab.execRaw('fw2', ['ip', 'addr', 'del', a, 'dev', 'eth0']); // the crashed node's leftovers
  await waitFor('fwlb master', async () => ((await fwlb.status()).state === 'master' ? true : undefined), mdi);
  assert.deepEqual(await holders(VIP6), ['fw1']);
  await lab.gracefulStop('fw1');
});

test('fwlb import of the peer reference (keepalived + conntrackd, two nodes): fwlb check accepts the file, and in the lab it elects the master keepalived elects, with the same VIPs', async () => {
  // The peer reference's four files (test/fixtures: copies of ../shared/peer-reference),
  // moved onto this lab's names: ext0/int0/sync0 -> eth0/eth1/eth2, and its subnets
  // 198.18.1/2/3.0/24 -> the lab's 198.18.0/1/2.0/24. Nothing else is changed.
  const toLab = (t: string) =>
    t.replaceAll('198.18.1.', '198.18.0.').replaceAll('198.18.2.', '198.18.1.').replaceAll('198.18.3.', '198.18.2.').replaceAll('ext0', 'eth0').replaceAll('int0', 'eth1').replaceAll('sync0', 'eth2');
  const dir = `${lab.stateDir}/import`;
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const f of ['fw1.keepalived.conf', 'fw2.keepalived.conf', 'fw1.conntrackd.conf', 'fw2.conntrackd.conf']) {
    await writeFile(`${dir}/${f}`, toLab(await readFile(`${REPO_ROOT}/test/fixtures/keepalived/peer-reference/${f}`, 'utf8')));
    files.push(`${dir}/${f}`);
  }
  const cfg = `${dir}/cluster.yaml`;
  const own = ['pb-fw1:eth0=198.18.0.2/24', 'pb-fw1:eth1=198.18.1.2/24', 'pb-fw2:eth0=198.18.0.3/24', 'pb-fw2:eth1=198.18.1.3/24'].flatMap((a) => ['-a', a]);
  const imp = await runRaw(process.execPath, [CLI_MAIN_JS, 'import', ...files, ...own, '-o', cfg]);
  assert.equal(imp.status, 0, imp.stderr);
  assert.equal((await runRaw(process.execPath, [CLI_MAIN_JS, 'keygen', '-o', `${dir}/cluster.key`])).status, 0);
  const node = { fw1: 'pb-fw1', fw2: 'pb-fw2' } as const;
  for (const fw of ['fw1', 'fw2'] as const) {
    const r = await lab.execRaw(fw, [process.execPath, CLI_MAIN_JS, 'check', '-c', cfg, '-n', node[fw]]);
    assert.equal(r.status, 0, `fwlb check -n ${node[fw]} on ${fw}: ${r.stdout}${r.stderr}`);
  }
  const VIPS = ['198.18.0.1/24', '198.18.1.1/24'];
  const held = async () => {
    const out: Record<string, string[]> = {};
    for (const fw of ['fw1', 'fw2']) {
      const info = JSON.parse(await lab.exec(fw, ['ip', '-j', '-4', 'addr', 'show'])) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[];
      out[fw] = info.flatMap((i) => i.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).filter((a) => VIPS.includes(a)).sort();
    }
    return out;
  };
  const settled = async () => {
    const h = await held();
    return Object.values(h).flat().length === VIPS.length && Object.values(h).filter((v) => v.length > 0).length === 1 ? h : undefined;
  };

  const ka = await Promise.all((['fw1', 'fw2'] as const).map(async (fw) => Keepalived.startText(lab, fw, await readFile(`${dir}/${fw}.keepalived.conf`, 'utf8'))));
  const byKeepalived = await waitFor('keepalived to elect a master holding both VIPs', settled, 15_000);
  for (const k of ka) await k.stop();
  await waitFor('keepalived\'s VIPs gone', async () => (Object.values(await held()).flat().length === 0 ? true : undefined), 10_000);

  const control = (fw: string) => `${lab.stateDir}/import-${fw}.sock`;
  for (const fw of ['fw1', 'fw2'] as const) lab.startDaemon(fw, ['run', '-c', cfg, '--node', node[fw], '--control', control(fw)]);
  try {
    const master = async () => {
      const st = (await controlCall(control('fw1'), 'status').catch(() => undefined)) as NodeStatus | undefined;
      return st?.vrrp.groups[0]?.state === 'master' ? settled() : undefined;
    };
    const byFwlb = await waitFor('fwlb to elect a master holding both VIPs', master, 20_000);
    assert.deepEqual(byFwlb, byKeepalived, 'the same master with the same VIPs');
    assert.deepEqual(byFwlb.fw1, VIPS, 'pb-fw1 (priority 150) is master, as with keepalived');
  } finally {
    for (const fw of ['fw1', 'fw2']) await lab.gracefulStop(fw).catch(() => undefined);
  }
});
