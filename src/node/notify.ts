/**
 * The groups' notify hooks (`vrrp.groups.NAME.notify`), a consumer of the cluster events
 * (services/cluster-events.ts): run on every group state change:
 * `HOOK GROUP STATE` with FWLB_NODE, FWLB_CLUSTER, FWLB_GROUP, FWLB_STATE and FWLB_VIPS in
 * the environment (and PATH, nothing else). A hook that hangs is killed after
 * NOTIFY_TIMEOUT_MS: hooks must not pile up behind fast transitions. A hook that fails is
 * logged; it changes nothing.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { ClusterSubscriber } from '../services/cluster-events.js';

/** How long a notify hook may run before it is killed. */
export const NOTIFY_TIMEOUT_MS = 30_000;

export function notifyHooks(o: { node: string; cluster: string; clock: Clock; log: Logger }): ClusterSubscriber {
  const { log } = o;
  return (e) => {
    if (e.type !== 'group_state' || !e.hook) return;
    const { group, to: state, hook } = e;
    try {
      const child = spawn(hook, [group, state], {
        stdio: 'ignore',
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', FWLB_NODE: o.node, FWLB_CLUSTER: o.cluster, FWLB_GROUP: group, FWLB_STATE: state, FWLB_VIPS: e.vips.join(' ') },
      });
      const timer = o.clock.after(NOTIFY_TIMEOUT_MS, () => child.kill('SIGKILL'));
      child.on('error', (err) => log.warn({ group, err: err.message }, 'notify hook failed to start'));
      child.on('exit', (code, signal) => {
        timer.cancel();
        if (code !== 0) log.warn({ group, state, code, signal }, 'notify hook failed');
      });
    } catch (err) {
      log.warn({ group, err: (err as Error).message }, 'notify hook failed to start');
    }
  };
}
