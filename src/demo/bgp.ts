/**
 * `fwlb demo --bgp` (issue 26): beyond one segment. Four firewalls behind a BIRD router
 * (`fwlb lab up bgp`): each node's fwlb drives its own BIRD, which announces the service
 * address 198.18.30.100 to the router by BGP while the node is ready and the service has a
 * backend; the router spreads the clients' flows over the announcing nodes by its ECMP hash.
 * The nodes share the flows by bucket and relay a packet the router sent to a node that does
 * not own its bucket to the owner (examples/bgp.yaml). Long TCP sessions and UDP flows from
 * two clients run while the router's ECMP set changes four times: a node added, a node
 * drained (GRACEFUL_SHUTDOWN, then withdrawn and stopped), a node crashed (its BIRD with it:
 * BFD), a node whose own health checks all fail. The report draws the router's next hops per
 * node over time (sampled from its kernel route) and says how long each change took.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { controlCall } from '../control/client.js';
import { labUp, type Lab } from '../lab/lab.js';
import { BGP_EDGE, BGP_SERVICE, hopAddedAt, monitorRouterRoutes, readyAt, routerBfdSessions, routerNextHops, writeBgpCluster } from '../lab/bird.js';
import { CLI_MAIN_JS, SESSIONS_JS } from '../lab/paths.js';
import type { NodeStatus } from '../services/node-daemon.js';
import { waitFor } from '../lib/wait.js';
import { checkRuns } from './active-active.js';
import { demoChecks, endDemo, writeDemoReport, type DemoOptions } from './demo.js';
import type { BucketTimeline } from './report.js';

const FWS = ['fw1', 'fw2', 'fw3', 'fw4'];
/** Per client. */
const TCP = 150;
const UDP = 300;
const SAMPLE_MS = 100;
/** Between one event's end and the next: the flows run on a settled set for a while. */
const SETTLE_MS = 2500;

