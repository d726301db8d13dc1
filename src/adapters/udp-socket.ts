/**
 * The state sync's UDP socket (IPv4 or IPv6, by its address; a link-local IPv6 address is
 * scoped to the interface named), read with recvmmsg(2) through koffi: up to 64
 * datagrams per syscall into buffers allocated once, each handed to the reader as a view
 * (valid during the call only) with its source address. A flood at the sync port then costs
 * about a microsecond per datagram until the cheap checks drop it; Node's dgram socket made
 * a Buffer, an address object and an event per datagram, read about 100,000 a second here,
 * and let the kernel drop the rest — the peer's real datagrams among them. Reading yields to
 * the event loop after `batchesPerWakeup` syscalls (the poller is level-triggered), so
 * VRRP's timers keep running under any flood. A large receive buffer (SO_RCVBUFFORCE) rides
 * out bursts; what the kernel still drops is counted by readUdpDrops (udp-drops.ts).
 */
import koffi from 'koffi';
import { AF_INET, AF_INET6, MSG_DONTWAIT, SIZEOF_SOCKADDR_IN6, SOCK_CLOEXEC, SOCK_NONBLOCK, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE, SO_SNDBUF, errnoName, int32, lastErrno, libc, sockaddrIn6 } from './libc.js';
import { FwlbError } from '../lib/errors.js';
import { formatIPv6 } from '../lib/ip-bytes.js';
import { isLinkLocal } from '../lib/ip.js';
import type { Poller } from './netlink/poller.js';

const SOCK_DGRAM = 2;
const SO_SNDBUFFORCE = 32; // asm-generic/socket.h
const EAGAIN = 11;
const EINTR = 4;
/** struct mmsghdr on LP64: struct msghdr (56 bytes) + unsigned int msg_len, padded to 64. */
const MMSGHDR = 64;
const IOVEC = 16;
const SOCKADDR_IN = 16;
/** Each datagram's source: room for either family. */
const NAME_SLOT = SIZEOF_SOCKADDR_IN6;

/** fe80::/10. */

interface RecvMmsg {
  recvmmsg(fd: number, vec: Buffer, vlen: number, flags: number, timeout: null): number;
}
let fn: RecvMmsg | undefined;
function recvmmsgFn(): RecvMmsg {
  if (fn) return fn;
  const lib = koffi.load('libc.so.6');
  fn = { recvmmsg: lib.func('int recvmmsg(int, void *, unsigned int, int, void *)') } as RecvMmsg;
  return fn;
}

export interface UdpSocketOptions {
  poller: Poller;
  address: string;
  port: number;
  /** The interface a link-local IPv6 address (ours, and the peers' we send to) belongs to. */
  ifname?: string;
  /** A view of each datagram (valid during the call) and its source address. */
  onDatagram: (view: Buffer, from: string) => void;
  /** Receive buffer (SO_RCVBUFFORCE, else capped by rmem_max). Default 8 MiB. */
  rcvbuf?: number;
  /** Send buffer. Default 4 MiB. */
  sndbuf?: number;
  /** Datagrams per recvmmsg (64) and largest datagram read whole (4096 bytes). */
  batch?: number;
  slot?: number;
  /** recvmmsg calls per readiness callback before yielding to the event loop (8). */
  batchesPerWakeup?: number;
}

export class UdpSocket {
  private readonly vec: Buffer;
  private readonly data: Buffer;
  private readonly names: Buffer;
  /** The iovecs `vec`'s headers point at: kept referenced while the socket lives. */
  readonly iov: Buffer;
  private readonly slot: number;
  private readonly batch: number;
  private readonly perWakeup: number;
  private unwatch: (() => void) | undefined;
  private closed = false;
  /** The last source seen, as text (a flood comes from few addresses: no string per datagram). */
  private lastFrom = -1;
  private lastFromText = '';
  private readonly lastFrom6 = Buffer.alloc(16);
  private readonly v6: boolean;
  private readonly scopeId: number;
  readonly counters = { datagrams: 0, syscalls: 0, sendErrors: 0, readErrors: 0 };

  private constructor(
    private readonly fd: number,
    private readonly o: UdpSocketOptions,
  ) {
    this.batch = o.batch ?? 64;
    this.slot = o.slot ?? 4096;
    this.perWakeup = o.batchesPerWakeup ?? 8;
    this.vec = Buffer.alloc(this.batch * MMSGHDR);
    this.data = Buffer.alloc(this.batch * this.slot);
    this.v6 = o.address.includes(':');
    this.scopeId = this.v6 && isLinkLocal(o.address) && o.ifname ? libc().if_nametoindex(o.ifname) : 0;
    this.names = Buffer.alloc(this.batch * NAME_SLOT);
    const iov = Buffer.alloc(this.batch * IOVEC);
    // The structures point into buffers that live as long as the socket (kept by `this`).
    this.iov = iov;
    const dataAt = BigInt(koffi.address(this.data) as bigint);
    const namesAt = BigInt(koffi.address(this.names) as bigint);
    const iovAt = BigInt(koffi.address(iov) as bigint);
    for (let i = 0; i < this.batch; i++) {
      iov.writeBigUInt64LE(dataAt + BigInt(i * this.slot), i * IOVEC);
      iov.writeBigUInt64LE(BigInt(this.slot), i * IOVEC + 8);
      const h = i * MMSGHDR;
      this.vec.writeBigUInt64LE(namesAt + BigInt(i * NAME_SLOT), h); // msg_name
      this.vec.writeUInt32LE(NAME_SLOT, h + 8); // msg_namelen
      this.vec.writeBigUInt64LE(iovAt + BigInt(i * IOVEC), h + 16); // msg_iov
      this.vec.writeBigUInt64LE(1n, h + 24); // msg_iovlen
    }
  }

