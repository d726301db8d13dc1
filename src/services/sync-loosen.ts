/**
 * Loosening the table: every TCP entry of our kernel marked liberal in window tracking
 * (IP_CT_TCP_FLAG_BE_LIBERAL both ways), as every entry the state sync writes already is.
 *
 * Run when this node stops carrying the traffic (it leaves master): the entries it tracked
 * itself while it carried the traffic are never written by the sync afterwards (an
 * established flow makes no conntrack event on the new master), so when it takes over again
 * their windows are those of the moment it left, and the first ACK for data sent through the
 * other node meanwhile is INVALID ("ACK is over the upper bound"): every session stalled until
 * TCP gave up on the old path (issue 20: a 3.1 s stall, seed 40629). conntrackd does the same
 * at each takeover (its commit writes the whole external cache with the flag). In the
 * background, batch by batch, so that VRRP and everything else run between batches.
 */
import type { Logger } from 'pino';
import { bodyToRawV2, entryToBodyV2 as entryToBody } from '../codec/sync/entry-v2.js';
import type { CtWriteOp, RawCtEntry } from '../codec/netlink/ctnetlink.js';
import type { Clock } from '../lib/clock.js';
import type { ConntrackStore } from '../ports/sync.js';

export interface LoosenDeps {
  ct: Pick<ConntrackStore, 'dumpStream' | 'writeBatch'>;
  clock: Clock;
  log: Logger;
  /** The sync still runs (a stop ends the loosening between batches). */
  running: () => boolean;
  /** Entries marked. */
  count: (n: number) => void;
}

export async function loosenTable(d: LoosenDeps, why: string): Promise<void> {
  const t0 = d.clock.now();
  let written = 0;
  let failed = 0;
  try {
    await d.ct.dumpStream(async (entries) => {
      if (!d.running()) return 'stop';
      const writes: { op: CtWriteOp; entry: RawCtEntry }[] = [];
      for (const e of entries) {
        if (e.orig.proto !== 6) continue;
        const raw = bodyToRawV2(entryToBody(e));
        if (raw.ok) writes.push({ op: 'update', entry: raw.value });
      }
      if (writes.length > 0) {
        const r = d.ct.writeBatch(writes, { beLiberal: true });
        for (const x of r) {
          if (x === undefined) written++;
          else if (x !== 'ENOENT') failed++; // ENOENT: gone meanwhile, nothing to loosen
        }
      }
      // VRRP and everything else run between batches.
      await new Promise<void>((res) => setImmediate(res));
    });
    d.count(written);
    d.log.info({ event: 'table_loosened', why, entries: written, failed, ms: Math.round(d.clock.now() - t0) }, `TCP entries marked liberal in window tracking (${why}): ${written}${failed ? `, ${failed} refused` : ''}`);
  } catch (err) {
    d.log.warn({ event: 'table_loosen_failed', why, err: (err as Error).message }, 'could not mark the table liberal');
  }
}
