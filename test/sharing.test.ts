/**
 * Active-active sharing with the daemons (root; issue 14): three fwlb nodes carry the shared
 * address at once, each the flows of its own buckets. Long-lived TCP sessions and UDP flows
 * through it; one node fails (a crash: links down and processes killed; its daemon killed
 * with -9; a graceful stop): nothing is lost, only its buckets move and the survivors split
 * them; it comes back and takes its own back, again without losing anything.
 *
 * Who carries what is read from the kernels: each node's owned-bucket set, each flow's bucket
 * in its conntrack mark, and each node's counter of the shared packets it forwarded.
 *
 * IPv6 beside IPv4 (issue 22): the example shares 2001:2::100 too (and the servers' gateway
 * fe80::1), answered in neighbour discovery with the shared MAC; client1 runs IPv6 sessions
 * and flows through every scenario, and the crash checks that they are split between the
 * nodes by bucket like the IPv4 ones.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, REPO_ROOT, SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { ownedBuckets } from '../src/lab/sharing-churn.js';
import { measureShares, sharesText } from '../src/lab/shares.js';

const PREFIX = 'tsh';
const FWS = ['fw1', 'fw2', 'fw3'] as const;
const VIP = '198.18.0.100';
const VIP6 = '2001:2::100';
/** From client1, over IPv6, beside the IPv4 ones. */
const TCP6 = 100;
const UDP6 = 300;
/**
 * Per client: 300 TCP sessions (600 in all) and 1,500 UDP flows (3,000), each sending every
 * second. A node's share of the packets is a share of the flows, and the flows fall into
 * buckets at random: with 3,600 flows one node's share has a standard deviation of 0.8% of
 * the whole, so "within 10% of a third" (3.3% of the whole) is four of them. (Every 500 ms,
 * the clients, the echo servers and the forwarding of three nodes held both CPUs of the
 * 2-core lab machine as the daemons started: the clients stalled themselves up to a second,
 * the nodes' BEATs came up to 220 ms apart (75 ms detection) and the nodes took each other's
 * buckets back and forth, which made the shares uneven and a status call wait 5 s.)
 */
const TCP_PER_CLIENT = 300;
const UDP_PER_CLIENT = 1500;
const EVERY_MS = 1000;
/**
 * BEATs every 50 ms, a peer gone after 250 ms of silence (the default is 15 ms x 5 = 75 ms).
 * In this lab the BEATs cross veth pairs: each waits in the kernel's per-CPU backlog behind
 * the data packets queued there, and the thread that sends one processes that backlog in its
 * send (on a real NIC the receiving side does). With the clients' 3,600 flows starting at
 * once on the 2-core machine, a round of BEATs took up to 55 ms to send and BEATs came up
 * to 130 ms apart with the daemons' own timers on time (V8's collector on the daemons' own
 * threads, adapters/reexec.ts; before that, up to 710 ms). At 75 ms the nodes judged each
 * other gone 10-40 times in the first seconds (at 200 ms, once in three runs: 201 ms of
 * silence as the flows started), took each other's buckets back and forth, and
 * a flow that started on a node whose kernel raced the sync's record of it was held with
 * another NAT port (a conflict the sync refuses: a hole the test saw 1 run in 3). The
 * detection time is the operator's to size to the host (README, liveness): this is this
 * lab's.
 */
const BEAT_MS = 50;
let lab: Lab;
let cfg: string;

const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
const start = (fw: string) => lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw)]);

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'trio' });
  const base = await readFile(`${REPO_ROOT}/examples/active-active.yaml`, 'utf8');
  const line = 'state_sync: { interface: sync, port: 3780 }';
  assert.ok(base.includes(line), 'the example names its state sync as this test expects');
  cfg = await writeSyncedCluster(lab, base.replace(line, `state_sync: { interface: sync, port: 3780, liveness: { interval: ${BEAT_MS}, multiplier: 5 } }`));
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

/** The buckets (conntrack marks) a node's kernel says it owns. */
const ownedSet = (fw: string) => ownedBuckets(lab, fw);

