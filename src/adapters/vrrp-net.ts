/**
 * The VRRP service's view of the host (services/vrrp.ts `VrrpNet`): interfaces and their
 * carrier from rtnetlink (dump at start, then events), virtual addresses added and removed
 * through rtnetlink, adverts on raw sockets, gratuitous ARP on packet sockets. No `ip`
 * command is spawned.
 */
import type { Logger } from 'pino';
import { gratuitousArp } from '../codec/arp/arp.js';
import { unsolicitedNeighborAdvert } from '../codec/ndp/ndp.js';
import type { Link } from '../codec/netlink/rtnetlink.js';

import { FwlbError } from '../lib/errors.js';
import type { Poller } from './netlink/poller.js';
import { RtNetlink } from './netlink/rtnetlink.js';
import { PacketSocket } from './packet-socket.js';
import { VrrpSocketV4 } from './vrrp-socket.js';
import { Advertiser } from './vrrp/advertiser.js';
import { realClock } from '../lib/clock.js';
import type { VrrpLinkIO, VrrpNet } from '../ports/vrrp-net.js';
import { decodeIPv4Advert } from '../codec/vrrp/ipv4.js';

/** Up for VRRP: administratively up and with carrier. */
const isUp = (l: Link) => l.up && l.lowerUp;

export async function createVrrpNet(o: { poller: Poller; log: Logger }): Promise<VrrpNet & { close(): void; counters(): ReturnType<RtNetlink['counters']> }> {
  const rtnl = RtNetlink.open({ poller: o.poller, groups: ['link'] });
  // The master's adverts leave from a thread of their own (workers/advert.ts).
  const advertiser = new Advertiser();
  advertiser.start();
  const links = new Map<string, Link>();
  const listeners = new Set<(ifname: string, up: boolean) => void>();

  const learn = (l: Link) => {
    const before = links.get(l.name);
    if (l.deleted) links.delete(l.name);
    else links.set(l.name, l);
    const was = before ? isUp(before) : undefined;
    const now = l.deleted ? false : isUp(l);
    if (was !== undefined && was !== now) for (const cb of listeners) cb(l.name, now);
  };
  for (const l of await rtnl.links()) links.set(l.name, l);
  rtnl.onEvent((e) => {
    if (e.kind === 'link') learn(e);
    else if (e.kind === 'lost') {
      // The kernel dropped events: read every link again and report what changed.
      o.log.warn({ event: 'netlink_events_lost' }, 'netlink events lost: re-reading links');
      void rtnl.links().then((all) => all.forEach(learn), (err: Error) => o.log.error({ err: err.message }, 'cannot re-read links'));
    }
  });

  const index = (ifname: string) => {
    const l = links.get(ifname);
    if (!l) throw new FwlbError('ERR_NO_LINK', `interface ${ifname} does not exist`);
    return l;
  };

  return {
    counters: () => rtnl.counters(),
    linkUp: (ifname) => {
      const l = links.get(ifname);
      return l ? isUp(l) : undefined;
    },
    onLinkChange: (cb) => {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    addAddress: async (ifname, cidr) => {
      await rtnl.addAddress(index(ifname).index, cidr);
    },
    delAddress: async (ifname, cidr) => {
      const l = links.get(ifname);
      if (!l) return; // gone with its addresses
      await rtnl.delAddress(l.index, cidr);
    },
    open: (ifname, primaryAddress, onAdvert): VrrpLinkIO => {
      const l = index(ifname);
      // The IPv4 header's checks and the advert's, here: the service gets adverts, not datagrams.
      const onPacket = (d: Buffer) => {
        const r = decodeIPv4Advert(d);
        onAdvert(r.ok ? { ok: true, value: r.value, src: r.ip.src } : r);
      };
      const sock = VrrpSocketV4.open({ ifname, ifindex: l.index, primaryAddress, watcher: o.poller, onPacket });
      let arp: PacketSocket;
      try {
        arp = PacketSocket.open(ifname, l.index);
      } catch (e) {
        sock.close();
        throw e;
      }
      let advertFd: number | undefined;
      /** What each advert key last carried: a new payload is sent from here at once. */
      const lastPayload = new Map<string, Buffer>();
      return {
        send: (payload, dst) => sock.send(payload, dst),
        advertise: (vrid, payload, dst, intervalMs, leaseMs, now) => {
          advertFd ??= advertiser.adopt(sock.descriptor);
          const key = `${ifname}/${vrid}/${dst}`;
          const before = lastPayload.get(key);
          if (!now && before && before.equals(payload)) {
            advertiser.set(key, advertFd, payload, dst, intervalMs, leaseMs);
            return;
          }
          // A new master's first advert, a new priority, an answer out of turn: now, from
          // this thread; the advert thread carries on from it.
          lastPayload.set(key, Buffer.from(payload));
          sock.send(payload, dst);
          advertiser.set(key, advertFd, payload, dst, intervalMs, leaseMs, realClock.now());
        },
        stopAdvertising: (vrid) => {
          for (const k of lastPayload.keys()) if (k.startsWith(`${ifname}/${vrid}/`)) lastPayload.delete(k);
          advertiser.stop(`${ifname}/${vrid}/`);
        },
        drain: () => sock.drain(),
        garp: (addresses) => {
          const mac = links.get(ifname)?.mac;
          if (!mac) return;
          for (const a of addresses) {
            try {
              // IPv6: an unsolicited neighbour advertisement from the address itself, as the
              // kernel sends its own (Router set: hosts keep the VIP as their router; RFC 9568 6.4.2).
              arp.send(a.includes(':') ? unsolicitedNeighborAdvert({ mac, source: a, target: a, router: true }) : gratuitousArp(mac, a));
            } catch (err) {
              o.log.warn({ ifname, address: a, err: (err as Error).message }, a.includes(':') ? 'neighbour advertisement not sent' : 'gratuitous ARP not sent');
            }
          }
        },
        close: () => {
          if (advertFd !== undefined) advertiser.release(advertFd);
          advertFd = undefined;
          sock.close();
          arp.close();
        },
      };
    },
    advertTiming: () => advertiser.counters,
    close: () => {
      advertiser.close();
      rtnl.close();
    },
  };
}
