/**
 * Failover gap: a client opens a new connection to the VIP every 5 ms (HTTP through the
 * DNAT to the web servers, so the inside VIP, the servers' gateway, must move too) while
 * the master fails: switched (its processes killed, then the node silent with its links up:
 * a hung or powered-off node behind a switch, no carrier change anywhere), crash (every link
 * down first, the sync cable's carrier with them, then every process killed), link down (the
 * master's outside link), graceful stop. Printed per system: the longest gap between successful
 * probes and the failed probes. The data plane is fwlb's ruleset on both firewalls in every
 * run; only the VRRP engine differs: fwlb at its defaults, keepalived 2.2.7 at 1 s (v2)
 * and 0.1 s (v3) adverts, both with a sync group of the two VIPs.
 *
 *   node dist/bench/failover.js [--modes switched,crash,link,graceful] [--systems fwlb,ka1,ka01,ka01bfd] [--family 4|6] [--soak-minutes 0] [--soak-entry-timeout 30] [--keep-logs DIR]
 *
 * --family 6: the same over IPv6 (issue 22): each system runs an IPv6 virtual router beside
 * each IPv4 one in the same sync group (examples/dual-stack.yaml's layout; keepalived the
 * same), and the client's connections go to the IPv6 VIP, through the IPv6 DNAT to the
 * servers' IPv6 addresses; the backup counts as master once it holds the IPv6 VIPs.
 *
 * --soak-minutes N: afterwards, fwlb alone for N minutes with both CPUs saturated by busy
 * loops, counting failovers that should not happen. Prints figures; never asserts.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { Keepalived, sandwichKeepalived } from '../src/lab/keepalived.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, CT_TOOL_JS, PROBER_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { benchClusterYaml, num, table, writeFigures, type Figure } from './util.js';
import { waitFor } from '../src/lib/wait.js';
import { probeGaps, type ProbeRecord } from '../src/lab/probe-stats.js';

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'switched,crash,link,graceful' },
    systems: { type: 'string', default: 'fwlb,ka1,ka01' },
    family: { type: 'string', default: '4' },
    'soak-minutes': { type: 'string', default: '0' },
    'soak-entry-timeout': { type: 'string', default: '30' },
    /** Copy the soak's daemon logs here before the lab goes. */
    'keep-logs': { type: 'string' },
    prefix: { type: 'string', default: 'bfo' },
    /** Write the figures as JSON here (bench/figures.ts). */
    figures: { type: 'string' },
  },
});
const figures: Figure[] = [];
const PROBE_EVERY_MS = 5;
const PREFIX = values.prefix!;
const V6 = values.family === '6';
if (!['4', '6'].includes(values.family!)) throw new Error('--family: 4 or 6');
const VIP_OUT = V6 ? '2001:2::100' : '198.18.0.100';
const VIP_IN = V6 ? '2001:2:1::1' : '198.18.1.1';
/** The figures' ids: `failover6.*` over IPv6 (never compared with the IPv4 ones). */
const ID = V6 ? 'failover6' : 'failover';

/** The bench cluster, and over IPv6 its IPv6 virtual routers and service beside the IPv4 ones. */
function clusterYaml(name: string): string {
  const base = benchClusterYaml({ name });
  if (!V6) return base;
  return (
    base.replace(
      '        int: { interface: inside, vrid: 52, addresses: [198.18.1.1/24] }\n',
      '        int: { interface: inside, vrid: 52, addresses: [198.18.1.1/24] }\n        ext6: { interface: outside, vrid: 51, addresses: [fe80::1/64, 2001:2::100/64] }\n        int6: { interface: inside, vrid: 52, addresses: [fe80::1/64, 2001:2:1::1/64] }\n',
    ) + '  web6:\n    listen: "[2001:2::100]:80/tcp"\n    backends: { web1: { address: "[2001:2:1::11]:80" }, web2: { address: "[2001:2:1::12]:80" } }\n'
  );
}

