/**
 * Which config version wins (issue 24): the verdict on a pushed bundle against the running
 * version, the next version's number, the rollback a missed confirm leads to, and how a
 * peer's version compares with ours. Pure: no I/O, no clock.
 *
 * Rules. A version is a counter that only grows across the cluster and the hash of its
 * files. Newer wins; an older one is refused; the running one again is a replay, refused;
 * the same number with other files is a conflict, refused and reported (two nodes pushed at
 * once: the operator pushes again, and the next number settles it). A rollback is the
 * version after the unconfirmed one, with the files before it: every node that held both
 * makes the same one (same number, files, origin and time), so they never conflict; a node
 * on which the version was confirmed refuses to go back.
 */
import type { BundleMeta } from '../codec/config/bundle.js';
import type { ConfigRefusal } from '../codec/config/messages.js';

/** What a node runs, as far as versions go. */
export interface RunningVersion {
  cluster: string;
  /** 0: nothing pushed yet (the file each node was started with). */
  version: number;
  /** The files' hash (codec/config/bundle.ts filesHash) of what runs. */
  hash: string;
  /** False while a commit-confirm of this version waits for its confirm. */
  confirmed: boolean;
}

export { CONFIG_REFUSALS, type ConfigRefusal } from '../codec/config/messages.js';

export type PushVerdict = { apply: true } | { apply: false; reason: ConfigRefusal; message: string };

export function judgePush(cur: RunningVersion, m: BundleMeta): PushVerdict {
  if (m.cluster !== cur.cluster) return { apply: false, reason: 'other_cluster', message: `a config of cluster "${m.cluster}", this is "${cur.cluster}"` };
  if (m.version < cur.version) return { apply: false, reason: 'older', message: `version ${m.version} is older than the running ${cur.version}` };
  if (m.version === cur.version) {
    return m.hash === cur.hash
      ? { apply: false, reason: 'replayed', message: `version ${m.version} runs here already` }
      : { apply: false, reason: 'conflict', message: `version ${m.version} runs here with other files (${cur.hash.slice(0, 12)}, pushed ${m.hash.slice(0, 12)}): two pushes of one version; push again` };
  }
  if (m.rollbackOf !== undefined && m.rollbackOf === cur.version && cur.confirmed && m.rollbackOf > 0) {
    return { apply: false, reason: 'confirmed', message: `a rollback of version ${m.rollbackOf}, which was confirmed here` };
  }
  return { apply: true };
}

/** The number of a new push: past every version this node knows of, its own and its peers'. */
export function nextVersion(own: number, peers: readonly (number | undefined)[]): number {
  return Math.max(own, ...peers.map((p) => p ?? 0)) + 1;
}

/**
 * The rollback of `applied` (pushed with a confirm time) to the files of hash
 * `applied.previousHash`: the same on every node that makes it.
 */
export function rollbackMeta(applied: BundleMeta): BundleMeta | undefined {
  if (applied.confirmMs === undefined || applied.previousHash === undefined) return undefined;
  return { cluster: applied.cluster, version: applied.version + 1, hash: applied.previousHash, origin: 'rollback', at: applied.at + applied.confirmMs, rollbackOf: applied.version };
}

export type PeerVersionState = 'same' | 'behind' | 'ahead' | 'differs' | 'unknown';

/** A peer's version against ours: `differs` when the numbers match and the files do not. */
export function comparePeer(own: { version: number; hash: string }, peer: { version: number; hash: string } | undefined): PeerVersionState {
  if (!peer) return 'unknown';
  if (peer.version < own.version) return 'behind';
  if (peer.version > own.version) return 'ahead';
  return peer.hash === own.hash ? 'same' : 'differs';
}
