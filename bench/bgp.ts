/**
 * BGP with ECMP (issue 26): four firewalls behind the lab's BIRD router (`fwlb lab up bgp`),
 * long TCP sessions and UDP flows from two clients to 198.18.30.100, and the changes of the
 * router's ECMP set one after the other: a node added, a node drained (stopped), a node
 * crashed, a node whose own health checks all fail. Per event: the time from the event to
 * the router's kernel route changing (its next hops polled every 10 ms), the flows the
 * router's hash moved from one surviving node to another (each client socket's next hop asked
 * of the router's kernel before and after: `ip route get` with its ports and the L4 hash), the
 * worst TCP stall and the UDP datagrams lost from the event until the next one.
 *
 * Systems, one after the other on the same lab and load:
 * - fwlb: examples/bgp.yaml (sharing, the state sync, fwlb driving each node's BIRD, the relay
 *   to the bucket's owner; drain with GRACEFUL_SHUTDOWN);
 * - plain: what one builds by hand: each node's BIRD announcing a static route of its own
 *   (written when the node is started, removed when it is drained: no readiness, no health, no
 *   drain tag, no kill switch), each node an independent NAT (fwlb's ruleset alone: maglev to
 *   the same backends, masquerade to its own inside address so the replies come back to it),
 *   no state sync: a flow the router moves lands on a node that never saw it.
 *
 *   node dist/bench/bgp.js [--tcp 250] [--udp 500] [--systems fwlb,plain] [--prefix bbgp] [--figures FILE]
 *
 * (--tcp and --udp per client; FWLB_KEEP_LAB=1 keeps the lab and its logs.) The lab's BIRDs run BFD beside each BGP session (100 ms x 5),
 * for both systems. Prints figures; never asserts.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { BGP_EDGE as EDGE, BGP_SERVICE as SERVICE, birdPaths, routerNextHops, writeBgpCluster } from '../src/lab/bird.js';
import { controlCall } from '../src/control/client.js';
import { REPO_ROOT, SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { num, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({
  options: {
    tcp: { type: 'string', default: '250' },
    udp: { type: 'string', default: '500' },
    systems: { type: 'string', default: 'fwlb,plain' },
    prefix: { type: 'string', default: 'bbgp' },
    /** Write the figures as JSON here (bench/figures.ts). */
    figures: { type: 'string' },
  },
});
const PREFIX = values.prefix!;
const TCP = Number(values.tcp);
const UDP = Number(values.udp);
const PHASE_MS = 6000;

type System = 'fwlb' | 'plain';
interface EventResult { id: string; event: string; changeMs: number | null; moved: number; of: number; tcpStall: number; udpLost: number }
interface SystemResult { events: EventResult[]; tcpKept: number; udpKept: number }

/** The cluster file of a plain node: fwlb's ruleset alone (no sharing, no sync, no BGP), masquerading to its own inside address. */
function plainCluster(base: string): string {
  const keep = base.split('\nsharing:')[0]!.replace('  key_file: cluster.key\n', '').replace(/\n    bgp: \{[^}]*\}/g, '');
  const services = base.slice(base.indexOf('\nservices:'));
  const rules = base.slice(base.indexOf('\nfirewall:\n  rules:\n') + '\nfirewall:\n'.length, base.indexOf('\nservices:'));
  return `${keep}\nfirewall:\n  nat:\n    - masquerade: { from: 198.18.0.0/24, out: inside }\n${rules}${services.replace(/\n    backends:/g, '\n    scheduler: maglev\n    backends:')}`;
}

const nextHops = async (lab: Lab): Promise<string> => (await routerNextHops(lab)).join(' ');

/** Every client socket to the service, and the next hop the router's hash gives it. */
async function hashOf(lab: Lab): Promise<Map<string, string>> {
  const lines: string[] = [];
  for (const [client, addr] of [['client1', '198.18.0.10'], ['client2', '198.18.0.11']] as const) {
    for (const [proto, flag] of [['tcp', '-Htn'], ['udp', '-Hun']] as const) {
      const out = await lab.exec(client, ['ss', flag, 'dst', SERVICE]);
      for (const m of out.matchAll(new RegExp(`${addr.replaceAll('.', '\\.')}:(\\d+)\\s+${SERVICE.replaceAll('.', '\\.')}:7`, 'g'))) lines.push(`${proto} ${addr} ${m[1]}`);
    }
  }
  const batch = lines.map((l) => {
    const [proto, from, sport] = l.split(' ');
    return `route get ${SERVICE} from ${from} iif eth0 ipproto ${proto} sport ${sport} dport 7`;
  });
  const out = (await lab.exec('rt', ['ip', '-batch', '-'], batch.join('\n') + '\n')).split('\n').filter((l) => l.startsWith(SERVICE));
  return new Map(lines.map((l, i) => [l, /via (\S+)/.exec(out[i] ?? '')?.[1] ?? '?']));
}