  /** Opens and binds the socket and starts reading; throws FwlbError (ERR_SOCKET) when the kernel refuses. */
  static open(o: UdpSocketOptions): UdpSocket {
    const c = libc();
    const v6 = o.address.includes(':');
    const fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new FwlbError('ERR_SOCKET', `sync socket: ${errnoName()}`);
    const fail = (what: string): never => {
      const e = errnoName();
      c.close(fd);
      throw new FwlbError('ERR_SOCKET', `sync socket ${o.address}:${o.port}: ${what}: ${e}`);
    };
    const rcv = int32(o.rcvbuf ?? 8 * 1024 * 1024);
    if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, rcv, 4) !== 0) c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, rcv, 4);
    const snd = int32(o.sndbuf ?? 4 * 1024 * 1024);
    if (c.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, snd, 4) !== 0) c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, snd, 4);
    const scope = v6 && isLinkLocal(o.address) ? libc().if_nametoindex(o.ifname ?? '') : 0;
    if (v6 && isLinkLocal(o.address) && scope === 0) fail(`link-local address needs its interface (${o.ifname ?? 'none named'} not found)`);
    const me = v6 ? sockaddrIn6(o.address, scope, o.port) : sockaddrIn(o.address, o.port);
    if (c.bind(fd, me, me.length) !== 0) fail('bind');
    const s = new UdpSocket(fd, o);
    s.unwatch = o.poller.add(fd, () => s.onReadable());
    return s;
  }

  /** Sends one datagram (non-blocking; a full send buffer drops it: the sync retransmits). */
  send(buf: Buffer, address: string, port: number): void {
    if (this.closed) return;
    const to = this.dest(address, port);
    if (libc().sendto(this.fd, buf, buf.length, 0, to, to.length) < 0) this.counters.sendErrors++;
  }

  private readonly dests = new Map<string, Buffer>();
  private dest(address: string, port: number): Buffer {
    const k = `${address}:${port}`;
    let d = this.dests.get(k);
    if (!d) {
      if (address.includes(':') !== this.v6) throw new FwlbError('ERR_SOCKET', `sync socket ${this.o.address}: cannot send to ${address} (another address family)`);
      d = this.v6 ? sockaddrIn6(address, isLinkLocal(address) ? this.scopeId : 0, port) : sockaddrIn(address, port);
      if (this.dests.size > 64) this.dests.clear();
      this.dests.set(k, d);
    }
    return d;
  }

  /** Reads what is waiting now (the poller would call it on the next turn anyway). */
  drain(): void {
    this.onReadable();
  }

  private onReadable(): void {
    const { recvmmsg } = recvmmsgFn();
    for (let round = 0; round < this.perWakeup && !this.closed; round++) {
      for (let i = 0; i < this.batch; i++) this.vec.writeUInt32LE(NAME_SLOT, i * MMSGHDR + 8);
      const n = recvmmsg(this.fd, this.vec, this.batch, MSG_DONTWAIT, null);
      this.counters.syscalls++;
      if (n < 0) {
        const e = lastErrno();
        if (e !== EAGAIN && e !== EINTR) this.counters.readErrors++;
        return;
      }
      for (let i = 0; i < n && !this.closed; i++) {
        const len = this.vec.readUInt32LE(i * MMSGHDR + 56);
        const na = i * NAME_SLOT;
        if (this.v6) {
          // The same source as the last one (a flood comes from few): no new string.
          if (this.lastFromText === '' || this.names.compare(this.lastFrom6, 0, 16, na + 8, na + 24) !== 0) {
            this.names.copy(this.lastFrom6, 0, na + 8, na + 24);
            this.lastFromText = formatIPv6(this.lastFrom6, 0);
          }
        } else {
          const addr = this.names.readUInt32BE(na + 4);
          if (addr !== this.lastFrom) {
            this.lastFrom = addr;
            this.lastFromText = `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
          }
        }
        this.counters.datagrams++;
        const start = i * this.slot;
        // A datagram larger than the slot arrives cut (MSG_TRUNC): the length check drops it.
        this.o.onDatagram(this.data.subarray(start, start + Math.min(len, this.slot)), this.lastFromText);
      }
      if (n < this.batch) return;
    }
  }

  /** The socket's descriptor (a thread that dies leaves it open: the process closes it). */
  get descriptor(): number {
    return this.fd;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    libc().close(this.fd);
  }
}

function sockaddrIn(address: string, port: number): Buffer {
  const sa = Buffer.alloc(SOCKADDR_IN);
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new FwlbError('ERR_SOCKET', `not an IPv4 address: ${address}`);
  Buffer.from(parts).copy(sa, 4);
  return sa;
}
