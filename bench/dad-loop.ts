/**
 * IPv6 VIPs through many takeovers (issue 22): the pair of examples/dual-stack.yaml, and a loop
 * in which the master's daemon is killed with -9 (its kernel keeps the VIPs: for a moment both
 * nodes hold them, the overlap in which duplicate address detection would mark the new
 * master's copy `dadfailed`, unreachable), the backup takes over, and the killed daemon starts
 * again (it removes its stale VIPs, then follows as backup). After every takeover the new
 * master's IPv6 VIPs are read from the kernel: any `tentative` or `dadfailed` is counted, and
 * an IPv6 connection to the VIP must be answered. Duplicate address detection is on on both
 * firewalls' links (the lab turns it off elsewhere). Prints the counts and the takeover times.
 *
 *   node dist/bench/dad-loop.js [--count 500] [--prefix bdad] [--figures FILE]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { labUp, labDown } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '500' }, prefix: { type: 'string', default: 'bdad' }, figures: { type: 'string' } } });
const COUNT = Number(values.count);
const VIP6 = ['2001:2::100', 'fe80::1', '2001:2:1::1'];

interface AddrInfo {
  local: string;
  tentative?: boolean;
  dadfailed?: boolean;
}

async function main(): Promise<void> {
  const lab = await labUp({ prefix: values.prefix!, topology: 'sandwich' });
  try {
    const cfg = await writeSyncedCluster(lab, await readFile(`${REPO_ROOT}/examples/dual-stack.yaml`, 'utf8'));
    for (const fw of ['fw1', 'fw2']) for (const dev of ['eth0', 'eth1']) await lab.exec(fw, ['sysctl', '-qw', `net.ipv6.conf.${dev}.accept_dad=1`]);
    const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
    const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
    const start = async (fw: string) => {
      lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'warn']);
      await waitFor(`${fw} ready`, async () => ((await status(fw).catch(() => undefined))?.ready.ready ? true : undefined), 20_000);
    };
    const state = async (fw: string) => (await status(fw).catch(() => undefined))?.vrrp.groups[0]?.state;
    const v6 = async (fw: string): Promise<AddrInfo[]> => {
      const out: AddrInfo[] = [];
      for (const dev of ['eth0', 'eth1']) out.push(...(JSON.parse(await lab.exec(fw, ['ip', '-j', '-6', 'addr', 'show', 'dev', dev])) as { addr_info: AddrInfo[] }[]).flatMap((l) => l.addr_info).filter((a) => VIP6.includes(a.local)));
      return out;
    };
    // Both at once: neither waits for a peer to sync from.
    lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1'), '--log-level', 'warn']);
    await start('fw2');
    let tentative = 0;
    let dadfailed = 0;
    let unanswered = 0;
    const takeovers: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      // One master and one backup (the restarted node may preempt meanwhile: whichever is master goes).
      const master = await waitFor('one master, one backup', async () => {
        const [a, b] = [await state('fw1'), await state('fw2')];
        return a === 'master' && b === 'backup' ? 'fw1' : b === 'master' && a === 'backup' ? 'fw2' : undefined;
      }, 15_000);
      const other = master === 'fw1' ? 'fw2' : 'fw1';
      const t0 = performance.now();
      await lab.daemonKill(master);
      await waitFor(`${other} master (takeover ${i + 1})`, async () => ((await state(other)) === 'master' ? true : undefined), 5000);
      takeovers.push(performance.now() - t0);
      // The VIPs are added just after the state changes (rtnetlink, in order): all four, fe80::1 on both links.
      const held = await waitFor(`${other} to hold every IPv6 VIP (takeover ${i + 1})`, async () => {
        const h = await v6(other);
        return h.length >= 4 ? h : undefined;
      }, 2000);
      tentative += held.filter((a) => a.tentative).length;
      dadfailed += held.filter((a) => a.dadfailed).length;
      const echo = await lab.probe('client1', ['echo', '2001:2::100', '7', 'x']).catch(() => '');
      if (echo.trim() !== 'x') unanswered++;
      await start(master);
      if ((i + 1) % 50 === 0) console.error(`${i + 1} takeovers: tentative ${tentative}, dadfailed ${dadfailed}, unanswered ${unanswered}`);
    }
    takeovers.sort((a, b) => a - b);
    const p = (q: number) => takeovers[Math.min(takeovers.length - 1, Math.floor(q * takeovers.length))]!;
    console.log(`\n${COUNT} takeovers of the IPv6 VIPs by kill -9 of the master's daemon (its kernel keeps the VIPs: an overlap each time), DAD on`);
    console.log(table(['VIPs tentative', 'VIPs dadfailed', 'IPv6 echo unanswered', 'takeover p50 ms', 'p99 ms', 'max ms'], [[String(tentative), String(dadfailed), String(unanswered), p(0.5).toFixed(0), p(0.99).toFixed(0), takeovers.at(-1)!.toFixed(0)]]));
    const base = { conditions: `${COUNT} kill -9 takeovers, examples/dual-stack.yaml, DAD on the firewalls' links`, system: 'fwlb', peer: false };
    const figures: Figure[] = [
      { ...base, id: 'dad-loop.tentative', figure: 'IPv6 VIPs found tentative after a takeover', unit: 'addresses', value: tentative },
      { ...base, id: 'dad-loop.dadfailed', figure: 'IPv6 VIPs found dadfailed after a takeover', unit: 'addresses', value: dadfailed },
      { ...base, id: 'dad-loop.unanswered', figure: 'IPv6 echo to the VIP unanswered after a takeover', unit: 'probes', value: unanswered },
    ];
    await writeFigures(values.figures, 'dad-loop', figures);
  } finally {
    await labDown(values.prefix!);
  }
}

await main();
