/**
 * VRRP over raw IPv6 sockets (next header 112, RFC 9568 section 5.1.2), one per interface:
 * joined to ff02::12 on that interface, hop limit 255 on everything sent, our own multicast
 * not looped back, bound to the device, and bound to the interface's link-local address, so
 * that adverts leave from it and never from a virtual address (RFC 9568 5.1.2.1; keepalived
 * once picked a VIP after a reload, and a peer that saw two sources split the brain).
 *
 * An IPv6 raw socket hands over the payload only: the source comes in msg_name, the hop limit
 * and the destination in control messages (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO; RFC 3542),
 * read with recvmsg(2) (codec/cmsg.ts). The VRRP checksum (over the IPv6 pseudo-header) is
 * ours to compute and to check (codec/vrrp/packet.ts): the kernel is not asked to, so a bad
 * one is counted as a drop rather than vanishing.
 */
import koffi from 'koffi';
import { FwlbError } from '../lib/errors.js';
import { formatIPv6, parseIPv6 } from '../lib/ip-bytes.js';
import { ipv6ArrivalInfo, parseControlMessages, IPPROTO_IPV6 } from '../codec/cmsg.js';
import { VRRP_IP_TTL, VRRP_MCAST_GROUP_V6 } from '../codec/vrrp/constants.js';
import { AF_INET6, IPV6_ADD_MEMBERSHIP, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_IF, IPV6_MULTICAST_LOOP, IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO, IPV6_UNICAST_HOPS, MSG_DONTWAIT, SIZEOF_SOCKADDR_IN6, errnoName, int32, libc, sockaddrIn6 } from './libc.js';
import { openVrrpSocket, type FdWatcher } from './vrrp-socket.js';

/** struct msghdr on LP64. */
const SIZEOF_MSGHDR = 56;

/** An advert as received: its payload and the IPv6 fields the checks need. */
export interface ReceivedV6 {
  payload: Buffer;
  source: string;
  destination: string | undefined;
  hopLimit: number | undefined;
}

export interface VrrpSocketV6Options {
  ifname: string;
  ifindex: number;
  /** The interface's link-local address (not tentative): the source of our adverts. */
  linkLocal: string;
  watcher: FdWatcher;
  onPacket: (p: ReceivedV6) => void;
}

let recvmsgFn: ((fd: number, msg: Buffer, flags: number) => number) | undefined;
const recvmsg = () => (recvmsgFn ??= koffi.load('libc.so.6').func('intptr_t recvmsg(int, void *, int)') as (fd: number, msg: Buffer, flags: number) => number);

export class VrrpSocketV6 {
  private readonly data = Buffer.alloc(4096);
  private readonly name = Buffer.alloc(SIZEOF_SOCKADDR_IN6);
  private readonly control = Buffer.alloc(128);
  private readonly iov = Buffer.alloc(16);
  private readonly msg = Buffer.alloc(SIZEOF_MSGHDR);
  private unwatch: (() => void) | undefined;
  private closed = false;

  private constructor(private readonly fd: number, private readonly o: VrrpSocketV6Options) {
    const at = (b: Buffer) => BigInt(koffi.address(b) as bigint);
    // The header's pointers are set once; each call only resets the two lengths it rewrites.
    this.iov.writeBigUInt64LE(at(this.data), 0);
    this.iov.writeBigUInt64LE(BigInt(this.data.length), 8);
    this.msg.writeBigUInt64LE(at(this.name), 0);
    this.msg.writeBigUInt64LE(at(this.iov), 16);
    this.msg.writeBigUInt64LE(1n, 24);
    this.msg.writeBigUInt64LE(at(this.control), 32);
  }

  /** The socket's descriptor (the advert thread sends through a duplicate of it). */
  get descriptor(): number {
    return this.fd;
  }

  static open(o: VrrpSocketV6Options): VrrpSocketV6 {
    const c = libc();
    const { fd, opt, fail } = openVrrpSocket(AF_INET6, o.ifname, 'VRRP (IPv6) socket');
    opt(IPPROTO_IPV6, IPV6_UNICAST_HOPS, int32(VRRP_IP_TTL), 'IPV6_UNICAST_HOPS');
    opt(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, int32(VRRP_IP_TTL), 'IPV6_MULTICAST_HOPS');
    opt(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, int32(0), 'IPV6_MULTICAST_LOOP');
    opt(IPPROTO_IPV6, IPV6_MULTICAST_IF, int32(o.ifindex), 'IPV6_MULTICAST_IF');
    opt(IPPROTO_IPV6, IPV6_RECVHOPLIMIT, int32(1), 'IPV6_RECVHOPLIMIT');
    opt(IPPROTO_IPV6, IPV6_RECVPKTINFO, int32(1), 'IPV6_RECVPKTINFO');
    const mreq = Buffer.alloc(20);
    mreq.set(parseIPv6(VRRP_MCAST_GROUP_V6)!, 0);
    mreq.writeInt32LE(o.ifindex, 16);
    opt(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq, 'IPV6_ADD_MEMBERSHIP ff02::12');
    // The source of everything sent: the link-local address (a tentative one is refused here).
    const sa = sockaddrIn6(o.linkLocal, o.ifindex);
    if (c.bind(fd, sa, sa.length) !== 0) fail(`bind to ${o.linkLocal}%${o.ifname}`);
    const s = new VrrpSocketV6(fd, o);
    s.unwatch = o.watcher.add(fd, () => s.drain());
    return s;
  }

  /** Reads every datagram waiting (non-blocking) and hands each over. */
  drain(): void {
    const fn = recvmsg();
    for (let i = 0; i < 256 && !this.closed; i++) {
      this.msg.writeUInt32LE(this.name.length, 8);
      this.msg.writeBigUInt64LE(BigInt(this.control.length), 40);
      const n = fn(this.fd, this.msg, MSG_DONTWAIT);
      if (n <= 0) return;
      const cm = parseControlMessages(this.control, Number(this.msg.readBigUInt64LE(40)));
      const info = cm.ok ? ipv6ArrivalInfo(cm.value) : {};
      this.o.onPacket({ payload: Buffer.from(this.data.subarray(0, n)), source: formatIPv6(this.name, 8), destination: info.destination, hopLimit: info.hopLimit });
    }
  }

  /** Sends a VRRP payload (header, addresses and checksum; the kernel adds the IPv6 header). */
  send(payload: Buffer, dst = VRRP_MCAST_GROUP_V6): void {
    if (this.closed) return;
    const sa = sockaddrIn6(dst, this.o.ifindex);
    const n = libc().sendto(this.fd, payload, payload.length, MSG_DONTWAIT, sa, sa.length);
    if (n !== payload.length) throw new FwlbError('ERR_SEND', `VRRP send on ${this.o.ifname} to ${dst}: ${errnoName()}`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    libc().close(this.fd);
  }
}
