/**
 * The VRRP service's view of the host (services/vrrp.ts `VrrpNet`): interfaces, their
 * carrier and their IPv6 link-local addresses from rtnetlink (dump at start, then events),
 * virtual addresses added and removed through rtnetlink, adverts on raw sockets (IPv4 or
 * IPv6 by the family of the instance's own address), gratuitous ARP and unsolicited
 * neighbour advertisements on packet sockets. No `ip` command is spawned.
 */
import type { Logger } from 'pino';
import { gratuitousArp } from '../codec/arp/arp.js';
import { unsolicitedNeighborAdvert } from '../codec/ndp/ndp.js';
import { IFA_F_DADFAILED, IFA_F_TENTATIVE, RT_SCOPE_LINK, type Addr, type Link } from '../codec/netlink/rtnetlink.js';

import { FwlbError } from '../lib/errors.js';
import type { Poller } from './netlink/poller.js';
import { RtNetlink, type RtEvent } from './netlink/rtnetlink.js';
import { PacketSocket } from './packet-socket.js';
import { VrrpSocketV4 } from './vrrp-socket.js';
import { Advertiser } from './vrrp/advertiser.js';
import { realClock } from '../lib/clock.js';
import type { ReceivedAdvert, VrrpLinkIO, VrrpNet } from '../ports/vrrp-net.js';
import { decodeIPv4Advert } from '../codec/vrrp/ipv4.js';
import { decodeAdvert } from '../codec/vrrp/packet.js';
import { VrrpSocketV6 } from './vrrp-socket-v6.js';

/** Up for VRRP: administratively up and with carrier. */
const isUp = (l: Link) => l.up && l.lowerUp;

/** An IPv6 link-local address the adverts can leave from: DAD done and passed. */
const usableLinkLocal = (a: Addr) => a.family === 6 && a.scope === RT_SCOPE_LINK && (a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) === 0;

/**
 * Each interface's IPv6 link-local addresses (by ifindex) from the dump and the events, in
 * the order first seen; which one VRRP uses is the service's choice (never a VIP).
 */
class LinkLocals {
  private readonly byIndex = new Map<number, Map<string, boolean>>();

  learn(a: Addr): void {
    if (a.family !== 6 || a.scope !== RT_SCOPE_LINK) return;
    let m = this.byIndex.get(a.index);
    if (!m) this.byIndex.set(a.index, (m = new Map()));
    if (a.deleted) m.delete(a.local);
    else m.set(a.local, usableLinkLocal(a));
  }

  forget(index: number): void {
    this.byIndex.delete(index);
  }

  /** The usable ones, as one string for comparing (`list` splits it). */
  key(index: number): string {
    return [...(this.byIndex.get(index) ?? [])].filter(([, usable]) => usable).map(([a]) => a).join(' ');
  }

  list(index: number): string[] {
    const k = this.key(index);
    return k ? k.split(' ') : [];
  }
}

/** The interfaces as rtnetlink tells them: carrier and link-local address, with their listeners. */
class HostLinks {
  readonly links = new Map<string, Link>();
  readonly linkLocals = new LinkLocals();
  readonly upListeners = new Set<(ifname: string, up: boolean) => void>();
  readonly llListeners = new Set<(ifname: string) => void>();

  learn(l: Link): void {
    const before = this.links.get(l.name);
    if (l.deleted) {
      this.links.delete(l.name);
      this.linkLocals.forget(l.index);
    } else this.links.set(l.name, l);
    const was = before ? isUp(before) : undefined;
    const now = l.deleted ? false : isUp(l);
    if (was !== undefined && was !== now) for (const cb of this.upListeners) cb(l.name, now);
  }

  learnAddr(a: Addr): void {
    const before = this.linkLocals.key(a.index);
    this.linkLocals.learn(a);
    const name = [...this.links.values()].find((l) => l.index === a.index)?.name;
    if (before !== this.linkLocals.key(a.index) && name) for (const cb of this.llListeners) cb(name);
  }

  /** After lost events: every link and address as dumped, what changed reported. */
  resync(links: readonly Link[], addrs: readonly Addr[]): void {
    links.forEach((l) => this.learn(l));
    for (const l of this.links.values()) {
      const before = this.linkLocals.key(l.index);
      this.linkLocals.forget(l.index);
      for (const a of addrs) if (a.index === l.index) this.linkLocals.learn(a);
      if (before !== this.linkLocals.key(l.index)) for (const cb of this.llListeners) cb(l.name);
    }
  }

  index(ifname: string): Link {
    const l = this.links.get(ifname);
    if (!l) throw new FwlbError('ERR_NO_LINK', `interface ${ifname} does not exist`);
    return l;
  }
}

