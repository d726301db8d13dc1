/**
 * The VRRP service's sockets: one per interface and family (vrrp-groups.ts `linkKey`), each
 * opened with the address its adverts leave from. A reload's plan opens what it lacks before
 * it commits (`open` into the plan); a start opens what is missing in place. An IPv6 member
 * whose interface has no usable link-local address yet opens nothing: it waits in fault, and
 * `linkLocalChanged` opens its socket when the address comes (and closes it when it goes).
 */
import type { Logger } from 'pino';
import { FwlbError } from '../lib/errors.js';
import type { ReceivedAdvert, VrrpLinkIO, VrrpNet } from '../ports/vrrp-net.js';
import { linkLocalFault, pickLinkLocal, vipsOn, type GroupRuntime, type Member } from './vrrp-groups.js';
import type { SyncGroupEvent } from '../fsm/vrrp/index.js';

export class VrrpLinks {
  /** The open sockets by link key (the effects send and advertise through them). */
  readonly io = new Map<string, VrrpLinkIO>();
  /** The address each link was opened with. */
  private readonly primary = new Map<string, string>();

  constructor(private readonly d: { net: VrrpNet; log: Logger; onPacket: (link: string, r: ReceivedAdvert) => void }) {}

  /**
   * Opens the sockets `members` need: into `opened` (a plan's: those the running service
   * lacks or has with another address), or in place (a start: those missing). Throws when an
   * interface does not exist or the kernel refuses; what was opened into `opened` stays there
   * for the caller to close.
   */
  open(members: Iterable<Member>, opened?: Map<string, { io: VrrpLinkIO; primary: string }>): void {
    for (const m of members) {
      if (!m.primary || opened?.has(m.link)) continue;
      if (this.io.has(m.link) && (!opened || this.primary.get(m.link) === m.primary)) continue;
      if (this.d.net.linkUp(m.ifname) === undefined) throw new FwlbError('ERR_VRRP_LINK', `interface ${m.ifname} does not exist`);
      const link = m.link;
      const io = this.d.net.open(m.ifname, m.primary, (r) => this.d.onPacket(link, r));
      if (opened) opened.set(link, { io, primary: m.primary });
      else this.set(link, io, m.primary);
    }
  }

  set(link: string, io: VrrpLinkIO, primary: string): void {
    this.io.get(link)?.close();
    this.io.set(link, io);
    this.primary.set(link, primary);
  }

  /** Closes every link but those in `keep`. */
  closeExcept(keep: ReadonlySet<string> = new Set()): void {
    for (const [link, l] of this.io) {
      if (keep.has(link)) continue;
      l.close();
      this.io.delete(link);
      this.primary.delete(link);
    }
  }

  /** Reads every socket now: adverts already received are not ignored. */
  drain(): void {
    for (const l of this.io.values()) {
      try {
        l.drain();
      } catch (err) {
        this.d.log.warn({ err: (err as Error).message }, 'VRRP socket read failed');
      }
    }
  }

  /**
   * An interface's usable link-local addresses changed: each IPv6 member there keeps its
   * source while it stays usable, else takes another (never a VIP: pickLinkLocal) and its
   * socket is reopened on it, leaving fault; with none it enters fault until one comes.
   */
  linkLocalChanged(groups: readonly GroupRuntime[], ifname: string, candidates: readonly string[], feed: (g: GroupRuntime, e: SyncGroupEvent) => void): void {
    const source = linkLocalFault(ifname);
    const vips = vipsOn(groups, ifname);
    for (const g of groups) {
      for (const m of g.members.values()) {
        if (m.family !== 6 || m.ifname !== ifname) continue;
        const picked = pickLinkLocal(candidates, vips, m.primary);
        if (picked === m.primary) continue;
        const address = picked || undefined;
        if (m.primary) feed(g, { type: 'member', member: m.name, event: { type: 'fault', source } });
        m.primary = address ?? '';
        const st = g.state.members[m.name]!;
        g.state = { ...g.state, members: { ...g.state.members, [m.name]: { ...st, config: { ...st.config, primaryAddress: m.primary } } } };
        if (this.primary.get(m.link) !== m.primary) {
          this.io.get(m.link)?.close();
          this.io.delete(m.link);
          this.primary.delete(m.link);
          try {
            this.open([m]);
          } catch (err) {
            this.d.log.error({ event: 'vrrp_link_failed', ifname, err: (err as Error).message }, `VRRP (IPv6) socket on ${ifname} not opened: ${(err as Error).message}`);
            continue;
          }
        }
        this.d.log.info({ event: 'vrrp_link_local', ifname, address: address ?? null, instance: `${g.name}.${m.name}` }, address ? `IPv6 adverts on ${ifname} leave from ${address}` : `${ifname} has no usable link-local address: ${g.name}.${m.name} waits in fault`);
        if (address) feed(g, { type: 'member', member: m.name, event: { type: 'fault_cleared', source } });
      }
    }
  }
}
