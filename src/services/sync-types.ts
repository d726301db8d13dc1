/**
 * The state sync's vocabulary: its peers, what it depends on, its status record, and its
 * counters and drop reasons as closed lists (every name reported, zeros included), the
 * service's own beside its machines' (link: sender_*, receiver_*; bulk_*).
 */
import { SYNC_DECODE_REASONS } from '../codec/sync/message.js';
import { ENTRY_V2_DECODE_REASONS as ENTRY_DECODE_REASONS } from '../codec/sync/entry-v2.js';
import { REPLAY_REJECT_REASONS } from '../fsm/sync/replay.js';
import * as receiver from '../fsm/sync/receiver.js';
import * as bulkFsm from '../fsm/sync/bulk.js';
import * as sender from '../fsm/sync/sender.js';
import type * as linkFsm from '../fsm/sync/link.js';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { ConntrackStore, SyncTransport } from '../ports/sync.js';
import type { PeerLagStatus } from './sync-lag.js';

/** A record the kernel would not take for an entry of its own: when, and the record's tuples. */
export interface SyncConflict { at: string; orig: string; reply: string }

/** The service's own counters, beside its machines' (link: sender_*, receiver_*; bulk_*). */
export const SYNC_SERVICE_COUNTERS = [
  'datagrams_sent',
  'send_errors',
  'records_replicated', // our conntrack events queued for the peers
  'records_applied', // received records written into our kernel
  'updates_replaced', // a record the kernel would not apply in place: the entry was replaced
  'replace_conflicts', // a record whose replacement the kernel refused as existing: its flow has an entry, not ours
  'records_stale_kept', // sharing: a record older than our entry (it would clear status bits): not written
  'peer_pushes_waited', // sharing: times this node, joining, waited for a peer's own entries before taking buckets
  'apply_errors',
  'events_lost', // the kernel's event queue overflowed (a full push follows)
  'queue_overflows', // a peer's send queue overflowed (that peer gets the whole table)
  'peers_lost', // a peer went silent: nothing is queued for it until it is back
  'peers_behind', // a peer's oldest unacknowledged change got older than state_sync.lag_bound (once per episode)
  'bulk_pushes', // whole tables pushed to a peer (asked for, or after an overflow)
  'entries_loosened', // own TCP entries marked liberal on leaving master (loosenTable)
] as const;

/** Every counter name the sync reports: a closed record, zeros included. */
export const SYNC_COUNTERS = [
  ...SYNC_SERVICE_COUNTERS,
  ...sender.SENDER_COUNTERS.map((c) => `sender_${c}` as const),
  ...receiver.RECEIVER_COUNTERS.map((c) => `receiver_${c}` as const),
  'link_stale_timer' as const,
  ...bulkFsm.BULK_COUNTERS.map((c) => (c.startsWith('bulk_') ? c : (`bulk_${c}` as const))),
];
export type SyncCounter = (typeof SYNC_COUNTERS)[number];

/** Every reason a received datagram or record is dropped: a closed record, zeros included. */
export const SYNC_DROP_REASONS = [
  ...SYNC_DECODE_REASONS,
  ...REPLAY_REJECT_REASONS,
  'misdirected' as const,
  'no_session' as const,
  'unknown_peer' as const,
  ...ENTRY_DECODE_REASONS.map((r) => `entry_${r}` as const),
];
export type SyncDropReason = (typeof SYNC_DROP_REASONS)[number];

export interface SyncPeer {
  name: string;
  id: number;
  address: string;
}

export interface StateSyncDeps {
  clock: Clock;
  log: Logger;
  /** The derived sync key (codec/sync deriveSyncKey). */
  key: Uint8Array;
  selfId: number;
  epoch: number;
  peers: SyncPeer[];
  ct: ConntrackStore;
  /** Opens the UDP socket; datagrams come back with their source address. */
  transport: (onDatagram: (buf: Buffer, from: string) => void) => SyncTransport;
  /**
   * This node owns the entry: it carries the entry's traffic, and replicates its changes to
   * every peer (no one else does). Active-standby: the VRRP master owns every entry.
   * Active-active will assign it per flow (the bucket of the original tuple's hash).
   */
  owns: (entry: { mark?: number | undefined }) => boolean;
  /**
   * Sharing: every node speaks for the flows of its own buckets. A peer whose session starts
   * gets our own entries at once (it asks only one of us for a table); records are written
   * as SyncWriterDeps.sharing says; peersPending() tells a joining node whose entries it lacks.
   */
  sharing?: boolean;
  /** Hold VRRP back while the bulk sync is not complete. */
  demote: (on: boolean, why: string) => void;
  /** A bulk sync under way ended (done, or gave up), or (sharing) a peer's own entries are in: readiness may have changed. */
  bulkSettled?: () => void;
  /** A peer is heard by other means than the sync link (as VRRP master): we are not alone. */
  peerAliveElsewhere?: () => boolean;
  /** Our table became complete, or incomplete again (VRRP holds preemption while it is not). */
  tableComplete?: (complete: boolean, why: string) => void;
  /** Bulk sync timing (waits for a peer): fsm/sync/bulk.ts defaults otherwise. */
  bulk?: Partial<bulkFsm.BulkConfig>;
  /** A peer whose oldest unacknowledged change is older than this is behind (ms; default 1000). */
  lagBoundMs?: number;
}

export interface StateSyncStatus {
  /** `refused`: writes the kernel refused during the attempt under way (or the last one). */
  bulk: { state: string; text: string; complete: boolean; source: string | null; received: number; refused: number; attempt: number };
  peers: (ReturnType<typeof linkFsm.linkStatus> & { lag: PeerLagStatus })[];
  /** Records received from the peers and not yet in our kernel, and how long the oldest has waited. */
  writeBacklog: { records: number; oldestMs: number };
  sent: number;
  applied: number;
  applyErrors: number;
  /** The kernel's refusals of our writes, by operation and errno ("create:ENOMEM"). */
  applyErrorsBy: Record<string, number>;
  /**
   * The last records (at most 8) whose entry the kernel would not take because it holds
   * another for the flow (replace_conflicts): when, and the record's tuples, to be found in
   * the table (`conntrack -L`).
   */
  lastConflicts: SyncConflict[];
  counters: Record<SyncCounter, number>;
  drops: Record<SyncDropReason, number>;
  /** Datagrams the kernel dropped before we could read them (a full receive buffer); null if unknown. */
  socketDrops: number | null;
}