/** Flows whose next hop changed from one node that is still there to another. */
function moved(before: Map<string, string>, after: Map<string, string>, gone: string | undefined): { moved: number; of: number } {
  let n = 0;
  let of = 0;
  for (const [flow, hop] of before) {
    const now = after.get(flow);
    if (!now || hop === gone) continue;
    of++;
    if (now !== hop) n++;
  }
  return { moved: n, of };
}

async function runSystem(system: System): Promise<SystemResult> {
  const lab = await labUp({ prefix: PREFIX, topology: 'bgp' });
  try {
    const base = (await readFile(`${REPO_ROOT}/examples/bgp.yaml`, 'utf8')).replaceAll('/run/fwlb-lab/fwlb/', `${lab.stateDir}/`);
    const cfg = system === 'fwlb' ? await writeBgpCluster(lab, 50) : `${lab.stateDir}/plain.yaml`;
    if (system === 'plain') await writeFile(cfg, plainCluster(base));
    const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
    const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
    const announce = async (fw: string, on: boolean) => {
      const p = birdPaths(lab.stateDir, fw);
      await writeFile(p.include, on ? `protocol static fwlb4 { ipv4; route ${SERVICE}/32 blackhole; }\n` : '');
      await lab.exec(fw, ['birdcl', '-s', p.socket, 'configure']);
    };
    const start = async (fw: string) => {
      lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw)]);
      await waitFor(`${fw} ready`, async () => ((await status(fw).catch(() => undefined))?.ready.ready ? true : undefined), 30_000, 100);
      if (system === 'plain') await announce(fw, true);
    };
    for (const fw of ['fw1', 'fw2', 'fw3']) await start(fw);
    await waitFor('three next hops', async () => ((await nextHops(lab)).split(' ').length === 3 ? true : undefined), 20_000, 50);
    const seconds = Math.ceil((5 * PHASE_MS) / 1000) + 4;
    const runs = ['client1', 'client2'].flatMap((client) =>
      [false, true].map((udp) => {
        const log = `${lab.stateDir}/bgp-${system}-${client}-${udp ? 'udp' : 'tcp'}.log`;
        const args = [process.execPath, SESSIONS_JS, SERVICE, '7', ...(udp ? ['--udp'] : []), '--count', String(udp ? UDP : TCP), '--every', udp ? '200' : '100', '--seconds', String(seconds), '--grace', '8000', '--gaps', '150'];
        return { log, udp, h: lab.spawn(client, args, { log }) };
      }),
    );
    await sleep(PHASE_MS);
    const events: { id: string; name: string; at: number; gone?: string; act: () => Promise<unknown> }[] = [
      { id: 'added', name: 'node added (fw4)', at: 0, act: () => start('fw4') },
      { id: 'drained', name: 'node drained, stopped (fw2)', at: 0, gone: EDGE.fw2, act: async () => (system === 'plain' ? (await announce('fw2', false), await lab.gracefulStop('fw2', 20_000)) : lab.gracefulStop('fw2', 20_000)) },
      { id: 'crashed', name: 'node crashed (fw3)', at: 0, gone: EDGE.fw3, act: () => lab.crash('fw3') },
      { id: 'unhealthy', name: "a node's backends failing (fw1)", at: 0, gone: EDGE.fw1, act: () => lab.exec('fw1', ['nft', 'add table inet bbgp_probe; add chain inet bbgp_probe out { type filter hook output priority 0; }; add rule inet bbgp_probe out ip daddr 198.18.1.0/24 tcp dport { 7, 80 } drop']) },
    ];
    const out: { id: string; name: string; at: number; changeMs: number | null; moved: number; of: number }[] = [];
    for (const e of events) {
      const hops0 = await nextHops(lab);
      const before = await hashOf(lab);
      e.at = Date.now();
      const done = e.act();
      let changeMs: number | null = null;
      const t0 = performance.now();
      while (performance.now() - t0 < PHASE_MS) {
        if ((await nextHops(lab)) !== hops0) {
          changeMs = Math.round(performance.now() - t0);
          break;
        }
        await sleep(10);
      }
      await done;
      await sleep(Math.max(0, PHASE_MS - (performance.now() - t0)));
      out.push({ id: e.id, name: e.name, at: e.at, changeMs, ...moved(before, await hashOf(lab), e.gone) });
    }
    const results = await Promise.all(runs.map(async (r) => {
      await r.h.wait((seconds + 40) * 1000);
      return { udp: r.udp, res: JSON.parse((await readFile(r.log, 'utf8')).trim().split('\n').pop()!) as { kept: number; sessions: number; gaps?: [number, number][]; lostAt?: number[] } };
    }));
    console.log(`# ${system}: ${results.map((r) => `${r.udp ? 'UDP' : 'TCP'} ${r.res.kept}/${r.res.sessions} kept`).join(', ')}`);
    const kept = (udp: boolean) => results.filter((r) => r.udp === udp).reduce((n, r) => n + r.res.kept, 0);
    const perEvent = out.map((e, i) => {
      const end = out[i + 1]?.at ?? Infinity;
      const inWindow = (t: number) => t >= e.at && t < end;
      const tcpStall = Math.max(0, ...results.filter((r) => !r.udp).flatMap((r) => (r.res.gaps ?? []).filter(([t]) => inWindow(t)).map(([, l]) => l)));
      const udpLost = results.filter((r) => r.udp).reduce((n, r) => n + (r.res.lostAt ?? []).filter(inWindow).length, 0);
      return { id: e.id, event: e.name, changeMs: e.changeMs, moved: e.moved, of: e.of, tcpStall, udpLost };
    });
    return { events: perEvent, tcpKept: kept(false), udpKept: kept(true) };
  } finally {
    if (process.env.FWLB_KEEP_LAB) process.stderr.write(`lab ${PREFIX} kept: the sessions' and daemons' logs in ${lab.stateDir}\n`);
    else await labDown(PREFIX);
  }
}