/** The shared flows in a node's conntrack table: original source port -> mark. */
async function flowMarks(fw: string, family: 4 | 6 = 4): Promise<Map<string, number>> {
  const out = await lab.exec(fw, ['conntrack', '-L', '-f', family === 4 ? 'ipv4' : 'ipv6', '--orig-dst', family === 4 ? VIP : VIP6]);
  const flows = new Map<string, number>();
  for (const line of out.split('\n')) {
    const proto = /^(tcp|udp)/.exec(line)?.[1];
    const sport = /sport=(\d+)/.exec(line)?.[1];
    const src = /src=(\S+)/.exec(line)?.[1];
    const mark = /mark=(\d+)/.exec(line)?.[1];
    if (proto && sport && src && mark) flows.set(`${proto} ${src}:${sport}`, Number(mark));
  }
  return flows;
}

const reading = async (fw: string) => (await status(fw)).sharing!.packets;

/** Every live node sees the same members and the kernels' owned sets split the buckets between them. */
async function converged(live: readonly string[]): Promise<Map<string, Set<number>> | undefined> {
  for (const fw of live) {
    const s = (await status(fw)).sharing;
    if (!s || s.members.join() !== [...live].sort().join()) return undefined;
  }
  const sets = new Map<string, Set<number>>();
  for (const fw of live) sets.set(fw, await ownedSet(fw));
  const total = [...sets.values()].reduce((n, s) => n + s.size, 0);
  const union = new Set([...sets.values()].flatMap((s) => [...s]));
  return total === 4096 && union.size === 4096 ? sets : undefined;
}

/**
 * Each node's part of the shared packets over about 2 s, from its own counter: rates over
 * the times the nodes stamped their readings (src/lab/shares.ts), since a daemon busy with a
 * burst of new flows answers a status call up to a second late.
 */
async function assertEvenShares(live: readonly string[], what: string): Promise<void> {
  const s = await measureShares(live, 2000, reading, sleep);
  assert.ok(s.total > 1000, `${what}: only ${s.total} packets counted`);
  if (s.worst <= 0.1) return;
  // Uneven: were the flows split unevenly (the hash), or did some of a node's flows carry less?
  const sets = new Map(await Promise.all(live.map(async (fw) => [fw, await ownedSet(fw)] as const)));
  const flows = await flowMarks(live[0]!);
  const per = Object.fromEntries(live.map((fw) => [fw, { tcp: 0, udp: 0 }]));
  for (const [flow, mark] of flows) {
    const owner = live.find((fw) => sets.get(fw)!.has(mark));
    if (owner) per[owner]![flow.startsWith('tcp') ? 'tcp' : 'udp']++;
  }
  const drops = await Promise.all(live.map(async (fw) => `${fw} ${JSON.stringify((await status(fw)).sharing!.packets)}`));
  assert.fail(`${what}: ${sharesText(s)}; furthest ${(s.worst * 100).toFixed(1)}% off an equal share; flows by carrier (${live[0]}'s table) ${JSON.stringify(per)}; counters now ${drops.join(', ')}`);
}

interface SessionsResult { sessions: number; connected: number; kept: number; lost: number; worstStallMs: number | null; lostWhy: unknown[]; datagramsLost?: number }

/** Starts the sessions on both clients; returns a function that waits for them and checks none was lost. */
function traffic(tag: string, seconds: number): () => Promise<SessionsResult[]> {
  const plan = [
    ...['client1', 'client2'].flatMap((client) => [
      { client, vip: VIP, udp: false, count: TCP_PER_CLIENT },
      { client, vip: VIP, udp: true, count: UDP_PER_CLIENT },
    ]),
    { client: 'client1', vip: VIP6, udp: false, count: TCP6 },
    { client: 'client1', vip: VIP6, udp: true, count: UDP6 },
  ];
  const runs = plan.map((p) => {
    const log = `${lab.stateDir}/${tag}-${p.client}-${p.udp ? 'udp' : 'tcp'}${p.vip === VIP6 ? '6' : ''}.log`;
    const args = [process.execPath, SESSIONS_JS, p.vip, '7', ...(p.udp ? ['--udp'] : []), '--count', String(p.count), '--every', String(EVERY_MS), '--seconds', String(seconds)];
    return { log, h: lab.spawn(p.client, args, { log }) };
  });
  return async () => {
    const out: SessionsResult[] = [];
    for (const r of runs) {
      await r.h.wait((seconds + 30) * 1000);
      const res = JSON.parse((await readFile(r.log, 'utf8')).trim().split('\n').pop()!) as SessionsResult;
      out.push(res);
      assert.equal(res.connected, res.sessions, `${r.log}: not every session connected: ${JSON.stringify(res)}`);
      assert.equal(res.lost, 0, `${r.log}: sessions lost: ${JSON.stringify(res)}`);
    }
    return out;
  };
}

