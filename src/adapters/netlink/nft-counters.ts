/**
 * The named counters of an nftables table read over netlink (NFT_MSG_GETOBJ dump), for
 * `fwlb status` and the metrics: no nft(8) child per status (200 concurrent status requests
 * used to spawn as many), one socket, one small dump (a counter per backend).
 */
import { decodeCounterObject, encodeCounterDump, type NftFamily } from '../../codec/netlink/nftables.js';
import { NETLINK_NETFILTER } from '../../codec/netlink/ctnetlink.js';
import { NetlinkError } from './errors.js';
import type { Poller } from './poller.js';
import { NetlinkSocket } from './socket.js';

export class NftCounters {
  private readonly sock: NetlinkSocket;
  /** Answers the codec refused, by reason (never thrown). */
  readonly dropped: Record<string, number> = {};

  private constructor(sock: NetlinkSocket) {
    this.sock = sock;
  }

  static open(poller: Poller): NftCounters {
    return new NftCounters(NetlinkSocket.open({ poller, protocol: NETLINK_NETFILTER, timeoutMs: 5000 }));
  }

  /**
   * Counter name -> packets of every counter object of the table; an empty map when the
   * table does not exist (ENOENT). Other kernel refusals reject (NetlinkError).
   */
  async read(family: NftFamily, table: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    let reply;
    try {
      reply = await this.sock.request((seq) => encodeCounterDump(seq, family, table), { dump: true, op: 'NFT_MSG_GETOBJ' });
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === 'ENOENT') return out;
      throw e;
    }
    for (const m of reply.messages) {
      const r = decodeCounterObject(m);
      if (!r.ok) {
        this.dropped[r.reason] = (this.dropped[r.reason] ?? 0) + 1;
        continue;
      }
      if (r.value.table === table) out.set(r.value.name, r.value.packets);
    }
    return out;
  }

  close(): void {
    this.sock.close();
  }
}
