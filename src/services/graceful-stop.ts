/**
 * What a graceful stop of a node that carries traffic waits for before it hands over (the
 * wait of NodeDaemon.stop), within `state_sync.stop_wait` in all:
 *
 * 1. A peer that is ready to take over (its bulk sync complete). Stopping the master while
 *    its peer is still starting must not leave the VIPs with nobody, nor with a node that
 *    lacks the sessions. A node that never had a peer in its run does not wait; nobody alive
 *    and nobody back within a restart's time (STOP_WAIT_ABSENT_MS): the cluster is being shut
 *    down.
 * 2. Its ready peers caught up (issue 25): no resync of the peer pending or under way (its
 *    queue was dropped: the whole table covers it), every change queued before this step
 *    began acknowledged by each of them, and then (with the liveness on) a BEAT of each says its
 *    kernel has them: not BEHIND, and not WRITING (records waiting for its kernel) — or, when
 *    new traffic keeps it writing, not BEHIND once `lag_bound` more has passed.
 *
 * Times are the caller's monotonic clock (`now`). `fwlb stop --force` or a second SIGTERM ends the wait (`skip`). Every wait is logged: what
 * it waits for, how long it took, or what it still lacked at the deadline.
 */
import type { Logger } from 'pino';
import type { StateSyncService } from './state-sync.js';
import type { LivenessStatus } from './liveness.js';
import type { SyncLag } from './sync-lag.js';

/**
 * A stopping master waits this long for a peer that is absent (stopped or dead) to come back
 * (a restart says HELLO well within it); then it stops without one.
 */
const STOP_WAIT_ABSENT_MS = 3000;
/** How often the waits look again (a stop only). */
const POLL_MS = 10;

export interface StopWaitDeps {
  log: Logger;
  now: () => number;
  sync: Pick<StateSyncService, 'readyPeers' | 'livePeers' | 'everHadPeer' | 'resyncing'> & { lag: Pick<SyncLag, 'oldestAgeMs'> };
  liveness?: () => LivenessStatus | undefined;
  /** state_sync.stop_wait and state_sync.lag_bound (ms). */
  waitMs: number;
  lagBoundMs: number;
  /** The wait under way can be ended now (or no longer: undefined). */
  setSkip: (end: (() => void) | undefined) => void;
}

/** Polls `check` every POLL_MS until it says true, `untilMs` passes, or the wait is skipped. */
function pollUntil(d: StopWaitDeps, untilMs: number, check: () => boolean): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    if (check()) return resolve(true);
    const done = (v: boolean) => {
      clearInterval(poll);
      d.setSkip(undefined);
      resolve(v);
    };
    const poll = setInterval(() => {
      if (check()) done(true);
      else if (d.now() >= untilMs) done(false);
    }, POLL_MS);
    d.setSkip(() => done(false));
  });
}

export async function waitBeforeHandover(d: StopWaitDeps): Promise<void> {
  const { sync, log } = d;
  const t0 = d.now();
  const until = t0 + d.waitMs;
  if (sync.readyPeers().length === 0 && sync.everHadPeer()) {
    log.warn({ event: 'stop_wait', waitMs: d.waitMs, live: sync.livePeers() }, `stopping: waiting up to ${d.waitMs} ms for a peer that is ready to take over`);
    // Nobody alive (the peers stopped, or died) and nobody back within a restart's time:
    // they are not coming; the cluster is being shut down.
    let gone = false;
    const ok = await pollUntil(d, until, () => sync.readyPeers().length > 0 || (gone = sync.livePeers().length === 0 && d.now() - t0 > STOP_WAIT_ABSENT_MS));
    const waited = Math.round(d.now() - t0);
    if (ok && !gone) log.info({ event: 'stop_wait_done', waitedMs: waited, peers: sync.readyPeers() }, `a ready peer is there after ${waited} ms: handing over`);
    else {
      log.warn({ event: 'stop_wait_timeout', waitedMs: waited }, `no ready peer after ${waited} ms: handing over anyway`);
      return;
    }
  }
  await waitCatchUp(d, until);
}

/** Per ready peer: what it still lacks, or undefined once it has caught up (see the file's head). */
export function catchUpLacks(p: { resyncing: boolean; unackedAgeMs: number | undefined; sinceStartMs: number; ackedForMs: number | undefined; told: { behind: boolean; writing: boolean; beatAgoMs: number | null } | undefined; lagBoundMs: number }): string | undefined {
  // Its queue was dropped (an overflow, a silence): the changes are in the whole table it gets, not in the queue.
  if (p.resyncing) return 'it gets the whole table (a resync or a push of ours under way)';
  if (p.unackedAgeMs !== undefined && p.unackedAgeMs >= p.sinceStartMs) return `changes not acknowledged (oldest ${Math.round(p.unackedAgeMs)} ms)`;
  if (!p.told) return undefined; // no liveness: the ack is all there is
  if (p.ackedForMs === undefined || p.told.beatAgoMs === null || p.told.beatAgoMs >= p.ackedForMs) return 'no BEAT since it acknowledged them';
  if (p.told.behind) return 'its BEAT says it is behind';
  if (p.told.writing && p.ackedForMs < p.lagBoundMs) return 'its BEAT says records wait for its kernel';
  return undefined;
}

async function waitCatchUp(d: StopWaitDeps, until: number): Promise<void> {
  const { sync, log } = d;
  const start = d.now();
  const ackedAt = new Map<string, number>();
  const lacking = (): Record<string, string> => {
    const now = d.now();
    const live = d.liveness?.();
    const out: Record<string, string> = {};
    for (const peer of sync.readyPeers()) {
      const unackedAgeMs = sync.lag.oldestAgeMs(peer);
      const sinceStartMs = now - start;
      const resyncing = sync.resyncing(peer);
      if (!resyncing && !(unackedAgeMs !== undefined && unackedAgeMs >= sinceStartMs) && !ackedAt.has(peer)) ackedAt.set(peer, now);
      const l = live?.peers.find((x) => x.peer === peer);
      const acked = ackedAt.get(peer);
      const told = l?.told ? { behind: l.told.behind, writing: l.told.writing, beatAgoMs: l.lastBeatAgoMs } : undefined;
      const why = catchUpLacks({ resyncing, unackedAgeMs, sinceStartMs, ackedForMs: acked === undefined ? undefined : now - acked, told, lagBoundMs: d.lagBoundMs });
      if (why) out[peer] = why;
    }
    return out;
  };
  let last = lacking();
  if (Object.keys(last).length === 0) return;
  log.info({ event: 'stop_catch_up', lacking: last }, `stopping: waiting for the peers to catch up (${Object.entries(last).map(([p, w]) => `${p}: ${w}`).join('; ')})`);
  const ok = await pollUntil(d, until, () => Object.keys((last = lacking())).length === 0);
  const waited = Math.round(d.now() - start);
  if (ok) log.info({ event: 'stop_catch_up_done', waitedMs: waited }, `the peers caught up in ${waited} ms: handing over`);
  else log.warn({ event: 'stop_catch_up_timeout', waitedMs: waited, lacking: last }, `the peers had not caught up after ${waited} ms: handing over anyway (${Object.entries(last).map(([p, w]) => `${p}: ${w}`).join('; ')})`);
}
