/**
 * What the lab's listeners (arp-listen, na-listen, vrrp-listen) share: a packet socket on one
 * interface for one ethertype, and reading every datagram of a socket for a while.
 */
import { AF_PACKET, MSG_DONTWAIT, SOCK_NONBLOCK, SOCK_RAW, errnoName, libc, sockaddrLl } from '../adapters/libc.js';
import { Poller } from '../adapters/netlink/poller.js';

/** Prints `tool: what: errno` and exits 1. */
export function fail(tool: string, what: string): never {
  process.stderr.write(`${tool}: ${what}: ${errnoName()}\n`);
  process.exit(1);
}

/** An AF_PACKET socket bound to `dev` for frames of `ethertype` (non-blocking); exits on error. */
export function packetSocket(tool: string, dev: string, ethertype: number): number {
  const c = libc();
  const proto = ((ethertype & 0xff) << 8) | (ethertype >> 8); // htons
  const fd = c.socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, proto);
  if (fd < 0) fail(tool, 'socket');
  const sa = sockaddrLl(c.if_nametoindex(dev), ethertype, Buffer.alloc(6));
  if (c.bind(fd, sa, sa.length) !== 0) fail(tool, 'bind');
  return fd;
}

/** Hands every datagram of `fd` to `onDatagram` for `seconds`, then closes it and calls `done`. */
export function readFor(fd: number, seconds: number, onDatagram: (d: Buffer) => void, done: () => void): void {
  const c = libc();
  const buf = Buffer.alloc(4096);
  const poller = new Poller({ keepAlive: true });
  const remove = poller.add(fd, () => {
    for (;;) {
      const n = c.recvfrom(fd, buf, buf.length, MSG_DONTWAIT, null, null);
      if (n <= 0) return;
      onDatagram(buf.subarray(0, n));
    }
  });
  setTimeout(() => {
    remove();
    c.close(fd);
    poller.close();
    done();
  }, seconds * 1000);
}
