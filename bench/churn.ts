/**
 * Sessions under churn: 200 long TCP sessions through the load-balanced VIP (each echoing
 * every 50 ms) while a node fails every few seconds (src/lab/churn.ts: crash, link down,
 * graceful stop of alternating nodes, each 2 s after the last one is ready), for fwlb and
 * for keepalived + conntrackd (FTFW) in the same lab, on the same seed. Both run the same
 * ruleset (fwlb's compiler); only VRRP and the state sync differ. keepalived runs VRRPv3 at
 * 0.1 s adverts with a sync group and the primary-backup notify script; it counts as ready
 * once it has entered a state after its start.
 *
 *   node dist/bench/churn.js [--seconds 300] [--seed N] [--systems fwlb,peer]
 *
 * Prints figures; never asserts.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus, Readiness } from '../src/services/node-daemon.js';
import { tortureLoop, type ChurnNode, type ChurnSystem } from '../src/lab/churn.js';
import { Keepalived, sandwichKeepalived } from '../src/lab/keepalived.js';
import { Conntrackd } from '../src/lab/conntrackd.js';
import { waitFor } from '../src/lib/wait.js';
import { table } from './util.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '300' }, seed: { type: 'string' }, systems: { type: 'string', default: 'fwlb,peer' }, prefix: { type: 'string', default: 'bch' } },
});
const SECONDS = Number(values.seconds);
const SEED = values.seed !== undefined ? Number(values.seed) : Date.now() % 100000;
const PREFIX = values.prefix!;
const SESSIONS = 200;

async function holdsVips(lab: Lab, fw: string): Promise<boolean> {
  const r = await lab.execRaw(fw, ['ip', '-j', '-4', 'addr', 'show']);
  return r.status === 0 && r.stdout.includes('"198.18.0.100"') && r.stdout.includes('"198.18.1.1"');
}

async function master(lab: Lab): Promise<ChurnNode | undefined> {
  for (const fw of ['fw1', 'fw2'] as const) if (await holdsVips(lab, fw)) return fw;
  return undefined;
}

function fwlbSystem(lab: Lab, cfg: string): ChurnSystem {
  const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
  return {
    label: 'fwlb',
    start: async (fw) => void lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'info']),
    stop: async (fw) => void (await lab.gracefulStop(fw, 30_000)),
    ready: async (fw) => ((await controlCall(control(fw), 'ready', undefined, 1000)) as Readiness).ready,
    master: () => master(lab),
  };
}

function peerSystem(lab: Lab, cfg: string): ChurnSystem {
  const ka = new Map<string, Keepalived>();
  const ct = new Map<string, Conntrackd>();
  const logMark = new Map<string, number>();
  const addr = { fw1: { sync: '198.18.2.1', peer: '198.18.2.2' }, fw2: { sync: '198.18.2.2', peer: '198.18.2.1' } } as const;
  const kaLog = (fw: string) => `${lab.stateDir}/${fw}.keepalived.log`;
  return {
    label: 'keepalived + conntrackd',
    start: async (fw) => {
      // A rebooted node has no ruleset: the same one fwlb would apply.
      const has = await lab.execRaw(fw, ['nft', 'list', 'table', 'inet', 'fwlb']);
      if (has.status !== 0) await lab.exec(fw, ['nft', '-f', '-'], await lab.exec(fw, [process.execPath, CLI_MAIN_JS, 'ruleset', '-c', cfg, '--node', fw]));
      ct.set(fw, await Conntrackd.start(lab, fw, { self: addr[fw].sync, peer: addr[fw].peer, iface: 'eth2', port: 3780, ignore: ['198.18.0.2', '198.18.0.3', '198.18.1.2', '198.18.1.3', '198.18.2.1', '198.18.2.2', '198.18.1.1'] }));
      logMark.set(fw, (await readFile(kaLog(fw), 'utf8').catch(() => '')).length);
      ka.set(fw, await Keepalived.start(lab, fw, sandwichKeepalived(fw as 'fw1' | 'fw2', { notify: Conntrackd.notifyPath(lab, fw) })));
    },
    stop: async (fw) => {
      await ka.get(fw)?.stop();
      await ct.get(fw)?.stop(lab);
    },
    ready: async (fw) => {
      const text = (await readFile(kaLog(fw), 'utf8')).slice(logMark.get(fw) ?? 0);
      return /Entering (BACKUP|MASTER) STATE/.test(text);
    },
    master: () => master(lab),
  };
}

async function run(which: 'fwlb' | 'peer'): Promise<string[]> {
  const lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  try {
    const cfg = await writeSyncedCluster(lab);
    const sys = which === 'fwlb' ? fwlbSystem(lab, cfg) : peerSystem(lab, cfg);
    await sys.start('fw1');
    await waitFor('fw1 master', async () => ((await sys.master()) === 'fw1' ? true : undefined), 20_000);
    await sys.start('fw2');
    await waitFor('fw2 ready', async () => ((await sys.ready('fw2').catch(() => false)) ? true : undefined), 30_000);
    await sleep(2000);
    const log = `${lab.stateDir}/sessions.log`;
    const h = lab.spawn('client1', [process.execPath, SESSIONS_JS, '198.18.0.100', '7', '--count', String(SESSIONS), '--every', '50', '--seconds', String(SECONDS + 20)], { log });
    await sleep(3000);
    const failures = await tortureLoop(lab, sys, { seconds: SECONDS, seed: SEED, journal: `${lab.stateDir}/churn.journal` });
    await h.wait((SECONDS + 90) * 1000);
    const r = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop()!) as { connected: number; kept: number; lost: number; worstStallMs: number | null; worstStallFrom: string | null };
    if (r.worstStallFrom) process.stderr.write(`${sys.label}: the worst stall (${r.worstStallMs} ms) began at ${r.worstStallFrom}\n`);
    const crashes = failures.filter((f) => f.startsWith('crash')).length;
    const masters = failures.filter((f) => f.includes('(master)')).length;
    let statusNote = '';
    if (which === 'fwlb') {
      const st = (await controlCall(`${lab.stateDir}/fw1.sock`, 'status').catch(() => null)) as NodeStatus | null;
      statusNote = st ? `fw1 sync drops: ${Object.entries(st.sync?.drops ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}` : '';
    }
    return [sys.label, String(failures.length), `${masters} / ${crashes}`, `${r.connected}/${SESSIONS}`, String(r.kept), String(r.lost), r.worstStallMs === null ? '-' : String(r.worstStallMs), statusNote];
  } finally {
    if (process.env.FWLB_KEEP_LAB) process.stderr.write(`lab ${PREFIX} kept: journal in ${lab.stateDir}/churn.journal\n`);
    else await labDown(PREFIX);
  }
}

const rows: string[][] = [];
for (const s of values.systems!.split(',') as ('fwlb' | 'peer')[]) rows.push(await run(s));
process.stdout.write(
  `Sessions under churn: ${SESSIONS} long TCP sessions through the DNAT VIP, ${SECONDS} s of failures on alternating nodes, seed ${SEED} (this 2-core VM, the lab's sync cable)\n` +
    table(['system', 'failures', 'of the master / crashes', 'connected', 'kept', 'lost', 'worst stall ms', ''], rows) +
    '\n',
);
