/**
 * Link-layer multicast addresses of an interface (what `ip maddr add` does): SIOCADDMULTI
 * and SIOCDELMULTI on a datagram socket. A NIC filters multicast frames in hardware; a
 * shared MAC (sharing, issue 14) must be on its list or the frames never reach the kernel.
 */
import { AF_INET, SIOCADDMULTI, SIOCDELMULTI, SIZEOF_IFREQ, SOCK_CLOEXEC, SOCK_DGRAM, errnoName, libc } from './libc.js';
import { FwlbError } from '../lib/errors.js';

function ifreqHwaddr(ifname: string, mac: string): Buffer {
  const name = Buffer.from(ifname);
  if (name.length === 0 || name.length > 15) throw new FwlbError('ERR_BAD_REQUEST', `interface name ${JSON.stringify(ifname)} is not a Linux interface name`);
  const bytes = mac.split(':').map((h) => parseInt(h, 16));
  if (bytes.length !== 6 || bytes.some((b) => !(b >= 0 && b <= 255))) throw new FwlbError('ERR_BAD_REQUEST', `${mac} is not a MAC address`);
  const b = Buffer.alloc(SIZEOF_IFREQ);
  name.copy(b, 0);
  b.writeUInt16LE(0, 16); // sa_family AF_UNSPEC
  Buffer.from(bytes).copy(b, 18);
  return b;
}

function multicastIoctl(request: number, ifname: string, mac: string): void {
  const c = libc();
  const req = ifreqHwaddr(ifname, mac);
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new FwlbError('ERR_SOCKET', `socket: ${errnoName()}`);
  try {
    if (c.ioctl(fd, request, req) < 0) {
      const e = errnoName();
      // Adding what is there, removing what is gone: both are fine.
      if ((request === SIOCADDMULTI && e === 'EEXIST') || (request === SIOCDELMULTI && e === 'ENOENT')) return;
      throw new FwlbError('ERR_SOCKET', `${request === SIOCADDMULTI ? 'adding' : 'removing'} multicast MAC ${mac} on ${ifname}: ${e}`);
    }
  } finally {
    c.close(fd);
  }
}

/** The interface takes frames sent to this multicast MAC. */
export function joinLinkMulticast(ifname: string, mac: string): void {
  multicastIoctl(SIOCADDMULTI, ifname, mac);
}

/** The interface no longer takes frames sent to this multicast MAC (for us). */
export function leaveLinkMulticast(ifname: string, mac: string): void {
  multicastIoctl(SIOCDELMULTI, ifname, mac);
}