export async function runBgpDemo(o: DemoOptions): Promise<boolean> {
  const { checks, check } = demoChecks(o);
  const timeline: BucketTimeline = { name: "the router's ECMP next hops for 198.18.30.100", nodes: FWS, buckets: FWS.length, unit: 'next hop', source: "in the router's kernel route", lanes: true, samples: [], marks: [] };
  let lab: Lab | undefined;
  let sampling = false;
  try {
    o.out(`building the lab "${o.prefix}": client1, client2 -- rt (BIRD, ECMP) -- [fw1 .. fw4, BIRD on each] -- web1, web2, web3; a sync switch between the firewalls`);
    lab = await labUp({ prefix: o.prefix, topology: 'bgp' });
    const l = lab;
    const cfg = await writeBgpCluster(l, 50);
    const routes = monitorRouterRoutes(l);
    const control = (fw: string) => `${l.stateDir}/${fw}.sock`;
    const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
    const ready = (fw: string) => waitFor('', async () => ((await status(fw).catch(() => undefined))?.ready.ready ? true : undefined), 30_000, 100).catch(() => undefined);
    const hopsOf = (fws: readonly string[]) => fws.map((f) => BGP_EDGE[f]!).sort().join();
    /** Waits for the router's set to be `fws`; the ms it took, or undefined. */
    const routerSet = async (fws: readonly string[], ms = 15_000) => {
      const t0 = performance.now();
      const ok = await waitFor('', async () => ((await routerNextHops(l)).join() === hopsOf(fws) ? true : undefined), ms, 20).catch(() => undefined);
      return ok ? Math.round(performance.now() - t0) : undefined;
    };
    /** A node's route reached the router only once the node said it was ready. */
    const afterReady = async (fw: string, since: number) => {
      const [r, h] = [await readyAt(l, fw), await hopAddedAt(routes, BGP_EDGE[fw]!, since)];
      return { ok: r !== undefined && h !== undefined && h >= r - 5, text: r !== undefined && h !== undefined ? `its route reached the router ${h - r} ms after it said it was ready` : 'no ready line or no route seen' };
    };

    for (const fw of FWS) {
      const r = await l.execRaw(fw, [process.execPath, CLI_MAIN_JS, 'check', '-c', cfg, '--node', fw]);
      check(`fwlb check --node ${fw}`, r.status === 0, (r.stdout || r.stderr).trim().split('\n')[0] ?? '');
    }
    const t0 = Date.now();
    for (const fw of FWS.slice(0, 3)) l.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw)]);
    for (const fw of FWS.slice(0, 3)) await ready(fw);
    const up = await routerSet(FWS.slice(0, 3), 20_000);
    const first = await Promise.all(FWS.slice(0, 3).map(async (fw) => [fw, await afterReady(fw, t0)] as const));
    check('fw1, fw2, fw3 announce the service once ready', up !== undefined && first.every(([, a]) => a.ok), up === undefined ? "the router's ECMP set never held all three" : first.map(([fw, a]) => `${fw}: ${a.text}`).join('; '));

    const runs = ['client1', 'client2'].flatMap((client) =>
      [false, true].map((udp) => {
        const log = `${l.stateDir}/bgp-${client}-${udp ? 'udp' : 'tcp'}.log`;
        const args = [process.execPath, SESSIONS_JS, BGP_SERVICE, '7', ...(udp ? ['--udp'] : []), '--count', String(udp ? UDP : TCP), '--every', '500', '--seconds', '34', '--grace', '8000'];
        return { client, vip: BGP_SERVICE, udp, log, h: l.spawn(client, args, { log }) };
      }),
    );
    o.out(`traffic: ${2 * TCP} long TCP sessions and ${2 * UDP} UDP flows to ${BGP_SERVICE}:7 from two clients through the router, a message every 500 ms each`);

    const tStart = performance.now();
    const since = () => Math.round(performance.now() - tStart);
    sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const hops = await routerNextHops(l).catch(() => undefined);
        if (hops) (timeline.samples as BucketTimeline['samples'][number][]).push({ t: since(), owned: Object.fromEntries(FWS.map((fw) => [fw, hops.includes(BGP_EDGE[fw]!) ? 1 : 0])) });
        await sleep(SAMPLE_MS);
      }
    })();
    const mark = (label: string) => (timeline.marks as { t: number; label: string }[]).push({ t: since(), label });
    await sleep(4000);

    mark('fw4 started');
    const t4 = Date.now();
    l.startDaemon('fw4', ['run', '-c', cfg, '--node', 'fw4', '--control', control('fw4')]);
    const added = await routerSet(FWS);
    const a4 = await afterReady('fw4', t4);
    check('fw4 added: announced once ready', added !== undefined && a4.ok, added === undefined ? 'the router never took fw4' : `in the router's set ${added} ms after its start; ${a4.text}`);
    await sleep(SETTLE_MS);

    mark('fw2 drained');
    const stopped = l.gracefulStop('fw2', 20_000);
    const drained = await routerSet(['fw1', 'fw3', 'fw4']);
    const end = await stopped;
    check('fw2 drained, then stopped', drained !== undefined && end.code === 0, drained === undefined ? 'the router kept fw2' : `tagged GRACEFUL_SHUTDOWN: out of the router's set after ${drained} ms (LOCAL_PREF 0), withdrawn after the 2 s drain; its daemon ended with code ${end.code}`);
    await sleep(SETTLE_MS);

    // BFD up between the router and each node still running (a node's own ruleset must let
    // the router's BFD in: examples/bgp.yaml's rules), else a crash waits for BGP's hold time.
    const bfd = await routerBfdSessions(l);
    const live = ['fw1', 'fw3', 'fw4'];
    check('BFD up between the router and every running node', live.every((fw) => bfd[BGP_EDGE[fw]!] === 'Up'), live.map((fw) => `${fw} ${bfd[BGP_EDGE[fw]!] ?? 'none'}`).join(', '));
    mark('fw3 crashed');
    await l.crash('fw3');
    const crashed = await routerSet(['fw1', 'fw4'], 10_000);
    check('fw3 crashed: the router drops it', crashed !== undefined, crashed === undefined ? 'the router kept fw3' : `${crashed} ms after the crash (BFD between the router's BIRD and fw3's: 100 ms x 5)`);
    await sleep(SETTLE_MS);

    // fw1's own probes to the servers dropped: the servers are fine, fw1 sees every backend down.
    mark('fw1 backends down');
    await l.exec('fw1', ['nft', `add table inet ${o.prefix}_probe; add chain inet ${o.prefix}_probe out { type filter hook output priority 0; }; add rule inet ${o.prefix}_probe out ip daddr 198.18.1.0/24 tcp dport { 7, 80 } drop`]);
    const failed = await routerSet(['fw4']);
    const why = (await status('fw1').catch(() => undefined))?.bgp?.why ?? '?';
    check("fw1's health checks fail: it withdraws", failed !== undefined, failed === undefined ? 'the router kept fw1' : `${failed} ms after its probes were cut (fall 2 x 500 ms); fw1 says: ${why}`);
    await sleep(SETTLE_MS);
    sampling = false;
    await sampler;

    await checkRuns(runs, check, "four changes of the router's ECMP set");
  } catch (e) {
    check('demo', false, (e as Error).message);
  }
  sampling = false;
  await writeDemoReport(o, { title: 'fwlb demo: four firewalls behind a BGP router, its ECMP set changed four times', checks, failovers: [], buckets: [timeline] }, "the router's next hops per node over time");
  return endDemo(o, lab, checks);
}

