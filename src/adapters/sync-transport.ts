/**
 * The state sync's datagram transport (ports/sync.ts SyncTransport): a UDP socket read with
 * recvmmsg through koffi (adapters/udp-socket.ts: a flood at the port is read and dropped at
 * a microsecond a datagram, so the peer's own datagrams are not lost among it), and the
 * kernel's drops on its full receive buffer (a flood, a stalled loop): read when status asks,
 * and logged at most once a minute while they grow (looked at every 10 s).
 */
import type { Logger } from 'pino';
import type { SyncTransport } from '../ports/sync.js';
import type { Poller } from './netlink/poller.js';
import { readUdpDrops } from './udp-drops.js';
import { UdpSocket } from './udp-socket.js';

export function openSyncTransport(o: { poller: Poller; address: string; ifname?: string; port: number; log: Logger; onDatagram: (buf: Buffer, from: string) => void }): SyncTransport {
  const sock = UdpSocket.open({ poller: o.poller, address: o.address, ...(o.ifname ? { ifname: o.ifname } : {}), port: o.port, onDatagram: o.onDatagram });
  const base = readUdpDrops(o.port) ?? 0;
  let loggedAt = -Infinity;
  let loggedDrops = 0;
  const read = (): number | undefined => {
    const now = readUdpDrops(o.port);
    return now === undefined ? undefined : Math.max(0, now - base);
  };
  // For the log only (status reads when asked): a timer every 10 s, not each second.
  const sampler = setInterval(() => {
    const drops = read();
    if (drops !== undefined && drops > loggedDrops && performance.now() - loggedAt >= 60_000) {
      o.log.warn({ event: 'sync_socket_drops', drops, since: drops - loggedDrops }, `the kernel dropped ${drops - loggedDrops} state sync datagrams on a full receive buffer`);
      loggedAt = performance.now();
      loggedDrops = drops;
    }
  }, 10_000);
  sampler.unref();
  return {
    send: (b, address) => sock.send(b, address, o.port),
    close: () => {
      clearInterval(sampler);
      sock.close();
    },
    receiveDrops: read,
  };
}
