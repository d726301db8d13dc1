/**
 * Pieces of the peer reference for benchmarks that time its steps one by one (bench/startup.ts):
 * the same setup as src/lab/churn-systems.ts `peerSystem` (which bench/churn.ts, sessions.ts
 * and sharing.ts run whole): keepalived (VRRP v3, 0.1 s adverts, one sync group of both VIPs)
 * with conntrackd (FTFW over the sync cable, UDP 3780, the primary-backup notify script), under
 * fwlb's own ruleset (the same data plane: only VRRP and the state sync differ).
 */
import { readFile } from 'node:fs/promises';
import type { Lab } from '../src/lab/lab.js';
import { CLI_MAIN_JS } from '../src/lab/paths.js';
import type { ConntrackdOptions } from '../src/lab/conntrackd.js';
import { peerConntrackd as peerConntrackdOf } from '../src/lab/churn-systems.js';

export type Fw = 'fw1' | 'fw2';

/** conntrackd as `peerSystem` starts it (src/lab/churn-systems.ts). */
export const peerConntrackd = (fw: Fw): ConntrackdOptions => peerConntrackdOf(fw);

/** fwlb's ruleset for a node, as `fwlb ruleset` prints it (compile it outside any timing). */
export function compiledRuleset(lab: Lab, cfg: string, fw: Fw): Promise<string> {
  return lab.exec(fw, [process.execPath, CLI_MAIN_JS, 'ruleset', '-c', cfg, '--node', fw]);
}

/** Loads a ruleset as a boot does (`nft -f`). */
export async function applyRuleset(lab: Lab, fw: Fw, ruleset: string): Promise<void> {
  await lab.exec(fw, ['nft', '-f', '-'], ruleset);
}

/** keepalived's log of a node (Keepalived.start appends to it). */
export const keepalivedLog = (lab: Lab, fw: string) => `${lab.stateDir}/${fw}.keepalived.log`;

/** The length of keepalived's log now: what comes after it is the next start's. */
export async function logMark(lab: Lab, fw: string): Promise<number> {
  return (await readFile(keepalivedLog(lab, fw), 'utf8').catch(() => '')).length;
}

/** keepalived has entered a state (BACKUP or MASTER) since the mark: it counts as ready (it has no other signal). */
export async function keepalivedSettled(lab: Lab, fw: string, mark: number): Promise<boolean> {
  return /Entering (BACKUP|MASTER) STATE/.test((await readFile(keepalivedLog(lab, fw), 'utf8').catch(() => '')).slice(mark));
}
