/**
 * Ancillary data of recvmsg(2) (control messages, cmsg(3)) as Linux lays it out on LP64:
 * each `struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }` (16 bytes) then
 * its data, the next one at cmsg_len rounded up to 8. And what an IPv6 raw socket's receiver
 * needs from it (RFC 3542 section 6): the hop limit the packet arrived with (IPV6_HOPLIMIT,
 * an int) and its destination and arrival interface (IPV6_PKTINFO, struct in6_pktinfo
 * { in6_addr; int ifindex }). The bytes come from the kernel, but a decoder never trusts a
 * length: one that runs past the buffer, or is shorter than a header, ends the walk with a
 * reason. Pure.
 */
import { formatIPv6 } from '../lib/ip-bytes.js';

export const SIZEOF_CMSGHDR = 16;
const ALIGN = 8;
// <linux/in6.h>
export const IPPROTO_IPV6 = 41;
export const IPV6_PKTINFO = 50;
export const IPV6_HOPLIMIT = 52;

export interface ControlMessage {
  level: number;
  type: number;
  data: Uint8Array;
}

export type CmsgResult = { ok: true; value: ControlMessage[] } | { ok: false; reason: 'short_header' | 'bad_length'; at: number };

/** The control messages in the first `length` bytes of `buf` (msg_controllen after the call). */
export function parseControlMessages(buf: Uint8Array, length = buf.length): CmsgResult {
  const end = Math.min(length, buf.length);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: ControlMessage[] = [];
  let at = 0;
  while (at < end) {
    if (end - at < SIZEOF_CMSGHDR) return { ok: false, reason: 'short_header', at };
    const len = Number(view.getBigUint64(at, true));
    if (len < SIZEOF_CMSGHDR || len > end - at) return { ok: false, reason: 'bad_length', at };
    out.push({ level: view.getInt32(at + 8, true), type: view.getInt32(at + 12, true), data: buf.subarray(at + SIZEOF_CMSGHDR, at + len) });
    at += Math.ceil(len / ALIGN) * ALIGN;
  }
  return { ok: true, value: out };
}

export interface Ipv6ArrivalInfo {
  /** The hop limit the packet arrived with (IPV6_RECVHOPLIMIT). */
  hopLimit?: number;
  /** Its destination address (IPV6_RECVPKTINFO). */
  destination?: string;
  /** The interface it arrived on (IPV6_RECVPKTINFO). */
  ifindex?: number;
}

/** Hop limit, destination and interface from an IPv6 socket's control messages; the ones of the wrong size are ignored. */
export function ipv6ArrivalInfo(msgs: readonly ControlMessage[]): Ipv6ArrivalInfo {
  const info: Ipv6ArrivalInfo = {};
  for (const m of msgs) {
    if (m.level !== IPPROTO_IPV6) continue;
    const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    if (m.type === IPV6_HOPLIMIT && m.data.length >= 4) info.hopLimit = v.getInt32(0, true);
    else if (m.type === IPV6_PKTINFO && m.data.length >= 20) {
      info.destination = formatIPv6(m.data, 0);
      info.ifindex = v.getInt32(16, true);
    }
  }
  return info;
}

/** One control message as the kernel writes it (for tests and fixtures). */
export function encodeControlMessage(level: number, type: number, data: Uint8Array): Buffer {
  const len = SIZEOF_CMSGHDR + data.length;
  const b = Buffer.alloc(Math.ceil(len / ALIGN) * ALIGN);
  b.writeBigUInt64LE(BigInt(len), 0);
  b.writeInt32LE(level, 8);
  b.writeInt32LE(type, 12);
  b.set(data, SIZEOF_CMSGHDR);
  return b;
}
