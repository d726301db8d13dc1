/**
 * Link-layer frames out of one interface (AF_PACKET), for gratuitous ARP and unsolicited
 * neighbour advertisements on takeover.
 */
import { FwlbError } from '../lib/errors.js';
import { AF_PACKET, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, errnoName, libc, sockaddrLl } from './libc.js';

export class PacketSocket {
  private closed = false;
  private constructor(private readonly fd: number, private readonly ifindex: number, private readonly ifname: string) {}

  /** A socket for ARP frames; protocol 0 means it receives nothing, it only sends. */
  static open(ifname: string, ifindex: number): PacketSocket {
    const fd = libc().socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new FwlbError('ERR_SOCKET', `packet socket on ${ifname}: ${errnoName()}`);
    return new PacketSocket(fd, ifindex, ifname);
  }

  /** Sends a whole Ethernet frame (header included: its destination and type are the frame's). */
  send(frame: Buffer): void {
    if (this.closed) return;
    if (frame.length < 14) throw new FwlbError('ERR_SEND', `frame on ${this.ifname}: ${frame.length} bytes, not an Ethernet frame`);
    const sa = sockaddrLl(this.ifindex, frame.readUInt16BE(12), frame.subarray(0, 6));
    const n = libc().sendto(this.fd, frame, frame.length, MSG_DONTWAIT, sa, sa.length);
    if (n !== frame.length) throw new FwlbError('ERR_SEND', `frame on ${this.ifname}: ${errnoName()}`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
  }
}