/** Which node carries each flow, from its mark and the kernels' owned sets. */
function carriers(flows: Map<string, number>, sets: Map<string, Set<number>>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [flow, mark] of flows) {
    const owners = [...sets].filter(([, s]) => s.has(mark)).map(([fw]) => fw);
    assert.equal(owners.length, 1, `flow ${flow} (bucket mark ${mark}) is owned by ${owners.join(', ') || 'nobody'}`);
    out.set(flow, owners[0]!);
  }
  return out;
}

async function failAndRejoin(failure: 'crash' | 'kill' | 'graceful' | 'link', victim: string): Promise<void> {
  const live = FWS.filter((f) => f !== victim);
  const sets0 = await waitFor('three members', () => converged(FWS), 30_000);
  // The entries of the scenario before (closing, or UDP not timed out yet) go: every session ended.
  for (const fw of FWS) await lab.exec(fw, ['conntrack', '-F']).catch(() => undefined);
  const wait = traffic(failure, 24);
  await sleep(4000);
  await assertEvenShares(FWS, `${failure}: three nodes`);
  const flows = await flowMarks('fw1');
  if (flows.size < 2 * (TCP_PER_CLIENT + UDP_PER_CLIENT)) {
    // Which flows fw1 lacks, and whether the others hold them (a sync hole or a flow not started).
    const others = await Promise.all(['fw2', 'fw3'].map(async (fw) => [fw, await flowMarks(fw)] as const));
    const lacking = [...new Set(others.flatMap(([, m]) => [...m.keys()]))].filter((f) => !flows.has(f));
    const where = lacking.slice(0, 10).map((f) => `${f} (mark ${others.map(([fw, m]) => `${fw} ${m.get(f) ?? '-'}`).join(', ')})`);
    const conflicts = await Promise.all(FWS.map(async (fw) => `${fw}: ${JSON.stringify((await status(fw)).sync?.lastConflicts ?? [])}`));
    assert.fail(`fw1 holds ${flows.size} shared flows of ${2 * (TCP_PER_CLIENT + UDP_PER_CLIENT)}; fw2 ${others[0]![1].size}, fw3 ${others[1]![1].size}; held elsewhere, not on fw1: ${lacking.length}: ${where.join('; ')}; owned sets ${FWS.map((fw) => `${fw} ${sets0.get(fw)!.size}`).join(', ')}; the sync's last records refused for an entry of the kernel's own: ${conflicts.join('; ')}`);
  }
  for (const fw of ['fw2', 'fw3']) assert.ok((await flowMarks(fw)).size >= flows.size * 0.99, `${fw} does not hold the others' flows`);
  const before = carriers(flows, sets0);
  if (failure === 'crash') await checkIPv6(sets0);

  if (failure === 'crash') await lab.crash(victim);
  else if (failure === 'kill') await lab.daemonKill(victim);
  else if (failure === 'link') await lab.linkDown(victim, 'eth0', { cable: true });
  else await lab.gracefulStop(victim);
  const t0 = performance.now();
  const sets1 = await waitFor(`${victim}'s buckets moved`, () => converged(live), 5000, 10);
  const movedMs = Math.round(performance.now() - t0);
  if (failure === 'link') {
    // It runs on, carrying nothing, and says why.
    assert.equal((await ownedSet(victim)).size, 0, `${victim} still owns buckets with its outside link down`);
    const st = (await status(victim)).sharing!;
    assert.equal(st.ready, false);
    assert.deepEqual(st.linksDown, ['eth0']);
  }
  // Only the victim's buckets moved, and they went to both survivors.
  for (const fw of live) for (const b of sets0.get(fw)!) assert.ok(sets1.get(fw)!.has(b), `${fw} lost its own bucket ${b}`);
  const gained = live.map((fw) => sets1.get(fw)!.size - sets0.get(fw)!.size);
  for (const g of gained) assert.ok(g > sets0.get(victim)!.size * 0.35, `the victim's ${sets0.get(victim)!.size} buckets split ${gained.join(' / ')}`);
  const after1 = carriers(flows, sets1);
  let moved = 0;
  for (const [flow, fw] of before) {
    if (fw === victim) moved++;
    else assert.equal(after1.get(flow), fw, `flow ${flow} of ${fw} changed node`);
  }
  assert.ok(moved > 0);
  await sleep(1500);
  await assertEvenShares(live, `${failure}: two nodes`);

  // The node comes back, syncs, and takes its own buckets back.
  if (failure === 'crash') await lab.recover(victim);
  if (failure === 'link') await lab.linkUp(victim, 'eth0');
  else start(victim);
  const sets2 = await waitFor(`${victim} back`, () => converged(FWS), 30_000);
  for (const fw of FWS) assert.deepEqual([...sets2.get(fw)!].sort(), [...sets0.get(fw)!].sort(), `${fw} does not own what it owned before`);
  await sleep(1000);
  await assertEvenShares(FWS, `${failure}: three nodes again`);

  const results = await wait();
  console.log(`# ${failure} of ${victim}: buckets moved ${movedMs} ms after (as the test saw it), ${moved} flows moved; worst stall tcp/udp ${results.map((r) => r.worstStallMs).join(' / ')} ms; datagrams lost ${results.map((r) => r.datagramsLost ?? '-').join(' / ')}`);
}

