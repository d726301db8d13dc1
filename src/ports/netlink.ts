/** Port: what a netlink socket counts (adapters/netlink/socket.ts), as status and metrics show it. */
import type { NetlinkDecodeReason } from '../codec/netlink/nlmsg.js';

export interface SocketCounters {
  datagrams: number;
  messages: number;
  notifications: number;
  lost: number;
  dropped: Partial<Record<SocketDropReason, number>>;
}

/** Reasons a received datagram or message is dropped by the socket layer. */
export type SocketDropReason =
  | NetlinkDecodeReason
  | 'truncated' // the datagram was larger than the receive buffer
  | 'not_from_kernel' // sender port id is not 0
  | 'stale_reply' // a reply to no pending request (late, after a timeout)
  | 'unsolicited'; // a unicast message that is not a reply at all
