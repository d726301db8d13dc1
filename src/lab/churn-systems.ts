/**
 * The redundant pairs the churn torture drives (src/lab/churn.ts), for the benchmarks: fwlb
 * with its state sync, and the peer reference, keepalived (VRRPv3, 0.1 s, sync group,
 * primary-backup notify) + conntrackd (FTFW) on the same lab and ruleset (fwlb's compiler).
 * keepalived counts as ready once it has entered a state after its start.
 */
import { readFile } from 'node:fs/promises';
import type { Lab } from './lab.js';
import { controlCall } from '../control/client.js';
import { CLI_MAIN_JS } from './paths.js';
import type { Readiness } from '../services/node-daemon.js';
import type { ChurnNode, ChurnSystem } from './churn.js';
import { Keepalived, sandwichKeepalived } from './keepalived.js';
import { Conntrackd, type ConntrackdOptions } from './conntrackd.js';

const SYNC = { fw1: { self: '198.18.2.1', peer: '198.18.2.2' }, fw2: { self: '198.18.2.2', peer: '198.18.2.1' } } as const;

/**
 * conntrackd of the peer reference on the sandwich lab: on the sync cable at the port fwlb's
 * ruleset opens for the state sync (3780), the nodes' own addresses and the inside VIP ignored
 * (the VIP that is DNATed is not: its flows are the ones to sync).
 */
export function peerConntrackd(fw: ChurnNode, protocols?: ConntrackdOptions['protocols']): ConntrackdOptions {
  return { ...SYNC[fw], ...(protocols ? { protocols } : {}), iface: 'eth2', port: 3780, ignore: ['198.18.0.2', '198.18.0.3', '198.18.1.2', '198.18.1.3', '198.18.2.1', '198.18.2.2', '198.18.1.1'] };
}

export async function holdsVips(lab: Lab, fw: string): Promise<boolean> {
  const r = await lab.execRaw(fw, ['ip', '-j', '-4', 'addr', 'show']);
  return r.status === 0 && r.stdout.includes('"198.18.0.100"') && r.stdout.includes('"198.18.1.1"');
}

export async function master(lab: Lab): Promise<ChurnNode | undefined> {
  for (const fw of ['fw1', 'fw2'] as const) if (await holdsVips(lab, fw)) return fw;
  return undefined;
}

export function fwlbSystem(lab: Lab, cfg: string): ChurnSystem {
  const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
  return {
    label: 'fwlb',
    start: async (fw) => void lab.startDaemon(fw, ['run', '-c', cfg, '--node', fw, '--control', control(fw), '--log-level', 'info']),
    stop: async (fw) => void (await lab.gracefulStop(fw, 30_000)),
    ready: async (fw) => ((await controlCall(control(fw), 'ready', undefined, 1000)) as Readiness).ready,
    master: () => master(lab),
  };
}

/** The peer on the sandwich lab; `o.protocols`: what its conntrackd syncs (the peer reference's: TCP alone). */
export function peerSystem(lab: Lab, cfg: string, o: { protocols?: ConntrackdOptions['protocols'] } = {}): ChurnSystem {
  const ka = new Map<string, Keepalived>();
  const ct = new Map<string, Conntrackd>();
  const logMark = new Map<string, number>();
  const kaLog = (fw: string) => `${lab.stateDir}/${fw}.keepalived.log`;
  return {
    label: 'keepalived + conntrackd',
    start: async (fw) => {
      // A rebooted node has no ruleset: the same one fwlb would apply.
      const has = await lab.execRaw(fw, ['nft', 'list', 'table', 'inet', 'fwlb']);
      if (has.status !== 0) await lab.exec(fw, ['nft', '-f', '-'], await lab.exec(fw, [process.execPath, CLI_MAIN_JS, 'ruleset', '-c', cfg, '--node', fw]));
      ct.set(fw, await Conntrackd.start(lab, fw, peerConntrackd(fw, o.protocols)));
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