/**
 * IPv6 through the shared address: client1 learnt the shared MAC for it (the kernel's
 * advertisement rewritten, its checksum updated: a client drops one with a bad checksum), and
 * the IPv6 flows are held by every node and split between them by bucket.
 */
async function checkIPv6(sets: Map<string, Set<number>>): Promise<void> {
  const macs = (await status('fw1')).sharing!.macs;
  const nd = await lab.exec('client1', ['ip', '-6', 'neigh', 'show', VIP6]);
  assert.equal(/lladdr (\S+)/.exec(nd)?.[1], macs.outside, `client1's neighbour entry for ${VIP6}: ${nd.trim() || 'none'}`);
  const gw = await lab.exec('web1', ['ip', '-6', 'neigh', 'show', 'fe80::1']);
  assert.equal(/lladdr (\S+)/.exec(gw)?.[1], macs.inside, `web1's neighbour entry for its gateway fe80::1: ${gw.trim() || 'none'}`);
  const flows6 = await flowMarks('fw1', 6);
  assert.ok(flows6.size >= TCP6 + UDP6, `fw1 holds ${flows6.size} IPv6 flows to ${VIP6} of ${TCP6 + UDP6}`);
  for (const fw of ['fw2', 'fw3']) assert.ok((await flowMarks(fw, 6)).size >= flows6.size * 0.99, `${fw} does not hold the IPv6 flows`);
  const by = new Map<string, number>();
  for (const fw of carriers(flows6, sets).values()) by.set(fw, (by.get(fw) ?? 0) + 1);
  assert.deepEqual([...by.keys()].sort(), [...FWS], `IPv6 flows by carrier: ${JSON.stringify(Object.fromEntries(by))}`);
}

test('three nodes share: a crashed node\'s buckets move to the survivors, nothing is lost, it takes them back', async () => {
  for (const fw of FWS) start(fw);
  await failAndRejoin('crash', 'fw3');
});

test('a node loses the carrier of a link with shared addresses: it gives up its buckets until the link is back, nothing is lost', async () => {
  await failAndRejoin('link', 'fw3');
});

test('a daemon killed with -9: its gate goes with it, its buckets move, nothing is lost', async () => {
  await failAndRejoin('kill', 'fw2');
});

test('a graceful stop hands the buckets over without a loss', async () => {
  await failAndRejoin('graceful', 'fw1');
});

