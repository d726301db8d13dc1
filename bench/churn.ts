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
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { labDown, labUp } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { SESSIONS_JS } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { tortureLoop } from '../src/lab/churn.js';
import { fwlbSystem, peerSystem } from '../src/lab/churn-systems.js';
import { waitFor } from '../src/lib/wait.js';
import { num, table, writeFigures, type Figure } from './util.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    seed: { type: 'string' },
    systems: { type: 'string', default: 'fwlb,peer' },
    prefix: { type: 'string', default: 'bch' },
    /** Write the figures as JSON here (bench/figures.ts). */
    figures: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const SEED = values.seed !== undefined ? Number(values.seed) : Date.now() % 100000;
const PREFIX = values.prefix!;
const SESSIONS = 200;

async function run(which: 'fwlb' | 'peer', figures: Figure[]): Promise<string[]> {
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
    const conditions = `${SESSIONS} TCP sessions through the DNAT VIP (a line every 50 ms), ${SECONDS} s of failures on alternating nodes, seed ${SEED}`;
    const base = { conditions, system: sys.label, peer: which === 'peer' };
    figures.push(
      { ...base, id: 'churn.failures', figure: 'failures done', unit: 'failures', value: failures.length },
      { ...base, id: 'churn.failures.master', figure: 'failures of the master', unit: 'failures', value: masters },
      { ...base, id: 'churn.kept', figure: 'sessions kept under churn', unit: `of ${SESSIONS}`, value: r.kept },
      { ...base, id: 'churn.stall', figure: 'worst stall of a kept session under churn', unit: 'ms', value: num(r.worstStallMs), resolution: 50 },
    );
    return [sys.label, String(failures.length), `${masters} / ${crashes}`, `${r.connected}/${SESSIONS}`, String(r.kept), String(r.lost), r.worstStallMs === null ? '-' : String(r.worstStallMs), statusNote];
  } finally {
    if (process.env.FWLB_KEEP_LAB) process.stderr.write(`lab ${PREFIX} kept: journal in ${lab.stateDir}/churn.journal\n`);
    else await labDown(PREFIX);
  }
}

const rows: string[][] = [];
const figures: Figure[] = [];
for (const s of values.systems!.split(',') as ('fwlb' | 'peer')[]) rows.push(await run(s, figures));
process.stdout.write(
  `Sessions under churn: ${SESSIONS} long TCP sessions through the DNAT VIP, ${SECONDS} s of failures on alternating nodes, seed ${SEED} (this machine: ${cpus().length} cores; the lab's sync cable)\n` +
    table(['system', 'failures', 'of the master / crashes', 'connected', 'kept', 'lost', 'worst stall ms', ''], rows) +
    '\n',
);
await writeFigures(values.figures, 'churn', figures);
