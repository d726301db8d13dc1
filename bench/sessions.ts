/**
 * Sessions kept: N long-lived TCP sessions through the load-balanced VIP, each echoing a
 * line every 50 ms; the master crashes (or stops gracefully); how many sessions survive,
 * and the longest stall of a survivor. fwlb with its state sync on, beside fwlb with it off
 * (no cluster key): what the sync buys; and beside the peer reference in the same run, on
 * the same lab, ruleset, sessions and failure: keepalived (v3, 0.1 s adverts, a sync group)
 * + conntrackd (FTFW over the sync cable, the primary-backup notify script), as
 * bench/churn.ts runs it (src/lab/churn-systems.ts).
 *
 *   node dist/bench/sessions.js [--sessions 200] [--modes switched,crash,graceful] [--systems fwlb,nosync,peer] [--seconds 10]
 *
 * crash: links down first, then the processes (the sync cable loses carrier); switched: the
 * processes killed first, then the node silent with its links up (no carrier change anywhere);
 * graceful: fwlb's SIGTERM, keepalived's SIGTERM then conntrackd's. The failure comes 3 s
 * into the sessions; --seconds is how long they run.
 *
 * Prints figures; never asserts.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { REPO_ROOT, SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';
import { peerSystem } from '../src/lab/churn-systems.js';
import { num, peerVersions, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '200' },
    modes: { type: 'string', default: 'switched,crash,graceful' },
    systems: { type: 'string', default: 'fwlb,nosync,peer' },
    seconds: { type: 'string', default: '10' },
    prefix: { type: 'string', default: 'bses' },
    /** Write the figures as JSON here (bench/figures.ts). */
    figures: { type: 'string' },
  },
});
const PREFIX = values.prefix!;
const N = Number(values.sessions);
const SECONDS = Number(values.seconds);
const EVERY_MS = 50;
const FAIL_AT_MS = 3000;
if (SECONDS * 1000 < FAIL_AT_MS + 2000) throw new Error(`--seconds: at least ${(FAIL_AT_MS + 2000) / 1000} (the failure comes ${FAIL_AT_MS / 1000} s in)`);

type Mode = 'crash' | 'switched' | 'graceful';
type System = 'fwlb' | 'nosync' | 'peer';

interface Outcome {
  connected: number;
  kept: number;
  lost: number;
  worstStallMs: number | null;
}

/** A running pair of firewalls: fw1 the master, fw2 ready to take over; how fw1 stops gracefully. */
interface Pair {
  gracefulStop(): Promise<void>;
}

async function fwlbPair(lab: Lab, sync: boolean): Promise<Pair> {
  let text = await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8');
  if (sync) {
    await writeFile(`${lab.stateDir}/cluster.key`, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    text = text.replace('  name: lab\n', '  name: lab\n  key_file: cluster.key\n');
  }
  const cfg = `${lab.stateDir}/cluster.yaml`;
  await writeFile(cfg, text);
  const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
  const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
  lab.startDaemon('fw1', ['run', '-c', cfg, '--node', 'fw1', '--control', control('fw1'), '--log-level', 'warn']);
  await waitFor('fw1 master', async () => ((await status('fw1')).vrrp.groups[0]?.state === 'master' ? true : undefined), 15_000);
  lab.startDaemon('fw2', ['run', '-c', cfg, '--node', 'fw2', '--control', control('fw2'), '--log-level', 'warn']);
  await waitFor('fw2 backup', async () => ((await status('fw2')).vrrp.groups[0]?.state === 'backup' && !(await status('fw2')).vrrp.syncDemoted ? true : undefined), 15_000);
  return { gracefulStop: async () => void (await lab.gracefulStop('fw1')) };
}

/** keepalived + conntrackd as bench/churn.ts runs them (fwlb's ruleset loaded on both nodes as a boot would). */
async function peerPair(lab: Lab): Promise<Pair> {
  const sys = peerSystem(lab, await writeSyncedCluster(lab));
  await sys.start('fw1');
  await waitFor('fw1 master', async () => ((await sys.master()) === 'fw1' ? true : undefined), 15_000);
  await sys.start('fw2');
  await waitFor('fw2 backup', async () => ((await sys.ready('fw2')) ? true : undefined), 15_000);
  // conntrackd's resync request goes out on BACKUP (the notify script); let it land.
  await sleep(1000);
  return { gracefulStop: () => sys.stop('fw1') };
}

async function run(sys: System, mode: Mode): Promise<Outcome> {
  const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  try {
    const pair = sys === 'peer' ? await peerPair(lab) : await fwlbPair(lab, sys === 'fwlb');
    const log = `${lab.stateDir}/sessions.log`;
    const h = lab.spawn('client1', [process.execPath, SESSIONS_JS, '198.18.0.100', '7', '--count', String(N), '--every', String(EVERY_MS), '--seconds', String(SECONDS)], { log });
    await sleep(FAIL_AT_MS);
    if (mode === 'crash') await lab.crash('fw1');
    else if (mode === 'switched') await lab.crashSwitched('fw1');
    else await pair.gracefulStop();
    await h.wait((SECONDS + 20) * 1000);
    return JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as Outcome;
  } finally {
    await labDown(PREFIX);
  }
}

async function main(): Promise<void> {
  const v = await peerVersions();
  const LABEL: Record<System, string> = {
    fwlb: 'fwlb, state sync on',
    nosync: 'fwlb, state sync off',
    peer: `keepalived ${v.keepalived} (v3, 0.1 s) + conntrackd ${v.conntrackd} (FTFW)`,
  };
  const MODE: Record<Mode, string> = { switched: 'switched crash of the master', crash: 'crash of the master (links down)', graceful: 'graceful stop of the master' };
  const rows: string[][] = [];
  const figures: Figure[] = [];
  const conditions = `${N} TCP sessions through the DNAT VIP, a line every ${EVERY_MS} ms, the failure ${FAIL_AT_MS / 1000} s in`;
  for (const mode of values.modes!.split(',') as Mode[]) {
    for (const sys of values.systems!.split(',') as System[]) {
      if (!LABEL[sys]) throw new Error(`--systems: no system ${sys} (fwlb, nosync, peer)`);
      const r = await run(sys, mode);
      const row = [LABEL[sys], mode, `${r.connected}/${N}`, String(r.kept), String(r.lost), r.worstStallMs === null ? '-' : String(r.worstStallMs)];
      console.error(row.join('  '));
      rows.push(row);
      // fwlb without its sync is a figure of its own (what the sync buys), not the peer's.
      const id = `sessions.${mode}${sys === 'nosync' ? '.nosync' : ''}`;
      const what = sys === 'nosync' ? ', fwlb with the state sync off' : '';
      figures.push(
        { id: `${id}.kept`, figure: `sessions kept, ${MODE[mode]}${what}`, conditions, unit: `of ${N}`, system: LABEL[sys], peer: sys === 'peer', value: r.kept },
        { id: `${id}.stall`, figure: `worst stall of a kept session, ${MODE[mode]}${what}`, conditions, unit: 'ms', system: LABEL[sys], peer: sys === 'peer', value: num(r.worstStallMs), resolution: EVERY_MS },
      );
    }
  }
  console.log(`\n${N} long-lived TCP sessions through the VIP (DNAT, round robin), a line echoed every ${EVERY_MS} ms for ${SECONDS} s; the master fails ${FAIL_AT_MS / 1000} s in (all in this run, the same lab each time)`);
  console.log(table(['system', 'failure', 'connected', 'kept', 'lost', 'worst stall of a survivor, ms'], rows));
  await writeFigures(values.figures, 'sessions', figures);
}

await main();