test('a node\'s sync link breaks: the BEATs still cross the shared links, so nobody takes its buckets (no bucket carried twice)', async () => {
  const sets0 = await waitFor('three members', () => converged(FWS), 30_000);
  const downs0 = Object.fromEntries(await Promise.all(FWS.map(async (fw) => [fw, (await status(fw)).sharing!.moves] as const)));
  await lab.linkDown('fw3', 'eth2', { cable: true });
  try {
    // Four detection times (250 ms) without the sync link.
    for (let i = 0; i < 10; i++) {
      await sleep(100);
      for (const fw of FWS) assert.deepEqual((await status(fw)).sharing!.members, [...FWS], `${fw}'s members with fw3's sync link down`);
    }
    for (const fw of FWS) assert.equal((await status(fw)).sharing!.moves, downs0[fw], `${fw}'s buckets moved`);
    for (const fw of FWS) assert.deepEqual([...(await ownedSet(fw))].sort(), [...sets0.get(fw)!].sort());
    // What an operator sees: the text status and the metrics.
    const text = await lab.exec('fw3', [process.execPath, CLI_MAIN_JS, 'status', '--control', control('fw3')]);
    assert.match(text, /sharing {2}ready; 3 member\(s\): fw1, fw2, fw3/);
    assert.match(text, new RegExp(`owns ${sets0.get('fw3')!.size} of 4096 buckets`));
    const m = (await controlCall(control('fw3'), 'metrics')) as string;
    assert.match(m, new RegExp(`^fwlb_sharing_buckets_owned\\{[^}]*\\} ${sets0.get('fw3')!.size}$`, 'm'));
    assert.match(m, /^fwlb_sharing_packets_total\{[^}]*verdict="carried"[^}]*\} [1-9]/m);
    // The cluster events' view: ready, both peers up, and the events counted by type.
    assert.match(m, /^fwlb_cluster_ready\{[^}]*\} 1$/m);
    assert.match(m, /^fwlb_cluster_peers\{[^}]*state="up"[^}]*\} 2$/m);
    assert.match(m, /^fwlb_cluster_events_total\{[^}]*type="peer_up"[^}]*\} [1-9]/m);
    assert.ok(((await status('fw3')).role?.eventCounts?.buckets_owned ?? 0) > 0, 'status counts the events by type');
  } finally {
    await lab.linkUp('fw3', 'eth2');
  }
});

