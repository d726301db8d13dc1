/**
 * VRRP over raw IPv4 sockets (protocol 112), one per interface: joined to 224.0.0.18 on
 * that interface, TTL 255 on everything sent (RFC 5798 section 5.1.1.3), our own
 * multicast not looped back, bound to the device so adverts of one interface never mix
 * with another's. Receives whole IPv4 datagrams (the header carries the TTL to check).
 */
import { FwlbError } from '../lib/errors.js';
import {
  AF_INET, IPPROTO_IP, IP_ADD_MEMBERSHIP, IP_MULTICAST_IF, IP_MULTICAST_LOOP, IP_MULTICAST_TTL, IP_TOS, IP_TTL,
  MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, SOL_SOCKET, SO_BINDTODEVICE, SO_RCVBUF,
  errnoName, int32, ipMreqn, libc, sockaddrIn,
} from './libc.js';

import { IPPROTO_VRRP, VRRP_IP_TTL, VRRP_MCAST_GROUP_V4 as VRRP_GROUP_V4 } from '../codec/vrrp/constants.js';
/** IP precedence "internetwork control", as routers send their control traffic. */
const TOS_INTERNETWORK_CONTROL = 0xc0;

/** Something that calls back when a file descriptor is readable (the adapters' poller). */
export interface FdWatcher {
  add(fd: number, onReadable: () => void): () => void;
}

export interface VrrpSocketOptions {
  ifname: string;
  ifindex: number;
  /** Our address on the interface: the source of our adverts. */
  primaryAddress: string;
  watcher: FdWatcher;
  /** A raw IPv4 datagram as received (header included). */
  onPacket: (datagram: Buffer) => void;
}

/**
 * A raw VRRP socket of either family, non-blocking, bound to its device, with room for a
 * burst of adverts; `opt` sets one more option or closes the socket and throws, naming it.
 */
export function openVrrpSocket(family: number, ifname: string, label: string): { fd: number; opt: (level: number, name: number, value: Buffer, what: string) => void; fail: (what: string) => never } {
  const c = libc();
  const fd = c.socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_VRRP);
  if (fd < 0) throw new FwlbError('ERR_SOCKET', `${label} on ${ifname}: ${errnoName()}`);
  const fail = (what: string): never => {
    const e = errnoName();
    c.close(fd);
    throw new FwlbError('ERR_SOCKET', `${label} on ${ifname}: ${what}: ${e}`);
  };
  const opt = (level: number, name: number, value: Buffer, what: string) => {
    if (c.setsockopt(fd, level, name, value, value.length) !== 0) fail(what);
  };
  opt(SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(ifname + '\0'), 'SO_BINDTODEVICE');
  opt(SOL_SOCKET, SO_RCVBUF, int32(256 * 1024), 'SO_RCVBUF');
  return { fd, opt, fail };
}

export class VrrpSocketV4 {
  private readonly buf = Buffer.alloc(4096);
  private unwatch: (() => void) | undefined;
  private closed = false;

  private constructor(private readonly fd: number, private readonly o: VrrpSocketOptions) {}

  /** The socket's descriptor (the advert thread sends through a duplicate of it). */
  get descriptor(): number {
    return this.fd;
  }

  static open(o: VrrpSocketOptions): VrrpSocketV4 {
    const { fd, opt } = openVrrpSocket(AF_INET, o.ifname, 'VRRP socket');
    opt(IPPROTO_IP, IP_TOS, int32(TOS_INTERNETWORK_CONTROL), 'IP_TOS');
    opt(IPPROTO_IP, IP_TTL, int32(VRRP_IP_TTL), 'IP_TTL');
    opt(IPPROTO_IP, IP_MULTICAST_TTL, int32(VRRP_IP_TTL), 'IP_MULTICAST_TTL');
    opt(IPPROTO_IP, IP_MULTICAST_LOOP, int32(0), 'IP_MULTICAST_LOOP');
    // The interface and source address of what we multicast.
    opt(IPPROTO_IP, IP_MULTICAST_IF, ipMreqn('0.0.0.0', o.primaryAddress, o.ifindex), 'IP_MULTICAST_IF');
    opt(IPPROTO_IP, IP_ADD_MEMBERSHIP, ipMreqn(VRRP_GROUP_V4, '0.0.0.0', o.ifindex), 'IP_ADD_MEMBERSHIP');
    const s = new VrrpSocketV4(fd, o);
    s.unwatch = o.watcher.add(fd, () => s.drain());
    return s;
  }

  /** Reads every datagram waiting (non-blocking) and hands each over. */
  drain(): void {
    const c = libc();
    for (let i = 0; i < 256 && !this.closed; i++) {
      const n = c.recvfrom(this.fd, this.buf, this.buf.length, MSG_DONTWAIT, null, null);
      if (n <= 0) return;
      this.o.onPacket(Buffer.from(this.buf.subarray(0, n)));
    }
  }

  /** Sends a VRRP payload (header and addresses; the kernel adds the IP header). */
  send(payload: Buffer, dst = VRRP_GROUP_V4): void {
    if (this.closed) return;
    const sa = sockaddrIn(dst);
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
