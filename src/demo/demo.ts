/**
 * `fwlb demo`: the main job end to end on this machine. Builds a two-firewall lab, runs
 * `fwlb run` on both nodes with the shipped examples/dual-stack.yaml (examples/lab.yaml with
 * an IPv6 virtual router beside each IPv4 one, and IPv6 services), drives real traffic
 * through the cluster, forces failovers (graceful stop, link down, crash) under a client
 * that opens a connection every 5 ms, and prints a report of what held.
 *
 * The state sync is on (a cluster key is made for the lab): through every failover, 50
 * long-lived TCP sessions run through the load-balanced VIP and 20 through the IPv6 one,
 * and the report says how many were kept and the longest any of them stalled. The report
 * is also written as one HTML file with a timeline per failover (demo/report.ts); its path
 * is printed.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { renderDemoReport, type DemoReport, type FailoverFigures } from './report.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlCall } from '../control/client.js';
import { labDown, labUp, type Lab } from '../lab/lab.js';
import { CLI_MAIN_JS, ECHO_SESSION_JS, PROBER_JS, RAW_TCP_JS, REPO_ROOT, SESSIONS_JS } from '../lab/paths.js';
import type { NodeStatus } from '../services/node-daemon.js';
import { probeGaps, type ProbeRecord } from '../lab/probe-stats.js';
import { waitFor } from '../lib/wait.js';

export interface DemoOptions {
  prefix: string;
  keep: boolean;
  out: (line: string) => void;
  /** Where the HTML report goes (default: fwlb-demo-<prefix>.html in the system's temporary directory). */
  report?: string;
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const VIP = '198.18.0.100';
const VIP6 = '2001:2::100';

