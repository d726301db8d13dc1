/**
 * The stream of cluster events (fsm/cluster.ts) the subsystems feed and the consumers
 * subscribe to: one machine holds the node's place in the cluster; each input steps it, and
 * each event it emits is stamped with the clock and handed to every subscriber in order. A
 * subscriber that throws is logged and does not stop the others. The last events are kept
 * for `fwlb status` and the status page (a ring of `keep`).
 *
 * A new consumer is one file and one line of assembly: `events.subscribe(consumer)`.
 */
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { initialCluster, stepCluster, type ClusterInput, type ClusterState, type Stamped } from '../fsm/cluster.js';

export type ClusterSubscriber = (e: Stamped, state: ClusterState) => void;

export class ClusterEvents {
  private state: ClusterState = initialCluster();
  private readonly subscribers = new Set<ClusterSubscriber>();
  private readonly recentRing: Stamped[] = [];
  private delivering = false;
  private readonly pending: ClusterInput[] = [];

  constructor(private readonly deps: { clock: Clock; log: Logger; keep?: number }) {}

  /** Subscribes; returns the unsubscribe. */
  subscribe(fn: ClusterSubscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /**
   * What a subsystem reports. An input fed by a subscriber while events are being delivered
   * is stepped after them, so every subscriber sees the events in the same order.
   */
  feed(input: ClusterInput): void {
    this.pending.push(input);
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let i = this.pending.shift(); i; i = this.pending.shift()) {
        const r = stepCluster(this.state, i);
        this.state = r.state;
        for (const e of r.events) this.deliver({ ...e, at: this.deps.clock.now() });
      }
    } finally {
      this.delivering = false;
    }
  }

  current(): ClusterState {
    return this.state;
  }

  /** The last events, oldest first. */
  recent(): readonly Stamped[] {
    return this.recentRing;
  }

  private deliver(e: Stamped): void {
    this.recentRing.push(e);
    if (this.recentRing.length > (this.deps.keep ?? 200)) this.recentRing.shift();
    for (const fn of this.subscribers) {
      try {
        fn(e, this.state);
      } catch (err) {
        this.deps.log.error({ event: 'cluster_subscriber_failed', on: e.type, err: (err as Error).message }, 'a cluster event subscriber failed');
      }
    }
  }
}
