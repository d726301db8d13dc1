/**
 * A consumer of the cluster events: how many of each type since the start (`fwlb status`
 * `role.eventCounts`, and `fwlb_cluster_events_total` in the metrics). A flapping peer or
 * VRRP group shows here as a count that climbs.
 */
import type { ClusterSubscriber } from '../services/cluster-events.js';

export function eventCounts(): { subscriber: ClusterSubscriber; counts: () => Record<string, number> } {
  const n: Record<string, number> = {};
  return {
    subscriber: (e) => void (n[e.type] = (n[e.type] ?? 0) + 1),
    counts: () => ({ ...n }),
  };
}
