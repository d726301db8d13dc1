/**
 * `fwlb demo`: the main job end to end on this machine. Builds a two-firewall lab,
 * runs `fwlb run` on both nodes with the shipped examples/lab.yaml, drives real traffic
 * through the cluster and prints a report of what held.
 *
 * Until the VRRP engine lands, the VIPs are pinned on fw1 (fw2 runs the same ruleset,
 * ready). Later rounds add failovers and state sync to this run.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlCall } from '../control/client.js';
import { labDown, labUp, type Lab } from '../lab/lab.js';
import { CLI_MAIN_JS, ECHO_SESSION_JS, RAW_TCP_JS, REPO_ROOT } from '../lab/paths.js';
import type { NodeStatus } from '../services/node-daemon.js';

export interface DemoOptions {
  prefix: string;
  keep: boolean;
  out: (line: string) => void;
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export async function runDemo(o: DemoOptions): Promise<boolean> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail });
    o.out(`${ok ? 'ok  ' : 'FAIL'}  ${name}: ${detail}`);
  };
  let lab: Lab | undefined;
  try {
    o.out(`building the lab "${o.prefix}": client1 -- [fw1, fw2] -- web1, web2, sync link between fw1 and fw2`);
    lab = await labUp({ prefix: o.prefix, topology: 'sandwich', vipsOn: 'fw1' });
    const cfg = `${lab.stateDir}/cluster.yaml`;
    await copyFile(`${REPO_ROOT}/examples/lab.yaml`, cfg);

    for (const node of ['fw1', 'fw2']) {
      const r = await lab.execRaw(node, [process.execPath, CLI_MAIN_JS, 'check', '-c', cfg, '--node', node]);
      check(`fwlb check --node ${node}`, r.status === 0, (r.stdout || r.stderr).trim());
    }
    const controls: Record<string, string> = {};
    for (const node of ['fw1', 'fw2']) {
      controls[node] = `${lab.stateDir}/${node}.sock`;
      lab.startDaemon(node, ['run', '-c', cfg, '--node', node, '--control', controls[node]!]);
    }
    const status = (node: string) => controlCall(controls[node]!, 'status') as Promise<NodeStatus>;
    for (const node of ['fw1', 'fw2']) {
      const st = await waitFor(() => status(node), 10_000);
      check(`fwlb run on ${node}`, !!st, st ? `ruleset applied in ${st.ruleset.applyMs} ms, ${st.services.length} services` : 'no answer on the control socket');
    }

    // A long-lived session through the load-balanced echo service, held through a reload.
    const session = lab.spawn('client1', [process.execPath, ECHO_SESSION_JS, '198.18.0.100', '7', '--every', '50', '--seconds', '6'], {
      log: `${lab.stateDir}/demo-session.log`,
    });

    const spread: Record<string, number> = {};
    let failed = 0;
    for (let i = 0; i < 40; i++) {
      try {
        const body = await lab.probe('client1', ['http', 'http://198.18.0.100/']);
        const who = body.split(' ')[0] ?? '?';
        spread[who] = (spread[who] ?? 0) + 1;
      } catch {
        failed++;
      }
    }
    check('40 HTTP requests to the VIP 198.18.0.100:80', failed === 0 && Object.keys(spread).length === 2,
      `${Object.entries(spread).map(([k, v]) => `${k} ${v}`).join(', ')}${failed ? `, ${failed} failed` : ''}`);

    const denied = (await lab.probe('client1', ['connect', '198.18.1.11', '8'], 1000)).trim();
    check('a port no rule allows (web1:8 from outside)', denied === 'timeout', `${denied} (dropped: no RST, no ICMP error)`);

    const before = await dropCount(lab);
    await lab.exec('client1', [process.execPath, RAW_TCP_JS, '198.18.0.10', '198.18.1.11', '40404', '7', 'A']);
    await sleep(100);
    const after = await dropCount(lab);
    check('a stray TCP ACK to an allowed port', after === before + 1, `dropped by the "new TCP without SYN" rule (counter ${before} -> ${after})`);

    const masq = await lab.probe('web1', ['read', '198.18.0.10', '8']);
    check('web1 going out is masqueraded', /198\.18\.0\.2:/.test(masq), `the outside host saw ${masq.trim().split(' ')[1] ?? '?'}`);

    const original = await readFile(cfg, 'utf8');
    await writeFile(cfg, original.replace('  rules:\n', '  rules:\n    - allow: { proto: tcp, port: 2222, from: outside, to: self }\n'));
    const st0 = await status('fw1');
    lab.daemon('fw1')?.kill('SIGHUP');
    const st1 = await waitFor(async () => {
      const s = await status('fw1');
      return s.ruleset.digest !== st0.ruleset.digest ? s : undefined;
    }, 10_000);
    check('SIGHUP reload with a changed ruleset on fw1', !!st1, st1 ? `new ruleset applied in ${st1.ruleset.applyMs} ms, one transaction` : 'not applied');

    await session.wait(15_000);
    const s = JSON.parse((await readFile(`${lab.stateDir}/demo-session.log`, 'utf8')).trim().split('\n').pop() ?? '{}') as {
      sent?: number; echoed?: number; maxGapMs?: number; error?: string | null;
    };
    check('a TCP session through the VIP, held across the reload', s.error === null && s.sent === s.echoed && (s.sent ?? 0) > 0,
      `${s.echoed}/${s.sent} echoes, longest wait ${s.maxGapMs} ms${s.error ? `, error: ${s.error}` : ''}`);
  } catch (e) {
    check('demo', false, (e as Error).message);
  } finally {
    if (lab && !o.keep) {
      await labDown(o.prefix);
      o.out(`lab "${o.prefix}" removed`);
    } else if (lab) {
      o.out(`lab "${o.prefix}" kept: \`fwlb lab status --prefix ${o.prefix}\`, \`fwlb lab down --prefix ${o.prefix}\``);
    }
  }
  const bad = checks.filter((c) => !c.ok);
  o.out(`\n${checks.length - bad.length}/${checks.length} checks passed`);
  return bad.length === 0;
}

async function dropCount(lab: Lab): Promise<number> {
  const out = await lab.exec('fw1', ['nft', 'list', 'chain', 'inet', 'fwlb', 'forward']);
  const line = out.split('\n').find((l) => l.includes('new TCP without SYN'));
  return Number(/counter packets (\d+)/.exec(line ?? '')?.[1] ?? NaN);
}

async function waitFor<T>(f: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(50);
  }
  return undefined;
}
