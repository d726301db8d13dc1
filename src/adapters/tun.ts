/**
 * The kill-switch device of the BGP announcements (issue 26): a TUN device the daemon creates
 * and holds open, not persistent, so that the kernel removes it when the daemon's last
 * descriptor closes, i.e. when the daemon dies, however it dies. BIRD's static routes point
 * through it with `check link`: BIRD withdraws them when it is down or gone. It carries no
 * packet (nothing is routed into it: BIRD does not export these routes to the kernel) and
 * its descriptor is never read.
 */
import fs from 'node:fs';
import { AF_INET, SIZEOF_IFREQ, SOCK_CLOEXEC, SOCK_DGRAM, errnoName, libc } from './libc.js';
import { FwlbError } from '../lib/errors.js';
import type { AnnounceDevicePort } from '../ports/bgp.js';

// linux/if_tun.h and linux/sockios.h
const TUNSETIFF = 0x400454ca;
const TUNSETPERSIST = 0x400454cb;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;

function ifreq(name: string, flags = 0): Buffer {
  const n = Buffer.from(name);
  if (n.length === 0 || n.length > 15) throw new FwlbError('ERR_BAD_REQUEST', `${JSON.stringify(name)} is not a Linux interface name`);
  const b = Buffer.alloc(SIZEOF_IFREQ);
  n.copy(b, 0);
  b.writeUInt16LE(flags, 16);
  return b;
}

export class TunDevice implements AnnounceDevicePort {
  private fd: number | undefined;

  private constructor(
    readonly name: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Creates the device (down) and holds it; refuses one that exists (another daemon's, or a persistent one). */
  static open(name: string): TunDevice {
    const fd = fs.openSync('/dev/net/tun', fs.constants.O_RDWR);
    if (libc().ioctl(fd, TUNSETIFF, ifreq(name, IFF_TUN | IFF_NO_PI)) < 0) {
      const e = errnoName();
      fs.closeSync(fd);
      const why = e === 'EBUSY' ? 'it exists and is held open: is another fwlb running here?' : e === 'EPERM' ? 'it exists and belongs to someone else, or CAP_NET_ADMIN is missing' : e;
      throw new FwlbError('ERR_BGP_DEVICE', `cannot create the BGP device ${name}: ${why}`);
    }
    // A persistent device of that name (made by hand) would outlive us: not a kill switch. Ours
    // never is. The argument is the value itself (0: not persistent), passed as a null pointer.
    if (libc().ioctl(fd, TUNSETPERSIST, null) < 0) {
      const e = errnoName();
      fs.closeSync(fd);
      throw new FwlbError('ERR_BGP_DEVICE', `cannot make the BGP device ${name} go with the daemon (TUNSETPERSIST 0): ${e}`);
    }
    return new TunDevice(name, fd);
  }

  async setUp(up: boolean): Promise<void> {
    if (this.fd === undefined) throw new FwlbError('ERR_BGP_DEVICE', `the BGP device ${this.name} is closed`);
    const c = libc();
    const s = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) throw new FwlbError('ERR_SOCKET', `socket: ${errnoName()}`);
    try {
      const req = ifreq(this.name);
      if (c.ioctl(s, SIOCGIFFLAGS, req) < 0) throw new FwlbError('ERR_BGP_DEVICE', `reading ${this.name}'s flags: ${errnoName()}`);
      const flags = req.readUInt16LE(16);
      const want = up ? flags | IFF_UP : flags & ~IFF_UP;
      if (want === flags) return;
      req.writeUInt16LE(want, 16);
      if (c.ioctl(s, SIOCSIFFLAGS, req) < 0) throw new FwlbError('ERR_BGP_DEVICE', `setting ${this.name} ${up ? 'up' : 'down'}: ${errnoName()}`);
    } finally {
      c.close(s);
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
