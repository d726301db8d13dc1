/**
 * A consumer of the cluster events: each one logged as `cluster_event`, bucket lists as
 * counts (a move of thousands of buckets is one line).
 */
import type { Logger } from 'pino';
import type { ClusterSubscriber } from '../services/cluster-events.js';

export function logEvents(log: Logger): ClusterSubscriber {
  return (e) => {
    const { at: _at, ...rest } = e;
    const fields = 'buckets' in rest ? { ...rest, buckets: rest.buckets.length } : rest;
    const level = e.type === 'buckets_owned' || e.type === 'buckets_given_up' || e.type === 'group_state' ? 'debug' : 'info';
    log[level]({ event: 'cluster_event', ...fields }, `cluster: ${describe(e)}`);
  };
}

function describe(e: Parameters<ClusterSubscriber>[0]): string {
  switch (e.type) {
    case 'ready':
      return e.ready ? 'this node is ready' : `this node is not ready: ${e.reason}`;
    case 'vips_held':
      return `group ${e.group} holds ${e.vips.join(', ')}`;
    case 'vips_released':
      return `group ${e.group} released ${e.vips.join(', ')}`;
    case 'buckets_owned':
      return `${e.buckets.length} bucket(s) owned`;
    case 'buckets_given_up':
      return `${e.buckets.length} bucket(s) given up`;
    case 'peer_up':
    case 'peer_down':
    case 'peer_leaving':
      return `${e.peer} ${e.type.slice(5)}`;
    case 'group_state':
      return `group ${e.group} ${e.from} -> ${e.to}`;
    case 'config_applied':
      return e.changed ? `config ${e.digest.slice(0, 12)} applied` : `config ${e.digest.slice(0, 12)} applied (ruleset unchanged)`;
    case 'config_refused':
      return `config refused: ${e.reason}`;
    case 'stopping':
      return `stopping (${e.why})`;
  }
}