const rows: string[][] = [];
const figures: Figure[] = [];
const conditions = `four nodes behind the lab's BIRD router (ECMP, BFD 100 ms x 5), ${2 * TCP} TCP sessions (a line every 100 ms) and ${2 * UDP} UDP flows (a datagram every 200 ms) from two clients, each event ${PHASE_MS / 1000} s after the last`;
for (const system of values.systems!.split(',') as System[]) {
  const r = await runSystem(system);
  const base = { conditions, system: system === 'fwlb' ? 'fwlb (BIRD driven, relay, sync)' : 'plain BIRD (static routes, no sync)', peer: system === 'plain' };
  figures.push(
    { ...base, id: 'bgp.tcp.kept', figure: 'TCP sessions kept through the four events', unit: `of ${2 * TCP}`, value: r.tcpKept },
    { ...base, id: 'bgp.udp.kept', figure: 'UDP flows kept through the four events', unit: `of ${2 * UDP}`, value: r.udpKept },
  );
  for (const e of r.events) {
    rows.push([system, e.event, e.changeMs === null ? 'no change' : `${e.changeMs} ms`, `${e.moved} of ${e.of}`, `${e.tcpStall} ms`, String(e.udpLost)]);
    figures.push(
      { ...base, id: `bgp.${e.id}.change`, figure: `${e.event}: the router's ECMP set changed after`, unit: 'ms', value: num(e.changeMs), resolution: 10 },
      { ...base, id: `bgp.${e.id}.stall`, figure: `${e.event}: worst TCP stall`, unit: 'ms', value: e.tcpStall, resolution: 100 },
      { ...base, id: `bgp.${e.id}.udplost`, figure: `${e.event}: UDP datagrams lost`, unit: 'datagrams', value: e.udpLost },
    );
  }
}
console.log(`\nBGP with ECMP: ${conditions}`);
console.log(table(['system', 'event', "router's ECMP set changed after", 'flows moved between surviving nodes', 'worst TCP stall', 'UDP datagrams lost'], rows));
await writeFigures(values.figures, 'bgp', figures);
