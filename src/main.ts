/**
 * `fwlb run`: the process around a node. Creates the logger, raises the scheduling
 * priority, reads the failpoints and the config, hands them to the node's assembly
 * (node/assemble.ts: every adapter, service and listener is built there) and connects the
 * signals: SIGHUP reloads the config (a bad new config keeps the old one running); SIGTERM
 * and SIGINT hand over and exit cleanly. The ruleset stays in the kernel on exit: a firewall
 * that opens up when its daemon stops is no firewall.
 */
import { setPriority } from 'node:os';
import { createLogger } from './lib/logger.js';
import { loadConfigFile } from './config/load.js';
import { CONFIG_NEXT_STEP, withNextStep } from './lib/next-step.js';
import { parseFailpoints, type Failpoint } from './lib/failpoints.js';
import { assembleNode, type AssembledNode, type NodeOptions } from './node/assemble.js';

export interface RunOptions extends NodeOptions {
  logLevel: string;
  /** Why V8's collector still uses helper threads (adapters/reexec.ts), or null when it does not. */
  concurrentGc?: string | null;
}

export { createLogger };

/** Scheduling priority of `fwlb run`: adverts must go out on time even when the CPU is saturated. */
const RUN_NICE = -10;

export async function runNode(opts: RunOptions): Promise<number> {
  const log = createLogger(opts.logLevel).child({ node: opts.node });
  // Signals first: a SIGHUP must never kill a node that may already hold VIPs, and a stop
  // asked for while starting waits until the node can hand over.
  let node: AssembledNode | undefined;
  let stopAsked: string | undefined;
  process.on('SIGHUP', () => (node ? node.hup() : log.warn({ event: 'sighup' }, 'SIGHUP while starting: ignored')));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => (node ? node.stopSignal(sig) : (stopAsked = sig)));
  try {
    setPriority(RUN_NICE);
  } catch (e) {
    log.warn({ err: (e as Error).message }, `cannot raise the scheduling priority (nice ${RUN_NICE})`);
  }
  // Steps tests make fail on purpose (lib/failpoints.ts); none unless FWLB_FAILPOINTS says so.
  let failpoint: Failpoint;
  try {
    failpoint = parseFailpoints(process.env.FWLB_FAILPOINTS);
  } catch (e) {
    process.stderr.write((e as Error).message + '\n');
    return 1;
  }
  if (opts.concurrentGc) log.warn({ event: 'concurrent_gc', why: opts.concurrentGc }, 'V8 collects garbage on helper threads: real-time threads can wait for them on a busy machine (see adapters/reexec.ts)');
  if (process.env.FWLB_FAILPOINTS) log.warn({ event: 'failpoints', failpoints: process.env.FWLB_FAILPOINTS }, 'failpoints armed (FWLB_FAILPOINTS): named steps will fail on purpose');
  const loaded = await loadConfigFile(opts.configFile);
  if (!loaded.ok) {
    log.error({ event: 'config_invalid', issues: loaded.error.issues }, loaded.error.message);
    process.stderr.write(withNextStep(loaded.error.message, CONFIG_NEXT_STEP));
    return 1;
  }
  const built = await assembleNode(opts, loaded.value, log, failpoint);
  if ('error' in built) {
    log.error({ event: built.event, err: built.error }, built.error);
    process.stderr.write(withNextStep(built.error, 'fix what it names (`fwlb check -c FILE -n NODE` checks the file against this host) and start again'));
    return 1;
  }
  node = built;
  if (stopAsked) node.stopSignal(stopAsked);
  return node.run();
}