test('transit (the firewall sandwich: no address of ours) is shared; servers going out are SNATed to the shared address in the port range of the node that carries them', async () => {
  const sets = await waitFor('three members', () => converged(FWS), 30_000);
  // Sessions straight to a server through the shared gateway: no NAT at all.
  const log = `${lab.stateDir}/transit.log`;
  const h = lab.spawn('client1', [process.execPath, SESSIONS_JS, '198.18.1.13', '7', '--count', '90', '--every', '100', '--seconds', '4'], { log });
  await sleep(2000);
  const marks = new Map<string, number>();
  for (const line of (await lab.exec('fw1', ['conntrack', '-L', '-p', 'tcp', '--orig-dst', '198.18.1.13', '--orig-port-dst', '7'])).split('\n')) {
    const sport = /sport=(\d+)/.exec(line)?.[1];
    const mark = /mark=(\d+)/.exec(line)?.[1];
    if (sport && mark && line.includes('ESTABLISHED')) marks.set(sport, Number(mark));
  }
  await h.wait(30_000);
  const r = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as SessionsResult;
  assert.equal(r.kept, 90, `transit sessions: ${JSON.stringify(r)}`);
  const by = carriers(new Map([...marks].map(([k, v]) => [`tcp ${k}`, v])), sets);
  const count = (fw: string) => [...by.values()].filter((x) => x === fw).length;
  for (const fw of FWS) assert.ok(count(fw) > 0, `${fw} carries none of ${by.size} transit flows (${FWS.map((f) => `${f} ${count(f)}`).join(', ')})`);

  // Servers going out: SNAT to the shared address, within the port range of the node that
  // owns the flow's bucket (its outer endpoint: the remote address and port).
  const ranges: Record<string, readonly [number, number]> = { fw1: [1024, 22527], fw2: [22528, 44031], fw3: [44032, 65535] };
  for (const [web, client, address] of [['web1', 'client1', '198.18.0.10'], ['web2', 'client2', '198.18.0.11']] as const) {
    const out = (await lab.probe(web, ['read', address, '8'])).trim();
    const port = Number(/^\S+ 198\.18\.0\.100:(\d+)/.exec(out)?.[1]);
    assert.ok(port > 0, `${client} saw ${out}, not the shared address`);
    const entry = (await lab.exec('fw1', ['conntrack', '-L', '-p', 'tcp', '--orig-dst', address, '--orig-port-dst', '8', '--reply-port-dst', String(port)])).split('\n').find((l) => l.includes('mark='));
    const mark = Number(/mark=(\d+)/.exec(entry ?? '')?.[1]);
    const owner = FWS.find((fw) => sets.get(fw)!.has(mark));
    assert.ok(owner, `no owner for the outbound flow's bucket (entry: ${entry})`);
    const r = ranges[owner]!;
    assert.ok(port >= r[0] && port <= r[1], `${web} -> ${client}:8 went out as port ${port}, outside ${owner}'s range ${r.join('-')}`);
  }

  // A reload that changes the ruleset (a delta) leaves the owned buckets alone.
  const original = await readFile(cfg, 'utf8');
  const before = (await status('fw1')).reloads.ok;
  await writeFile(cfg, original.replace('  rules:\n', '  rules:\n    - allow: { proto: tcp, port: 2222, from: outside, to: self }\n'));
  try {
    lab.daemon('fw1')!.kill('SIGHUP');
    await waitFor('fw1 reloaded', async () => ((await status('fw1')).reloads.ok > before ? true : undefined), 10_000);
    const st = await status('fw1');
    assert.equal(st.ruleset.applyMode, 'delta');
    assert.deepEqual([...(await ownedSet('fw1'))].sort(), [...sets.get('fw1')!].sort(), 'the owned buckets after a reload');
    assert.equal(st.sharing!.owned, sets.get('fw1')!.size);
  } finally {
    await writeFile(cfg, original);
  }
});

test('regression (issue 20, seed 21548): three nodes started at once while 200 sessions open through them, six times: none lost', async () => {
  // At a cold start every node owns every bucket until it hears the others, so each forwards
  // and replicates the same new flows for a moment, and records of one flow come from two
  // nodes out of order; a node also joins before every peer's records reach it. Before the
  // fix, one start in four lost sessions: a stale record set the new owner's entry back to
  // SYN_SENT, or its entry came from a record after the handshake and never moved on.
  const ROUNDS = 6;
  for (const fw of FWS) if (lab.daemon(fw)) await lab.gracefulStop(fw, 30_000);
  const failures: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const fw of FWS) await lab.exec(fw, ['conntrack', '-F']).catch(() => undefined);
    for (const fw of FWS) start(fw);
    const clients = ['client1', 'client2'].map((c) => {
      const log = `${lab.stateDir}/${c}-coldstart-${round}.log`;
      return { c, log, h: lab.spawn(c, [process.execPath, SESSIONS_JS, VIP, '7', '--count', '100', '--every', '50', '--seconds', '86400', '--grace', '4000'], { log }) };
    });
    await sleep(7000);
    for (const x of clients) x.h.kill('SIGUSR2');
    for (const x of clients) {
      await x.h.wait(30_000);
      const r = JSON.parse((await readFile(x.log, 'utf8')).trim().split('\n').pop()!) as { sessions: number; connected: number; lost: number; lostWhy: unknown[] };
      if (r.lost > 0 || r.connected !== r.sessions) failures.push(`round ${round}, ${x.c}: ${r.lost} of ${r.sessions} lost, ${r.connected} connected (${JSON.stringify(r.lostWhy.slice(0, 2))})`);
    }
    for (const fw of FWS) await lab.gracefulStop(fw, 30_000);
  }
  assert.deepEqual(failures, []);
  for (const fw of FWS) start(fw);
  await waitFor('three members again', () => converged(FWS), 30_000);
});
