/**
 * The churn torture loop, for the lab test and the benchmark alike: on a two-firewall lab,
 * a failure every few seconds on alternating nodes (crash, link down of the outside or
 * inside interface, graceful stop), each 2 s after the node failed last is back and ready.
 * What "ready" means is the system's own (fwlb says so; keepalived + conntrackd are taken
 * as ready once keepalived has settled in a state). The schedule comes from a seed, so a
 * run can be replayed.
 */
import { appendFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom } from '../lib/random.js';
import { waitFor } from '../lib/wait.js';
import type { Lab } from './lab.js';

export type ChurnNode = 'fw1' | 'fw2';
export type ChurnFailure = 'crash' | 'link' | 'graceful';

/** A redundant firewall pair as the loop drives it. */
export interface ChurnSystem {
  label: string;
  /** Starts the node's daemons (after a graceful stop, or a crash and `recover`). */
  start(node: ChurnNode): Promise<void>;
  /** Graceful stop of the node's daemons. */
  stop(node: ChurnNode): Promise<void>;
  /** The node can be counted on again. */
  ready(node: ChurnNode): Promise<boolean>;
  /** The node holding the VIPs, if one does. */
  master(): Promise<ChurnNode | undefined>;
  /** What each node says of itself (role, readiness, table), for a failure's message. */
  describe?(): Promise<string>;
}

export interface ChurnOptions {
  seconds: number;
  seed: number;
  /** Settling time after a node is ready, before the next failure. */
  settleMs?: number;
  /** A line per event (with its time), to place losses in the daemons' logs. */
  journal?: string;
  /** Longest wait for a node to be ready again. */
  readyTimeoutMs?: number;
  /**
   * A takeover that does not happen within 15 s ends the loop with an error naming the
   * failure and what each node said (`describe`). Off, the loop goes on (a benchmark counts
   * the losses instead).
   */
  strictTakeover?: boolean;
  /**
   * Run after every failure has settled (the node is ready again and settleMs passed), before
   * the next one: throws to end the loop (a test's invariants: one master, holding every VIP,
   * whose table holds the sessions).
   */
  check?: (after: string) => Promise<void>;
  /** Told of each failure as it is made (its kind and time), to charge the clients' stalls to it. */
  onFailure?: (f: { kind: ChurnFailure; node: ChurnNode; what: string; atMs: number }) => void;
}

const other = (n: ChurnNode): ChurnNode => (n === 'fw1' ? 'fw2' : 'fw1');

/** Runs the loop; returns the failures done, in order. */
export async function tortureLoop(lab: Lab, sys: ChurnSystem, o: ChurnOptions): Promise<string[]> {
  const random = seededRandom(o.seed);
  const note = (line: string) => (o.journal ? appendFile(o.journal, `${new Date().toISOString()} [${sys.label}] ${line}\n`) : Promise.resolve());
  const end = Date.now() + o.seconds * 1000;
  const done: string[] = [];
  let node: ChurnNode = random() < 0.5 ? 'fw1' : 'fw2';
  const takenOver = async (n: ChurnNode, what: string) => {
    try {
      await waitFor(`${other(n)} to take over`, async () => ((await sys.master()) === other(n) ? true : undefined), 15_000);
    } catch (e) {
      await note(`no takeover by ${other(n)} after ${what}`);
      if (!o.strictTakeover) return;
      const said = (await sys.describe?.().catch((err: Error) => `(describe failed: ${err.message})`)) ?? '';
      throw new Error(`seed ${o.seed}: ${other(n)} did not take over within 15 s after "${what}" (failure ${done.length}): ${(e as Error).message}\n${said}`);
    }
  };
  while (Date.now() < end) {
    const kind: ChurnFailure = (['crash', 'link', 'graceful'] as const)[Math.floor(random() * 3)]!;
    const iface = random() < 0.5 ? 'eth0' : 'eth1'; // outside or inside, never the sync cable
    const wasMaster = (await sys.master()) === node;
    const what = `${kind}${kind === 'link' ? ` ${iface}` : ''} ${node}${wasMaster ? ' (master)' : ''}`;
    await note(`seed ${o.seed}: ${what}`);
    done.push(what);
    o.onFailure?.({ kind, node, what, atMs: Date.now() });
    switch (kind) {
      case 'crash':
        await lab.crash(node);
        if (wasMaster) await takenOver(node, what);
        else await sleep(500);
        await lab.recover(node);
        await sys.start(node);
        break;
      case 'link':
        await lab.linkDown(node, iface);
        if (wasMaster) await takenOver(node, what);
        else await sleep(500);
        await lab.linkUp(node, iface);
        break;
      case 'graceful':
        await sys.stop(node);
        await sys.start(node);
        break;
    }
    try {
      await waitFor(`${node} ready`, async () => ((await sys.ready(node).catch(() => false)) ? true : undefined), o.readyTimeoutMs ?? 30_000, 20);
    } catch (e) {
      const said = (await sys.describe?.().catch((err: Error) => `(describe failed: ${err.message})`)) ?? '';
      throw new Error(`seed ${o.seed}: after "${what}" (failure ${done.length}): ${(e as Error).message}\n${said}`);
    }
    await note(`${node} ready again`);
    await sleep(o.settleMs ?? 2000);
    if (o.check) {
      await o.check(what);
      await note(`checked after ${what}`);
    }
    node = other(node);
  }
  return done;
}
