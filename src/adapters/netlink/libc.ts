/**
 * The libc calls the netlink socket and the poller need, through koffi. Loaded on first
 * use (importing this file does not load libc), then shared: the library handle is the
 * only module-level state. Buffers go in as `void *` (koffi passes their memory itself, so
 * the kernel writes straight into them); every call returns -1 and leaves errno on failure,
 * read with `lastErrno()` right after the call.
 *
 * Constants: checked by compiling a C program against this machine's glibc and
 * linux-libc-dev 6.1 headers (sys/socket.h, poll.h, sys/eventfd.h, linux/netlink.h).
 */
import koffi from 'koffi';

export const AF_NETLINK = 16; // bits/socket.h (PF_NETLINK)
export const SOCK_RAW = 3; // bits/socket_type.h
export const SOCK_NONBLOCK = 0o4000; // bits/socket_type.h (2048)
export const SOCK_CLOEXEC = 0o2000000; // bits/socket_type.h (524288)
export const SOL_SOCKET = 1; // asm-generic/socket.h
export const SO_SNDBUF = 7; // asm-generic/socket.h
export const SO_RCVBUF = 8; // asm-generic/socket.h
export const SO_RCVBUFFORCE = 33; // asm-generic/socket.h (CAP_NET_ADMIN: above rmem_max)
export const SOL_NETLINK = 270; // linux/socket.h
export const NETLINK_ADD_MEMBERSHIP = 1; // linux/netlink.h
export const NETLINK_DROP_MEMBERSHIP = 2; // linux/netlink.h
export const NETLINK_CAP_ACK = 10; // linux/netlink.h: errors echo only the request's header
export const NETLINK_EXT_ACK = 11; // linux/netlink.h: errors carry the kernel's message
export const MSG_DONTWAIT = 0x40; // bits/socket.h
export const MSG_TRUNC = 0x20; // bits/socket.h: recv returns the datagram's real length
export const POLLIN = 0x001; // asm-generic/poll.h
export const POLLERR = 0x008; // asm-generic/poll.h
export const POLLHUP = 0x010; // asm-generic/poll.h
export const POLLNVAL = 0x020; // asm-generic/poll.h
export const EFD_NONBLOCK = 0o4000; // sys/eventfd.h
export const EFD_CLOEXEC = 0o2000000; // sys/eventfd.h
export const SIZEOF_SOCKADDR_NL = 12; // linux/netlink.h: family u16, pad u16, pid u32, groups u32
export const SIZEOF_POLLFD = 8; // poll.h: fd s32, events s16, revents s16

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer | null, addrlen: number): number;
  recvfrom(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer | null, addrlen: Buffer | null): number;
  close(fd: number): number;
  eventfd(initval: number, flags: number): number;
  read(fd: number, buf: Buffer, len: number): number;
  write(fd: number, buf: Buffer, len: number): number;
  /** poll(2) as a koffi async call: runs on a worker thread, calls back on the main thread. */
  pollAsync(fds: Buffer, nfds: number, timeoutMs: number, cb: (err: unknown, res: number) => void): void;
}

let loaded: Libc | undefined;

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
    eventfd: lib.func('int eventfd(unsigned int, int)'),
    read: lib.func('intptr_t read(int, void *, size_t)'),
    write: lib.func('intptr_t write(int, void *, size_t)'),
    pollAsync: (fds, nfds, timeoutMs, cb) => poll.async(fds, nfds, timeoutMs, cb),
  } as Libc;
  return loaded;
}

/** errno of the last libc call made through koffi on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/** An int option value for setsockopt. */
export function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return b;
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
