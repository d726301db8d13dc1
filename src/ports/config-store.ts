/**
 * Port: what the config distribution (services/config-dist.ts) keeps on disk through its
 * store (adapters/config-store.ts): the bundle it runs, the one before, the confirm it waits for.
 */
import type { Bundle } from '../codec/config/bundle.js';

/** A commit-confirm waiting: the version, and when it rolls back (ms since the epoch). */
export interface PendingConfirm {
  version: number;
  deadline: number;
}

export interface StoredVersions {
  current?: Bundle;
  previous?: Bundle;
  confirm?: PendingConfirm;
  /** Files found damaged (and left out), each with why. */
  problems: string[];
}

export interface VersionStore {
  saveVersions(current: Bundle, previous: Bundle | undefined): Promise<void>;
  saveConfirm(c: PendingConfirm | undefined): Promise<void>;
}
