/**
 * The few libc calls Node lacks (raw IP and packet sockets), through koffi: loaded once,
 * passed around (no module-level state beyond the lazily loaded library handle).
 * Buffers are passed as `void *`; results are checked by the callers via `errnoName`.
 */
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';

// <bits/socket.h>, <linux/in.h>, <linux/if_packet.h>, <asm-generic/socket.h>
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
export const MSG_DONTWAIT = 0x40;
export const ETH_P_ARP = 0x0806;
export const ETH_P_ALL = 0x0003;

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer | null, addrlen: number): number;
  recvfrom(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer | null, addrlen: Buffer | null): number;
  close(fd: number): number;
  if_nametoindex(name: string): number;
}

let loaded: Libc | undefined;

/** The libc functions, loaded on first use. */
export function libc(): Libc {
  if (loaded) return loaded;
  const lib = koffi.load('libc.so.6');
  loaded = {
    socket: lib.func('int socket(int, int, int)'),
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    bind: lib.func('int bind(int, const void *, uint32_t)'),
    sendto: lib.func('long sendto(int, const void *, size_t, int, const void *, uint32_t)'),
    recvfrom: lib.func('long recvfrom(int, _Out_ void *, size_t, int, _Out_ void *, _Inout_ uint32_t *)') as Libc['recvfrom'],
    close: lib.func('int close(int)'),
    if_nametoindex: lib.func('unsigned int if_nametoindex(const char *)'),
  } as Libc;
  return loaded;
}

/** The last errno as its name (EAGAIN, EPERM, ...). */
export function errnoName(): string {
  const n = koffi.errno();
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
