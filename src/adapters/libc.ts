/**
 * The libc calls Node lacks (raw IP, packet and netlink sockets, poll, eventfd), through
 * koffi: loaded on first use (importing this file does not load libc), then shared; the
 * library handle is the only module-level state. Buffers go in as `void *` (koffi passes
 * their memory itself, so the kernel writes straight into them); every call returns -1
 * and leaves errno on failure, read with `lastErrno()` / `errnoName()` right after the call.
 *
 * Constants: checked by compiling a C program against this machine's glibc and
 * linux-libc-dev 6.1 headers (sys/socket.h, poll.h, sys/eventfd.h, linux/netlink.h,
 * linux/in.h, linux/if_packet.h).
 */
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { parseIPv6 } from '../lib/ip-bytes.js';


// <bits/socket.h>, <linux/in.h>, <linux/if_packet.h>, <asm-generic/socket.h>
export const AF_UNIX = 1; // sys/socket.h
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_PACKET = 17;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_BINDTODEVICE = 25;
export const IPPROTO_IP = 0;
export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
export const IP_ADD_MEMBERSHIP = 35;
export const IP_DROP_MEMBERSHIP = 36;
// <linux/in6.h>: IPv6 socket options (level IPPROTO_IPV6, codec/cmsg.ts)
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MULTICAST_IF = 17;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_MULTICAST_LOOP = 19;
export const IPV6_ADD_MEMBERSHIP = 20;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_RECVHOPLIMIT = 51;
export const MSG_DONTWAIT = 0x40;
export const ETH_P_ARP = 0x0806;
export const ETH_P_ALL = 0x0003;
export const AF_NETLINK = 16; // bits/socket.h (PF_NETLINK)
export const SO_SNDBUF = 7; // asm-generic/socket.h
export const SO_RCVBUFFORCE = 33; // asm-generic/socket.h (CAP_NET_ADMIN: above rmem_max)
export const SO_ATTACH_FILTER = 26; // asm-generic/socket.h

/**
 * A classic BPF program (struct sock_filter[]) as the argument of SO_ATTACH_FILTER: a struct
 * sock_fprog { unsigned short len; struct sock_filter *filter; } pointing at `program`, which
 * the caller keeps alive until setsockopt returns (the kernel copies it).
 */
export function sockFprog(program: Buffer): Buffer {
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(program.length / 8, 0);
  fprog.writeBigUInt64LE(BigInt(koffi.address(program) as bigint), 8);
  return fprog;
}
export const SOL_NETLINK = 270; // linux/socket.h
export const NETLINK_ADD_MEMBERSHIP = 1; // linux/netlink.h
export const NETLINK_DROP_MEMBERSHIP = 2; // linux/netlink.h
export const NETLINK_CAP_ACK = 10; // linux/netlink.h: errors echo only the request's header
export const NETLINK_EXT_ACK = 11; // linux/netlink.h: errors carry the kernel's message
export const MSG_TRUNC = 0x20; // bits/socket.h: recv returns the datagram's real length
export const POLLIN = 0x001; // asm-generic/poll.h
export const POLLERR = 0x008; // asm-generic/poll.h
export const POLLHUP = 0x010; // asm-generic/poll.h
export const POLLNVAL = 0x020; // asm-generic/poll.h
export const EFD_NONBLOCK = 0o4000; // sys/eventfd.h
export const EFD_CLOEXEC = 0o2000000; // sys/eventfd.h
export const SIZEOF_SOCKADDR_NL = 12; // linux/netlink.h: family u16, pad u16, pid u32, groups u32
export const SIZEOF_POLLFD = 8;
export const SOCK_DGRAM = 2; // bits/socket_type.h
export const SIOCADDMULTI = 0x8931; // linux/sockios.h: add a link-layer multicast address
export const SIOCDELMULTI = 0x8932; // linux/sockios.h
export const SIZEOF_IFREQ = 40; // net/if.h: ifr_name[16] and a 24-byte union (sockaddr ifr_hwaddr at 16) // poll.h: fd s32, events s16, revents s16

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer | null, addrlen: number): number;
  recvfrom(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer | null, addrlen: Buffer | null): number;
  close(fd: number): number;
  /** A second descriptor of the same open socket (closing one leaves the other open). */
  dup(fd: number): number;
  eventfd(initval: number, flags: number): number;
  read(fd: number, buf: Buffer, len: number): number;
  write(fd: number, buf: Buffer, len: number): number;
  if_nametoindex(name: string): number;
  /** ioctl(2) with a pointer argument (struct ifreq and the like). */
  ioctl(fd: number, request: number, arg: Buffer | null): number;
  /** poll(2) as a koffi async call: runs on a worker thread, calls back on the main thread. */
  pollAsync(fds: Buffer, nfds: number, timeoutMs: number, cb: (err: unknown, res: number) => void): void;
}

