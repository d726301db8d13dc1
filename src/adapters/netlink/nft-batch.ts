/**
 * nf_tables transactions over netlink (codec/netlink/nft-batch.ts): the tables nft(8) cannot
 * write (the shared IPv6 addresses' neighbour discovery, compiler/sharing-nd.ts). One socket,
 * one batch per call; the kernel applies a batch whole or not at all.
 */
import { encodeTableReplace, type NftTableSpec } from '../../codec/netlink/nft-batch.js';
import { NETLINK_NETFILTER } from '../../codec/netlink/ctnetlink.js';
import type { Poller } from './poller.js';
import { NetlinkSocket } from './socket.js';

export class NftBatch {
  private constructor(private readonly sock: NetlinkSocket) {}

  static open(poller: Poller): NftBatch {
    return new NftBatch(NetlinkSocket.open({ poller, protocol: NETLINK_NETFILTER, timeoutMs: 5000 }));
  }

  /** Replaces the table whole; rejects with the kernel's errno (NetlinkError) and changes nothing then. */
  async replaceTable(spec: NftTableSpec): Promise<void> {
    await this.sock.request((seq) => encodeTableReplace(seq, spec), { dump: false, op: `nf_tables batch (table ${spec.family} ${spec.name})` });
  }

  close(): void {
    this.sock.close();
  }
}
