/**
 * Port: what the state sync needs of the host: conntrack read and written over ctnetlink
 * (adapters/netlink/ctnetlink.ts) and a datagram transport to the peers (adapters/udp-socket.ts).
 */
import type { ConntrackEntry, CtWriteOp, RawCtEntry } from '../codec/netlink/ctnetlink.js';

/** What the service needs of conntrack (adapters/netlink/ctnetlink.ts). */
export interface ConntrackStore {
  /** The table in batches; a returned promise holds the dump back; 'stop' ends it (Ctnetlink.dumpStream). */
  dumpStream(onBatch: (entries: ConntrackEntry[]) => void | 'stop' | Promise<void | 'stop'>): Promise<number>;
  /** Entries in the table, without reading them. */
  count(): Promise<number>;
  /**
   * Writes of received records, in order, done when it returns (adapters/netlink/ctnetlink.ts
   * writeBatch): per write undefined (done) or the errno name the kernel answered (EEXIST, a
   * create that found its entry; ENOENT, an update or delete that found none; EBUSY, an
   * update refused).
   */
  writeBatch(writes: readonly { op: CtWriteOp; entry: RawCtEntry }[], opts: { beLiberal?: boolean }): (string | undefined)[];
  onEvent(cb: (e: { kind: 'new' | 'update' | 'destroy'; entry: ConntrackEntry; self: boolean } | { kind: 'lost' }) => void): () => void;
}

export interface SyncTransport {
  send(buf: Buffer, address: string): void;
  close(): void;
  /** Datagrams the kernel dropped on the socket (receive buffer full), if it can tell. */
  receiveDrops?(): number | undefined;
}