export async function createVrrpNet(o: { poller: Poller; log: Logger }): Promise<VrrpNet & { close(): void; counters(): ReturnType<RtNetlink['counters']> }> {
  const rtnl = RtNetlink.open({ poller: o.poller, groups: ['link', 'ipv6-ifaddr'] });
  // The master's adverts leave from a thread of their own (workers/advert-role.ts).
  const advertiser = new Advertiser();
  advertiser.start();
  const host = new HostLinks();
  // Events are heard from before the dumps are asked for and held until they are read: a
  // change while the dumps run (DAD passing on a link that just came up) is not lost.
  let held: RtEvent[] | undefined = [];
  rtnl.onEvent((e) => (held ? held.push(e) : onEvent(e)));
  for (const l of await rtnl.links()) host.links.set(l.name, l);
  for (const a of await rtnl.addresses(6)) host.linkLocals.learn(a);
  const early = held;
  held = undefined;
  // In the kernel's order after the snapshot: each link's and address's last event is its newest state.
  early.forEach(onEvent);
  function onEvent(e: RtEvent): void {
    if (e.kind === 'link') host.learn(e);
    else if (e.kind === 'addr') host.learnAddr(e);
    else if (e.kind === 'lost') {
      // The kernel dropped events: read every link and address again and report what changed.
      o.log.warn({ event: 'netlink_events_lost' }, 'netlink events lost: re-reading links and addresses');
      void Promise.all([rtnl.links(), rtnl.addresses(6)]).then(
        ([links, addrs]) => host.resync(links, addrs),
        (err: Error) => o.log.error({ err: err.message }, 'cannot re-read links'),
      );
    }
  }

  return {
    counters: () => rtnl.counters(),
    linkUp: (ifname) => {
      const l = host.links.get(ifname);
      return l ? isUp(l) : undefined;
    },
    onLinkChange: (cb) => {
      host.upListeners.add(cb);
      return () => host.upListeners.delete(cb);
    },
    linkLocals: (ifname) => {
      const l = host.links.get(ifname);
      return l ? host.linkLocals.list(l.index) : [];
    },
    onLinkLocal: (cb) => {
      host.llListeners.add(cb);
      return () => host.llListeners.delete(cb);
    },
    addAddress: async (ifname, cidr) => {
      await rtnl.addAddress(host.index(ifname).index, cidr);
    },
    delAddress: async (ifname, cidr) => {
      const l = host.links.get(ifname);
      if (!l) return; // gone with its addresses
      await rtnl.delAddress(l.index, cidr);
    },
    open: (ifname, primaryAddress, onAdvert) => openLink({ ifname, link: host.index(ifname), primaryAddress, onAdvert, poller: o.poller, advertiser, log: o.log, mac: () => host.links.get(ifname)?.mac }),
    advertTiming: () => advertiser.counters,
    close: () => {
      advertiser.close();
      rtnl.close();
    },
  };
}

/** One interface's VRRP I/O for one family: the raw socket, the packet socket, the advert thread's keys. */
function openLink(o: { ifname: string; link: Link; primaryAddress: string; onAdvert: (r: ReceivedAdvert) => void; poller: Poller; advertiser: Advertiser; log: Logger; mac: () => string | undefined }): VrrpLinkIO {
  const { ifname, primaryAddress, onAdvert, advertiser } = o;
  // The IP layer's checks and the advert's, here: the service gets adverts, not datagrams.
  const sock = primaryAddress.includes(':')
    ? VrrpSocketV6.open({
        ifname,
        ifindex: o.link.index,
        linkLocal: primaryAddress,
        watcher: o.poller,
        onPacket: (p) => {
          const r = decodeAdvert(p.payload, { src: p.source, dst: p.destination ?? '::', ttl: p.hopLimit ?? -1, family: 6 });
          onAdvert(r.ok ? { ok: true, value: r.value, src: p.source } : r);
        },
      })
    : VrrpSocketV4.open({
        ifname,
        ifindex: o.link.index,
        primaryAddress,
        watcher: o.poller,
        onPacket: (d: Buffer) => {
          const r = decodeIPv4Advert(d);
          onAdvert(r.ok ? { ok: true, value: r.value, src: r.ip.src } : r);
        },
      });
  let arp: PacketSocket;
  try {
    arp = PacketSocket.open(ifname, o.link.index);
  } catch (e) {
    sock.close();
    throw e;
  }
  // The advert thread's keys: per family (a VRID may run once over IPv4 and once over IPv6).
  const tag = primaryAddress.includes(':') ? `${ifname}%6` : ifname;
  let advertFd: number | undefined;
  /** What each advert key last carried: a new payload is sent from here at once. */
  const lastPayload = new Map<string, Buffer>();
  return {
    send: (payload, dst) => sock.send(payload, dst),
    advertise: (vrid, payload, dst, intervalMs, leaseMs, now) => {
      advertFd ??= advertiser.adopt(sock.descriptor);
      const key = `${tag}/${vrid}/${dst}`;
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
      for (const k of lastPayload.keys()) if (k.startsWith(`${tag}/${vrid}/`)) lastPayload.delete(k);
      advertiser.stop(`${tag}/${vrid}/`);
    },
    drain: () => sock.drain(),
    garp: (addresses) => {
      const mac = o.mac();
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
}