export async function runDemo(o: DemoOptions): Promise<boolean> {
  const { checks, check } = demoChecks(o);
  let lab: Lab | undefined;
  const failovers: FailoverFigures[] = [];
  try {
    o.out(`building the lab "${o.prefix}": client1 -- [fw1, fw2] -- web1, web2; a sync cable between fw1 and fw2`);
    lab = await labUp({ prefix: o.prefix, topology: 'sandwich' });
    const l = lab;
    const cfg = `${l.stateDir}/cluster.yaml`;
    await writeFile(`${l.stateDir}/cluster.key`, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    await writeFile(cfg, (await readFile(`${REPO_ROOT}/examples/dual-stack.yaml`, 'utf8')).replace('  name: lab\n', '  name: lab\n  key_file: cluster.key\n'));
    const control = (fw: string) => `${l.stateDir}/${fw}.sock`;
    const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
    const groupState = (fw: string) => status(fw).then((s) => s.vrrp.groups[0]?.state).catch(() => undefined);
    const start = async (fw: string) => {
      l.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw)]);
      return within(() => status(fw), 10_000);
    };
    const master = async () => ((await groupState('fw1')) === 'master' ? 'fw1' : (await groupState('fw2')) === 'master' ? 'fw2' : undefined);

    for (const node of ['fw1', 'fw2']) {
      const r = await l.execRaw(node, [process.execPath, CLI_MAIN_JS, 'check', '-c', cfg, '--node', node]);
      check(`fwlb check --node ${node}`, r.status === 0, (r.stdout || r.stderr).trim());
    }
    for (const node of ['fw1', 'fw2']) {
      const st = await start(node);
      check(`fwlb run on ${node}`, !!st, st ? `ruleset applied in ${st.ruleset.applyMs} ms, ${st.services.length} services, VRRP group ${st.vrrp.groups[0]?.name}` : 'no answer on the control socket');
    }
    const m0 = await within(async () => ((await master()) === 'fw1' ? 'fw1' : undefined), 10_000);
    check('VRRP election', m0 === 'fw1', `fw1 (priority 200) is master of both VIPs, fw2 (100) is backup`);
    const synced = await within(async () => ((await status('fw2')).sync?.bulk.state === 'done' ? true : undefined), 10_000);
    check('state sync', !!synced, 'fw2 has fw1\'s connection table (bulk sync) and follows every change');

    await trafficChecks(l, check);

    // A reload under a live session.
    const session = l.spawn('client1', [process.execPath, ECHO_SESSION_JS, VIP, '7', '--every', '50', '--seconds', '3'], { log: `${l.stateDir}/demo-session.log` });
    await sleep(500);
    const original = await readFile(cfg, 'utf8');
    await writeFile(cfg, original.replace('  rules:\n', '  rules:\n    - allow: { proto: tcp, port: 2222, from: outside, to: self }\n'));
    const st0 = await status('fw1');
    l.daemon('fw1')?.kill('SIGHUP');
    const st1 = await within(async () => {
      const s = await status('fw1');
      return s.ruleset.digest !== st0.ruleset.digest ? s : undefined;
    }, 10_000);
    await writeFile(cfg, original);
    await session.wait(15_000);
    const s = JSON.parse((await readFile(`${l.stateDir}/demo-session.log`, 'utf8')).trim().split('\n').pop() ?? '{}') as { sent?: number; echoed?: number; maxGapMs?: number; error?: string | null };
    check('SIGHUP reload with a changed ruleset under a live TCP session', !!st1 && s.error === null && s.sent === s.echoed,
      `new ruleset in ${st1?.ruleset.applyMs} ms, one transaction; the session: ${s.echoed}/${s.sent} echoes, longest wait ${s.maxGapMs} ms`);

    // Failovers under a client opening a new connection every 5 ms, and 50 long sessions.
    let n = 0;
    const failover = async (name: string, fail: () => Promise<void>, restore: () => Promise<void>) => {
      const log = `${l.stateDir}/prober-${++n}.log`;
      const slog = `${l.stateDir}/sessions-${n}.log`;
      const sessions = l.spawn('client1', [process.execPath, SESSIONS_JS, VIP, '7', '--count', '50', '--every', '50', '--seconds', '3'], { log: slog });
      const slog6 = `${l.stateDir}/sessions6-${n}.log`;
      const sessions6 = l.spawn('client1', [process.execPath, SESSIONS_JS, VIP6, '7', '--count', '20', '--every', '50', '--seconds', '3'], { log: slog6 });
      const prober = l.spawn('client1', [process.execPath, PROBER_JS, VIP, '80', '--every', '5', '--seconds', '2.5', '--mode', 'http', '--timeout', '400'], { log });
      await sleep(700);
      const failEpoch = performance.timeOrigin + performance.now();
      await fail();
      await prober.wait(15_000);
      await sessions.wait(20_000);
      await sessions6.wait(20_000);
      const { probes, startedAt } = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { probes: ProbeRecord[]; startedAt: number };
      const kept = JSON.parse((await readFile(slog, 'utf8')).trim().split('\n').pop()!) as { kept: number; lost: number; worstStallMs: number | null };
      const kept6 = JSON.parse((await readFile(slog6, 'utf8')).trim().split('\n').pop()!) as { kept: number; lost: number; worstStallMs: number | null };
      const g = probeGaps(probes);
      const took = (await groupState('fw2')) === 'master';
      // When fw2 said it was master: its own cluster event, on the prober's clock basis.
      const event = (await status('fw2').catch(() => undefined))?.events.filter((e) => e.type === 'group_state' && e.to === 'master' && e.at >= failEpoch - 50).pop();
      failovers.push({
        name, probes, failAt: failEpoch - startedAt, takeoverAt: event ? event.at - startedAt : null, from: 'fw1', to: 'fw2', gapMs: g.gap, failed: g.failed,
        sessions: [{ label: 'TCP sessions', kept: kept.kept, total: 50, worstStallMs: kept.worstStallMs }, { label: 'IPv6 TCP sessions', kept: kept6.kept, total: 20, worstStallMs: kept6.worstStallMs }],
      });
      check(`failover: ${name}`, took && g.gap < 1000 && kept.lost === 0 && kept6.lost === 0,
        `fw2 took over; new connections: longest gap ${g.gap.toFixed(0)} ms, ${g.failed} of ${probes.length} failed; long sessions: ${kept.kept}/50 kept, worst stall ${kept.worstStallMs ?? '-'} ms; over IPv6: ${kept6.kept}/20 kept, worst stall ${kept6.worstStallMs ?? '-'} ms`);
      await restore();
      const back = await within(async () => ((await master()) === 'fw1' && (await groupState('fw2')) === 'backup' ? true : undefined), 15_000);
      if (!back) check(`fw1 back as master after ${name}`, false, 'it did not come back');
    };
    await failover('graceful stop of fw1 (SIGTERM)', async () => void (await l.gracefulStop('fw1')), async () => void (await start('fw1')));
    await failover("fw1's outside link down", () => l.linkDown('fw1', 'eth0'), () => l.linkUp('fw1', 'eth0'));
    await failover('crash of fw1 (every link down, every process killed)', async () => void (await l.crash('fw1')), async () => {
      await l.recover('fw1');
      await start('fw1');
    });
  } catch (e) {
    check('demo', false, (e as Error).message);
  }
  await writeDemoReport(o, { title: 'fwlb demo: two firewalls, three failovers', checks, failovers }, 'a timeline per failover');
  return endDemo(o, lab, checks);
}

