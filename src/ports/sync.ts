/**
 * Port: what the state sync needs of the host: conntrack read and written over ctnetlink
 * (adapters/netlink/ctnetlink.ts) and a datagram transport to the peers (adapters/udp-socket.ts).
 */
import type { ConntrackEntry, CtWriteOp, RawCtEntry } from '../codec/netlink/ctnetlink.js';

/** What the service needs of conntrack (adapters/netlink/ctnetlink.ts). */
export interface ConntrackStore {
  /** The table in batches; a returned promise holds the dump back; 'stop' ends it (Ctnetlink.dumpStream). */
  dumpStream(onBatch: (entries: ConntrackEntry[]) => void | 'stop' | Promise<void | 'stop'>): Promise<number>;
  /** The table as sync records (body and mark), in batches as dumpStream (Ctnetlink.dumpRecords). */
  dumpRecords(onBatch: (records: { body: Uint8Array; mark: number | undefined }[]) => void | 'stop' | Promise<void | 'stop'>): Promise<number>;
  /** Entries in the table, without reading them. */
  count(): Promise<number>;
  /**
   * Writes of received records, in order, done when it returns (adapters/netlink/ctnetlink.ts
   * writeBatch): per write undefined (done) or the errno name the kernel answered (EEXIST, a
   * create that found its entry; ENOENT, an update or delete that found none; EBUSY, an
   * update refused).
   */
  writeBatch(writes: readonly { op: CtWriteOp; entry: RawCtEntry }[], opts: { beLiberal?: boolean }): (string | undefined)[];
  /**
   * Every conntrack event as the sync record it becomes (codec/sync/entry-v2-netlink.ts: the
   * body straight from the kernel's bytes) and its mark; `self`: caused by our own writes.
   * `{kind:'lost'}` when the kernel dropped events (the socket's buffer was full).
   */
  onRecord(cb: (e: CtRecordEvent | { kind: 'lost' }) => void): () => void;
}

export interface CtRecordEvent {
  kind: 'new' | 'update' | 'destroy';
  /** The sync record's body (entry-v2.ts). */
  body: Uint8Array;
  /** CTA_MARK (sharing's bucket), undefined when the kernel sent none. */
  mark: number | undefined;
  self: boolean;
}

export interface SyncTransport {
  send(buf: Buffer, address: string): void;
  close(): void;
  /** Datagrams the kernel dropped on the socket (receive buffer full), if it can tell. */
  receiveDrops?(): number | undefined;
}
