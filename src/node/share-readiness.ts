/**
 * When a sharing node takes its buckets (issue 14, 20): once it holds the cluster's state and
 * every shared link is up; and its BEATs say it is ready only once its kernel owns them.
 *
 * - A shared link that comes back: the kernel saw one direction of its flows (or none) while
 *   it was cut off, so their entries are stale (TCP windows): the whole table again from a
 *   peer first (a resync), then the buckets.
 * - A node just started knows its peers from the sync before their BEATs say which of them
 *   carry buckets: taking its share then means taking every bucket for a moment, the ones the
 *   others carry included. It waits for a BEAT of every peer it syncs with (at most
 *   HEARD_WAIT_MS: a peer whose BEATs never come is left out). A node that carries never
 *   waits so: a peer that joins (its sync up before its first BEAT) carries nothing yet.
 * - A node that joins holds the table of the one peer it synced from, and a flow another peer
 *   carries reaches it only from that peer: it waits for the entries of every live peer (each
 *   pushes its own when their session begins; StateSyncService.peersPending) before it takes
 *   a bucket, at most PEER_ENTRIES_WAIT_MS. A node that already carries never waits for them.
 * - Our kernel owns our buckets before our BEATs say so: the peers give them up when they hear
 *   it, and a bucket nobody owns meanwhile drops its packets (a TCP retransmission later: a
 *   stall of 200 ms or more for the flows in it).
 */
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { BoundedWait } from '../lib/bounded-wait.js';
import type { LivenessService } from '../services/liveness.js';
import type { SharingService } from '../services/sharing.js';
import type { StateSyncService } from '../services/state-sync.js';

export const HEARD_WAIT_MS = 1000;
/** Longest wait of a joining node for its peers' own entries (a push that never ends). */
export const PEER_ENTRIES_WAIT_MS = 10_000;

export interface ShareReadinessDeps {
  sharing: SharingService;
  clock: Clock;
  log: Logger;
  /** The node's own readiness (ruleset, VRRP, the table). */
  nodeReady: () => boolean;
  /** Shared links without carrier, or down. */
  linksDown: () => string[];
  sync: () => StateSyncService | undefined;
  liveness: () => LivenessService | undefined;
}

export class ShareReadiness {
  /** A shared link came back: the table is pulled again before the buckets are taken. */
  private resyncAsked = false;
  /** The readiness last given to sharing. */
  private shareReady = false;
  /** A node that is ready waits for the first BEATs of the peers it syncs with (once). */
  private readonly heardWait: BoundedWait;
  /** A joining node waits for its peers' own entries (anew whenever some are pending again). */
  private readonly entriesWait: BoundedWait;

  constructor(private readonly d: ShareReadinessDeps) {
    this.heardWait = new BoundedWait(d.clock, HEARD_WAIT_MS, () => this.check());
    this.entriesWait = new BoundedWait(d.clock, PEER_ENTRIES_WAIT_MS, () => this.check());
  }

  /** Looks again (after a sync, a BEAT heard, a link change, each second). */
  check(): void {
    const { sharing } = this.d;
    const sync = this.d.sync();
    const liveness = this.d.liveness();
    if (this.resyncAsked && !sync?.bulkInProgress()) this.resyncAsked = false;
    const unheard = liveness && sync ? sync.livePeers().filter((p) => !liveness.heard(p)) : [];
    const nodeReady = this.d.nodeReady() && this.d.linksDown().length === 0 && !this.resyncAsked;
    // Only a node that does not carry yet: a new peer carries nothing until its BEATs say so.
    const waitingToHear = this.heardWait.holds(nodeReady && !this.shareReady && unheard.length > 0);
    const ready = nodeReady && !waitingToHear && !this.waitingForEntries(nodeReady, sync);
    this.shareReady = ready;
    sharing.setReady(ready);
    if (!ready) {
      liveness?.setReady(false);
      return;
    }
    void sharing.settled().then(() => {
      if (this.shareReady) this.d.liveness()?.setReady(true);
    });
  }

  /** A joining node (not carrying yet) lacks some live peer's own entries; true while it waits for them. */
  private waitingForEntries(nodeReady: boolean, sync: StateSyncService | undefined): boolean {
    const { log } = this.d;
    const pending = nodeReady && !this.shareReady && sync ? sync.peersPending() : [];
    if (pending.length === 0) {
      this.entriesWait.reset();
      return false;
    }
    return this.entriesWait.holds(true, {
      onBegin: () => {
        sync?.countPeerWait();
        log.info({ event: 'sharing_wait_entries', peers: pending }, `sharing: waiting for the entries of ${pending.join(', ')} before taking buckets`);
      },
      // Said once per wait (the node may be held back by something else meanwhile).
      onOver: () => log.warn({ event: 'sharing_wait_entries_over', peers: pending }, `sharing: the entries of ${pending.join(', ')} did not all come within ${PEER_ENTRIES_WAIT_MS} ms: taking the buckets without them`),
    });
  }

  /** A shared link's carrier changed. */
  linkChanged(ifname: string, up: boolean): void {
    this.d.log.warn({ event: 'sharing_link', ifname, up }, up ? `sharing: ${ifname} is up again: taking the table again before the buckets` : `sharing: ${ifname} is down: this node gives up its buckets until it is back`);
    const sync = this.d.sync();
    if (up && sync) {
      sync.resync(`${ifname} is up again`);
      this.resyncAsked = true;
    }
    this.check();
  }
}