/** The firewall and the load balancer, by real traffic: both VIPs balanced, a closed port, a stray ACK, masquerade. */
async function trafficChecks(l: Lab, check: (name: string, ok: boolean, detail: string) => void): Promise<void> {
  // The firewall and the load balancer.
  const spread: Record<string, number> = {};
  let failed = 0;
  for (let i = 0; i < 40; i++) {
    try {
      const who = (await l.probe('client1', ['http', `http://${VIP}/`])).split(' ')[0] ?? '?';
      spread[who] = (spread[who] ?? 0) + 1;
    } catch {
      failed++;
    }
  }
  check(`40 HTTP requests to the VIP ${VIP}:80`, failed === 0 && Object.keys(spread).length === 2,
    `${Object.entries(spread).map(([k, v]) => `${k} ${v}`).join(', ')}${failed ? `, ${failed} failed` : ''} (round robin in a kernel map)`);
  const spread6: Record<string, number> = {};
  let failed6 = 0;
  for (let i = 0; i < 10; i++) {
    try {
      const who = (await l.probe('client1', ['http', `http://[${VIP6}]/`])).split(' ')[0] ?? '?';
      spread6[who] = (spread6[who] ?? 0) + 1;
    } catch {
      failed6++;
    }
  }
  check(`10 HTTP requests to the IPv6 VIP [${VIP6}]:80`, failed6 === 0 && Object.keys(spread6).length === 2,
    `${Object.entries(spread6).map(([k, v]) => `${k} ${v}`).join(', ')}${failed6 ? `, ${failed6} failed` : ''} (IPv6 DNAT to the servers' IPv6 addresses)`);
  const denied = (await l.probe('client1', ['connect', '198.18.1.11', '8'], 1000)).trim();
  check('a port no rule allows (web1:8 from outside)', denied === 'timeout', `${denied} (dropped: no RST, no ICMP error)`);
  const before = await dropCount(l);
  await l.exec('client1', [process.execPath, RAW_TCP_JS, '198.18.0.10', '198.18.1.11', '40404', '7', 'A']);
  await sleep(100);
  const after = await dropCount(l);
  check('a stray TCP ACK to an allowed port', after === before + 1, `dropped by the "new TCP without SYN" rule (counter ${before} -> ${after})`);
  const masq = await l.probe('web1', ['read', '198.18.0.10', '8']);
  check('web1 going out is masqueraded', /198\.18\.0\.2:/.test(masq), `the outside host saw ${masq.trim().split(' ')[1] ?? '?'}`);
}

/** The end of a demo: the lab removed (or kept, with how to remove it), the count of checks passed. */
/** A demo's checks, each printed as it is made ("ok" or "FAIL", its name, what was seen). */
export function demoChecks(o: DemoOptions): { checks: Check[]; check: (name: string, ok: boolean, detail: string) => void } {
  const checks: Check[] = [];
  return {
    checks,
    check: (name, ok, detail) => {
      checks.push({ name, ok, detail });
      o.out(`${ok ? 'ok  ' : 'FAIL'}  ${name}: ${detail}`);
    },
  };
}

/** Writes the demo's HTML report (demo/report.ts) where asked, and says where (or why not). */
export async function writeDemoReport(o: DemoOptions, r: Omit<DemoReport, 'date'>, what: string): Promise<void> {
  const file = o.report ?? `${tmpdir()}/fwlb-demo-${o.prefix}.html`;
  try {
    await writeFile(file, renderDemoReport({ ...r, date: new Date().toISOString() }));
    o.out(`report: ${file} (one HTML file: ${what})`);
  } catch (e) {
    o.out(`report: cannot write ${file}: ${(e as Error).message}`);
  }
}

export async function endDemo(o: DemoOptions, lab: Lab | undefined, checks: readonly { ok: boolean }[]): Promise<boolean> {
  if (lab && !o.keep) {
    await labDown(o.prefix);
    o.out(`lab "${o.prefix}" removed`);
  } else if (lab) {
    o.out(`lab "${o.prefix}" kept: \`fwlb lab status --prefix ${o.prefix}\`, \`fwlb lab down --prefix ${o.prefix}\``);
  }
  const bad = checks.filter((c) => !c.ok).length;
  o.out(`\n${checks.length - bad}/${checks.length} checks passed`);
  return bad === 0;
}

async function dropCount(lab: Lab): Promise<number> {
  const out = await lab.exec('fw1', ['nft', 'list', 'chain', 'inet', 'fwlb', 'forward']);
  const line = out.split('\n').find((l) => l.includes('new TCP without SYN'));
  return Number(/counter packets (\d+)/.exec(line ?? '')?.[1] ?? NaN);
}

/** What `f` gives within `timeoutMs`, or undefined: the demo reports, it does not throw. */
function within<T>(f: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  return waitFor('', f, timeoutMs).catch(() => undefined);
}