let loaded: Libc | undefined;

/** The libc functions, loaded on first use. */
export function libc(): Libc {
  if (loaded) return loaded;
  const lib = koffi.load('libc.so.6');
  const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)');
  loaded = {
    socket: lib.func('int socket(int, int, int)'),
    bind: lib.func('int bind(int, void *, uint32_t)'),
    getsockname: lib.func('int getsockname(int, void *, void *)'),
    setsockopt: lib.func('int setsockopt(int, int, int, void *, uint32_t)'),
    sendto: lib.func('intptr_t sendto(int, void *, size_t, int, void *, uint32_t)'),
    recvfrom: lib.func('intptr_t recvfrom(int, void *, size_t, int, void *, void *)'),
    close: lib.func('int close(int)'),
    dup: lib.func('int dup(int)'),
    eventfd: lib.func('int eventfd(unsigned int, int)'),
    read: lib.func('intptr_t read(int, void *, size_t)'),
    write: lib.func('intptr_t write(int, void *, size_t)'),
    if_nametoindex: lib.func('unsigned int if_nametoindex(const char *)'),
    ioctl: lib.func('int ioctl(int, unsigned long, void *)'),
    pollAsync: (fds, nfds, timeoutMs, cb) => poll.async(fds, nfds, timeoutMs, cb),
  } as Libc;
  return loaded;
}

/** errno of the last libc call made through koffi on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/** The last errno as its name (EAGAIN, EPERM, ...). */
export function errnoName(): string {
  const n = lastErrno();
  const names = osConstants.errno as Record<string, number>;
  return Object.keys(names).find((k) => names[k] === n) ?? `errno ${n}`;
}

export const int32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
};

export function ipv4Bytes(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

/** struct sockaddr_in for an IPv4 address (port 0). */
export function sockaddrIn(address: string): Buffer {
  const sa = Buffer.alloc(16);
  sa.writeUInt16LE(AF_INET, 0);
  ipv4Bytes(address).copy(sa, 4);
  return sa;
}

export const SIZEOF_SOCKADDR_IN6 = 28; // netinet/in.h

/** struct sockaddr_in6 { family; port; flowinfo; in6_addr; scope_id }. */
export function sockaddrIn6(address: string, scopeId = 0, port = 0): Buffer {
  const a = parseIPv6(address);
  if (!a) throw new TypeError(`sockaddrIn6: not an IPv6 address: ${address}`);
  const sa = Buffer.alloc(SIZEOF_SOCKADDR_IN6);
  sa.writeUInt16LE(AF_INET6, 0);
  sa.writeUInt16BE(port, 2);
  sa.set(a, 8);
  sa.writeUInt32LE(scopeId, 24);
  return sa;
}

/** struct sockaddr_in or sockaddr_in6, by the address's family (port 0). */
export function sockaddrOf(address: string): Buffer {
  return address.includes(':') ? sockaddrIn6(address) : sockaddrIn(address);
}

/** struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex; }. */
export function ipMreqn(group: string, address: string, ifindex: number): Buffer {
  const b = Buffer.alloc(12);
  ipv4Bytes(group).copy(b, 0);
  ipv4Bytes(address).copy(b, 4);
  b.writeInt32LE(ifindex, 8);
  return b;
}

/** struct sockaddr_ll for sending a frame on an interface to a MAC address. */
export function sockaddrLl(ifindex: number, protocol: number, mac: Buffer): Buffer {
  const sa = Buffer.alloc(20);
  sa.writeUInt16LE(AF_PACKET, 0);
  sa.writeUInt16BE(protocol, 2);
  sa.writeInt32LE(ifindex, 4);
  sa.writeUInt16LE(0, 8); // sll_hatype
  sa.writeUInt8(0, 10); // sll_pkttype
  sa.writeUInt8(mac.length, 11); // sll_halen
  mac.copy(sa, 12, 0, 8);
  return sa;
}

/** koffi's hook into libuv (uv_poll_t on the Node loop), when this koffi has it (2.15+). */
export interface UvPollHandle {
  start(opts: { readable?: boolean }, cb: (status: number, ev: { readable: boolean; disconnect: boolean }) => void): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}
export type UvPoll = (
  fd: number,
  opts: { readable?: boolean },
  cb: (status: number, ev: { readable: boolean; disconnect: boolean }) => void,
) => UvPollHandle | null;

/**
 * koffi.node.poll, if present. Its declared callback type is `(ev)`, but the native side
 * calls `(status, ev)` (koffi src/koffi/src/uv.cc, OnPoll): status < 0 is a libuv error
 * (UV_EBADF after POLLERR, and then the handle is stopped).
 */
export function uvPoll(): UvPoll | undefined {
  const node = (koffi as unknown as { node?: { poll?: unknown } }).node;
  return typeof node?.poll === 'function' ? (node.poll as UvPoll) : undefined;
}