type System = 'fwlb' | 'ka1' | 'ka01' | 'ka01bfd';
type Mode = 'switched' | 'crash' | 'link' | 'graceful';
const LABEL: Record<System, string> = {
  fwlb: 'fwlb (defaults: v3, 100 ms)',
  ka1: 'keepalived v2, advert 1 s',
  ka01: 'keepalived v3, advert 0.1 s',
  ka01bfd: 'keepalived v3, advert 0.1 s, BFD 10 ms x 5',
};

interface Running {
  stop(fw: string): Promise<void>;
  isMaster(fw: string): Promise<boolean>;
  transitions?(fw: string): Promise<number>;
}

async function holds(lab: Lab, fw: string): Promise<boolean> {
  const r = await lab.execRaw(fw, ['ip', '-j', 'addr', 'show', 'dev', 'eth1']);
  return r.status === 0 && r.stdout.includes(`"${VIP_IN}"`) && (await lab.execRaw(fw, ['ip', '-j', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(`"${VIP_OUT}"`);
}

async function startSystem(lab: Lab, sys: System): Promise<Running> {
  const cfg = `${lab.stateDir}/cluster.yaml`;
  // fwlb as deployed: a cluster key, so the state sync and its liveness BEATs run.
  await writeFile(`${lab.stateDir}/cluster.key`, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  await writeFile(cfg, clusterYaml('bench').replace('cluster: { name: bench }', sys === 'fwlb' ? 'cluster: { name: bench, key_file: cluster.key }' : 'cluster: { name: bench }'));
  if (sys === 'fwlb') {
    const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
    for (const fw of ['fw1', 'fw2']) {
      lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', values['keep-logs'] ? 'info' : 'warn']);
      await waitFor(`${fw} to run`, async () => ((await controlCall(control(fw), 'status')) as NodeStatus).vrrp.groups[0]?.state, 10_000);
    }
    const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
    return {
      stop: async (fw) => void (await lab.gracefulStop(fw)),
      isMaster: async (fw) => (await status(fw)).vrrp.groups[0]?.state === 'master',
      transitions: async (fw) => (await status(fw)).vrrp.groups[0]?.transitions ?? -1,
    };
  }
  // keepalived: the same ruleset (fwlb's compiler), keepalived for VRRP.
  for (const fw of ['fw1', 'fw2']) {
    const rules = await lab.exec(fw, [process.execPath, CLI_MAIN_JS, 'ruleset', '-c', cfg, '--node', fw]);
    await lab.exec(fw, ['nft', '-f', '-'], rules);
    // keepalived's BFD (UDP 3784) between the nodes on the sync link.
    if (sys === 'ka01bfd') await lab.exec(fw, ['nft', 'insert', 'rule', 'inet', 'fwlb', 'input', 'iifname', 'eth2', 'udp', 'dport', '3784', 'accept']);
  }
  const advertInt = sys === 'ka1' ? 1 : 0.1;
  const kas = new Map<string, Keepalived>();
  for (const fw of ['fw1', 'fw2'] as const) {
    // The most keepalived 2.2.7 does with BFD for a backup (its source: a BFD event never
    // makes a backup master before Master_Down_Interval; the tracked priority only moves
    // Skew_Time): `weight -99 reverse` lifts fw2 to 199 while the session is down (below
    // fw1's 200, so a sync-link failure alone does not preempt a live fw1), shortening its
    // Skew_Time from 61 to 22 ms. fw1 runs the session untracked (tracked, it would go
    // FAULT when fw2 dies).
    const bfd =
      sys !== 'ka01bfd'
        ? undefined
        : fw === 'fw2'
          ? { neighbor: '198.18.2.1', source: '198.18.2.2', minRxMs: 10, minTxMs: 10, multiplier: 5, track: { weight: -99, reverse: true } }
          : { neighbor: '198.18.2.2', source: '198.18.2.1', minRxMs: 10, minTxMs: 10, multiplier: 5 };
    const ka = sandwichKeepalived(fw, { version: sys === 'ka1' ? 2 : 3, advertInt, ...(bfd ? { bfd } : {}) });
    if (V6) {
      const priority = ka.instances[0]!.priority;
      ka.instances.push({ name: 'EXT6', iface: 'eth0', vrid: 51, priority, advertInt, vips: ['fe80::1/64', '2001:2::100/64'] }, { name: 'INT6', iface: 'eth1', vrid: 52, priority, advertInt, vips: ['fe80::1/64', '2001:2:1::1/64'] });
    }
    kas.set(fw, await Keepalived.start(lab, fw, ka));
  }
  return { stop: (fw) => kas.get(fw)!.stop(), isMaster: (fw) => holds(lab, fw) };
}

async function run(sys: System, mode: Mode): Promise<string[]> {
  const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  try {
    const r = await startSystem(lab, sys);
    await waitFor('fw1 to be master', async () => (await r.isMaster('fw1')) || undefined, 15_000);
    await sleep(sys === 'ka1' ? 3000 : 1000); // settle: the backup has seen the master
    if (sys === 'ka01bfd') {
      // Say whether keepalived's BFD session came up (its log), so the figure is not of a dead session.
      const ka = await readFile(`${lab.stateDir}/fw2.keepalived.log`, 'utf8').catch(() => '');
      const bfd = ka.split('\n').filter((l) => /BFD|bfd/.test(l) && /Up|UP|Down|DOWN|state/.test(l)).slice(-2);
      console.error(`# keepalived BFD on fw2: ${bfd.join(' | ') || 'no BFD state line in its log'}`);
    }
    const seconds = sys === 'ka1' ? 9 : 5;
    const log = `${lab.stateDir}/prober.log`;
    const prober = lab.spawn('client1', [process.execPath, PROBER_JS, VIP_OUT, '80', '--every', String(PROBE_EVERY_MS), '--seconds', String(seconds), '--mode', 'http', '--timeout', '400'], { log });
    await sleep(1500);
    if (mode === 'crash') await lab.crash('fw1');
    else if (mode === 'switched') await lab.crashSwitched('fw1');
    else if (mode === 'link') await lab.linkDown('fw1', 'eth0');
    else await r.stop('fw1');
    await prober.wait((seconds + 10) * 1000);
    const { probes } = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { probes: ProbeRecord[] };
    const g = probeGaps(probes);
    const took = await r.isMaster('fw2');
    const MODE: Record<Mode, string> = { switched: 'switched crash (processes killed, then silent, links up)', crash: 'crash (links down, then processes)', link: 'the master\'s outside link down', graceful: 'graceful stop' };
    const base = { conditions: `a new HTTP connection to the ${V6 ? 'IPv6 ' : ''}VIP every ${PROBE_EVERY_MS} ms (DNAT), ${MODE[mode]}`, system: LABEL[sys], peer: sys !== 'fwlb' };
    figures.push(
      { ...base, id: `${ID}.${mode}.gap`, figure: `longest gap between answered connections, ${mode}`, unit: 'ms', value: num(g.gap), resolution: PROBE_EVERY_MS },
      { ...base, id: `${ID}.${mode}.failed`, figure: `failed connections, ${mode}`, unit: 'connections', value: g.failed },
    );
    return [LABEL[sys], mode, g.gap.toFixed(0), String(g.failed), String(g.total), took ? 'yes' : 'NO'];
  } finally {
    await labDown(PREFIX);
  }
}

/** Steal time of each CPU since boot, ms (/proc/stat, USER_HZ 100). */
function stealMs(): number[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[8] ?? 0) * 10);
}

async function soak(minutes: number): Promise<void> {
  const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  try {
    const r = await startSystem(lab, 'fwlb');
    await waitFor('fw1 to be master', async () => (await r.isMaster('fw1')) || undefined, 15_000);
    // fw2 ready and backup (its startup transitions are not failovers), liveness up.
    await waitFor('fw2 ready', async () => {
      const s = (await controlCall(`${lab.stateDir}/fw2.sock`, 'status')) as NodeStatus;
      return s.ready.ready && s.vrrp.groups[0]?.state === 'backup' && s.liveness?.peers[0]?.state === 'up' ? true : undefined;
    }, 30_000);
    await sleep(1000);
    const t1 = await r.transitions!('fw1');
    const t2 = await r.transitions!('fw2');
    // Two busy loops, one per core, in the client's namespace (killed by PID with the lab);
    // a sync burst: 5,000 new conntrack entries a second on the master, replicated to the
    // backup; status polled every 50 ms on both nodes.
    const burners = [0, 1].map(() => lab.spawn('client1', [process.execPath, '-e', 'for(;;){}']));
    // Entries of 30 s: about 150,000 at once, under the table's limit. (--soak-entry-timeout
    // 600 fills the table within a minute: the cluster's own traffic takes no entry, see the
    // ruleset's notrack, so the nodes still hear each other.)
    const burst = lab.spawn('fw1', [process.execPath, CT_TOOL_JS, 'create', '--count', String(minutes * 60 * 5000), '--rate', '5000', '--entry-timeout', values['soak-entry-timeout']!, '--quiet']);
    const start = Date.now();
    let lost = 0;
    let polls = 0;
    let polling = true;
    // The host's steal per CPU (a VM's vCPU not run): a timer of a SCHED_RR thread that fires
    // 100 ms late on an idle-to-it CPU points there. Sampled with each status round.
    const stealStart = stealMs();
    let stealLast = stealStart;
    let stealRoundMax = 0;
    const poller = (async () => {
      while (polling) {
        await Promise.all(['fw1', 'fw2'].map((fw) => controlCall(`${lab.stateDir}/${fw}.sock`, 'status').catch(() => undefined)));
        polls++;
        const now = stealMs();
        stealRoundMax = Math.max(stealRoundMax, ...now.map((x, i) => x - (stealLast[i] ?? 0)));
        stealLast = now;
        await sleep(50);
      }
    })();
    while (Date.now() - start < minutes * 60_000) {
      await sleep(1000);
      if (!(await r.isMaster('fw1'))) lost++;
    }
    polling = false;
    await poller;
    for (const b of [...burners, burst]) await lab.stop(b, 'SIGKILL').catch(() => undefined);
    const d1 = (await r.transitions!('fw1')) - t1;
    const d2 = (await r.transitions!('fw2')) - t2;
    const st = (await controlCall(`${lab.stateDir}/fw2.sock`, 'status')) as NodeStatus;
    const st1 = (await controlCall(`${lab.stateDir}/fw1.sock`, 'status')) as NodeStatus;
    console.log(`\nSoak: ${minutes} min, both CPUs saturated by two busy loops, 5,000 new entries a second synced, status polled every 50 ms; fwlb at its defaults`);
    console.log(table(['figure', 'value'], [
      ['group transitions on fw1 (master) during the soak', String(d1)],
      ['group transitions on fw2 (backup) during the soak', String(d2)],
      ['seconds fw1 was seen not master', String(lost)],
      ['split brain heard by fw2', String(st.vrrp.counters.split_brain ?? 0)],
      ['liveness: fw1 seen gone by fw2 (times)', String(st.liveness?.peers[0]?.downs ?? '-')],
      ['status rounds (both nodes, every 50 ms)', String(polls)],
      ['entries replicated to fw2', String(st.sync?.counters.records_applied ?? '-')],
      ['fw2 event loop delay since its start, p99 / max ms', `${st.process.loopDelayMs.p99} / ${st.process.loopDelayMs.max}`],
      ['fw1 event loop delay since its start, p99 / max ms', `${st1.process.loopDelayMs.p99} / ${st1.process.loopDelayMs.max}`],
      ['fw1 BEATs sent / withheld (its main thread hung past the watchdog); SCHED_RR', `${st1.liveness?.counters.sent ?? '-'} / ${st1.liveness?.counters.withheld ?? '-'}; ${st1.liveness?.counters.realtime ?? '-'}`],
      ['fw2 BEATs received / dropped', `${st.liveness?.counters.received ?? '-'} / ${JSON.stringify(st.liveness?.counters.dropped ?? {})}`],
      ['fw1 BEAT timer: latest firing past due ms (times later than an interval); longest send ms', `${st1.liveness?.counters.timing?.tickLateMaxMs ?? '-'} (${st1.liveness?.counters.timing?.ticksLate ?? '-'}); ${st1.liveness?.counters.timing?.sendMaxMs ?? '-'}`],
      ['fw2: longest gap between two BEATs of fw1 ms (gaps over two intervals)', `${st.liveness?.counters.timing?.peers.fw1?.gapMaxMs ?? '-'} (${st.liveness?.counters.timing?.peers.fw1?.gapsOver2x ?? '-'})`],
      ['fw2 last transition', JSON.stringify(st.vrrp.groups[0]?.instances[0]?.lastTransition ?? null)],
      ['host steal per CPU during the soak, ms; the most of one CPU in one status round (~50 ms)', `${stealLast.map((x, i) => x - (stealStart[i] ?? 0)).join(' / ')}; ${stealRoundMax}`],
      ['false failovers', String(Math.max(d1, d2))],
    ]));
    const base = { conditions: `${minutes} min soak: both CPUs saturated, 5,000 new entries a second synced, status polled every 50 ms`, system: LABEL.fwlb, peer: false };
    figures.push(
      { ...base, id: 'failover.soak.false_failovers', figure: 'false failovers in the soak', unit: 'failovers', value: Math.max(d1, d2) },
      { ...base, id: 'failover.soak.beat_gap_max', figure: 'longest gap between two BEATs of the master at the backup', unit: 'ms', value: num(st.liveness?.counters.timing?.peers.fw1?.gapMaxMs) },
      { ...base, id: 'failover.soak.beat_late_max', figure: 'the master\'s BEAT timer, latest firing past due', unit: 'ms', value: num(st1.liveness?.counters.timing?.tickLateMaxMs) },
      { ...base, id: 'failover.soak.loop_max.fw1', figure: 'the master\'s event loop held at most', unit: 'ms', value: num(st1.process.loopDelayMs.max) },
      { ...base, id: 'failover.soak.loop_max.fw2', figure: 'the backup\'s event loop held at most', unit: 'ms', value: num(st.process.loopDelayMs.max) },
      // Not fwlb's: the host's. A vCPU not run for ~100 ms holds whatever thread is on it; when
      // only the master's is held, its BEATs stop for that long, and a 75 ms detection sees it.
      { ...base, id: 'failover.soak.steal_round_max', figure: 'the host\'s steal: the most of one CPU in one ~50 ms status round (the machine, not fwlb)', unit: 'ms', value: stealRoundMax },
    );
  } finally {
    if (values['keep-logs']) await cp(lab.stateDir, values['keep-logs'], { recursive: true }).catch(() => undefined);
    await labDown(PREFIX);
  }
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const sys of values.systems!.split(',') as System[]) {
    for (const mode of values.modes!.split(',') as Mode[]) {
      const row = await run(sys, mode);
      console.error(row.join('  '));
      rows.push(row);
    }
  }
  console.log(`\nFailover gap seen by a client opening a connection to the ${V6 ? 'IPv6 ' : ''}VIP every 5 ms (HTTP through DNAT)`);
  console.log(table(['system', 'failure', 'longest gap ms', 'failed probes', 'probes', 'backup took over'], rows));
  const minutes = Number(values['soak-minutes']);
  if (minutes > 0) await soak(minutes);
  await writeFigures(values.figures, 'failover', figures);
}

await main();
