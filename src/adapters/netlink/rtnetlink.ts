/**
 * rtnetlink for the VRRP engine, without spawning `ip`: list links and addresses, add and
 * remove virtual IPs, hear link and address changes as they happen (a carrier loss reaches
 * `onEvent` within a millisecond or so of the kernel noticing it).
 *
 * Two NETLINK_ROUTE sockets share the caller's Poller: one for requests (no groups, so
 * replies never queue behind a burst of events) and, when groups are asked for, one for
 * events with a large receive buffer. If the kernel still drops events (ENOBUFS), a
 * `{kind: 'lost'}` event says so: re-read links()/addresses().
 *
 * Events carry `self: true` when the kernel attributes the change to a request of this
 * RtNetlink (its port id in nlmsg_pid), so a service can tell its own writes from the
 * world's. The kernel does so for IPv4 address changes only: IPv6 address events and link
 * events come with port id 0 and are always `self: false` (seen on Linux 6.18).
 *
 * Lifetime: close() the RtNetlink before the Poller. Whether a process waiting only for
 * events stays alive is the Poller's `keepAlive` (its 'uv' backend does not by default).
 */
import { type Cidr, type IpFamily, parseCidr } from '../../codec/netlink/address.js';
import type { NlMessage } from '../../codec/netlink/nlmsg.js';
import {
  type Addr,
  type AddrSpec,
  decodeAddr,
  decodeLink,
  decodeRtMessage,
  encodeDelAddr,
  encodeGetAddrs,
  encodeGetLink,
  encodeGetLinks,
  encodeNewAddr,
  encodeSetLinkUp,
  IFA_F_NODAD,
  type Link,
  RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV6_IFADDR,
  RTNLGRP_LINK,
} from '../../codec/netlink/rtnetlink.js';
import { FwlbError } from '../../lib/errors.js';
import { NetlinkError } from './errors.js';
import type { Poller } from './poller.js';
import { NetlinkSocket, openRequestAndEvents, requestIdempotent, type Reply } from './socket.js';
import type { SocketCounters } from '../../ports/netlink.js';

export type { Addr, Link } from '../../codec/netlink/rtnetlink.js';

/** Event groups, by what they carry. */
export type RtGroup = 'link' | 'ipv4-ifaddr' | 'ipv6-ifaddr';
const GROUP_NUMBER: Record<RtGroup, number> = {
  link: RTNLGRP_LINK,
  'ipv4-ifaddr': RTNLGRP_IPV4_IFADDR,
  'ipv6-ifaddr': RTNLGRP_IPV6_IFADDR,
};

export type RtEvent = (Link & { self: boolean }) | (Addr & { self: boolean }) | { kind: 'lost' };

export interface RtNetlinkOptions {
  poller: Poller;
  /** Event groups to join; default all three. [] opens no event socket. */
  groups?: readonly RtGroup[];
  /** Request timeout in ms (default 5000). */
  timeoutMs?: number;
  /** Receive buffer of the event socket (default 4 MiB; needs CAP_NET_ADMIN beyond rmem_max). */
  eventBuffer?: number;
}

export interface AddAddressOptions {
  /** IFA_LABEL (IPv4; must start with the interface name, e.g. "eth0:vip"). */
  label?: string;
  /** IPv6: skip duplicate address detection so the VIP is usable at once (default true). */
  nodad?: boolean;
  /** IPv4 broadcast address text (IFA_BROADCAST). */
  broadcast?: string;
  /** ifa_scope (RT_SCOPE_*), default universe. */
  scope?: number;
}

/** How many times a dump is redone when the kernel flags it inconsistent (NLM_F_DUMP_INTR). */
const DUMP_ATTEMPTS = 3;

export class RtNetlink {
  private readonly requests: NetlinkSocket;
  private readonly events: NetlinkSocket | undefined;
  private readonly listeners = new Set<(e: RtEvent) => void>();
  /**
   * Messages of replies and events the codec refused, by reason. 'bad_family' counts
   * AF_BRIDGE link messages (bridge port state), which are not about links: expected, not damage.
   */
  readonly dropped: Record<string, number> = {};

  private constructor(requests: NetlinkSocket, events: NetlinkSocket | undefined) {
    this.requests = requests;
    this.events = events;
  }

  /** Opens the sockets (synchronously); throws NetlinkError when the kernel refuses. */
  static open(opts: RtNetlinkOptions): RtNetlink {
    const groups = opts.groups ?? (['link', 'ipv4-ifaddr', 'ipv6-ifaddr'] as const);
    const base = { poller: opts.poller, ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }) };
    let self: RtNetlink | undefined;
    const { requests, events } = openRequestAndEvents(base, {
      groups: [...new Set(groups)].map((g) => GROUP_NUMBER[g]),
      rcvbuf: opts.eventBuffer ?? 4 * 1024 * 1024,
      onNotification: (m) => self?.onNotification(m),
      onLost: () => self?.emit({ kind: 'lost' }),
    });
    self = new RtNetlink(requests, events);
    return self;
  }

  /** Socket-level counters: requests, then events. */
  counters(): { requests: SocketCounters; events?: SocketCounters } {
    return this.events ? { requests: this.requests.counters, events: this.events.counters } : { requests: this.requests.counters };
  }

  /** Calls `cb` for every link/address event and for `{kind:'lost'}`; returns the unsubscribe function. */
  onEvent(cb: (e: RtEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Every link of the namespace. */
  async links(): Promise<Link[]> {
    const msgs = await this.dump('RTM_GETLINK', (seq) => encodeGetLinks(seq));
    return this.decodeAll(msgs, decodeLink);
  }

  /** One link by index; undefined when there is none (ENODEV). */
  async link(index: number): Promise<Link | undefined> {
    return this.getLink({ index });
  }

  /** One link by name; undefined when there is none (ENODEV). */
  async linkByName(name: string): Promise<Link | undefined> {
    return this.getLink({ name });
  }

  /** Every address of one family, or both. */
  async addresses(family?: IpFamily): Promise<Addr[]> {
    const msgs = await this.dump('RTM_GETADDR', (seq) => encodeGetAddrs(seq, family));
    return this.decodeAll(msgs, decodeAddr);
  }

  /**
   * Adds "a.b.c.d/len" or "v6/len" (no length: a host address) to a link.
   * Resolves 'added', or 'exists' when the kernel answers EEXIST (it was already there; a
   * retry after failover is then harmless). Other errors reject with NetlinkError
   * (ENODEV: no such link; EINVAL; ...).
   */
  async addAddress(ifindex: number, cidr: string, opts: AddAddressOptions = {}): Promise<'added' | 'exists'> {
    const spec = toSpec(ifindex, cidr);
    if (opts.label !== undefined) spec.label = opts.label;
    if (opts.scope !== undefined) spec.scope = opts.scope;
    if (opts.broadcast !== undefined) {
      const b = parseCidr(opts.broadcast);
      const host = b !== undefined && b.prefixLen === (b.family === 4 ? 32 : 128);
      if (!b || !host || b.family !== spec.family) throw invalid(`bad broadcast address ${opts.broadcast}`);
      spec.broadcast = b.bytes;
    }
    if (spec.family === 6 && (opts.nodad ?? true)) spec.flags = IFA_F_NODAD;
    return requestIdempotent(this.requests, (seq) => encodeNewAddr(seq, spec), 'RTM_NEWADDR', 'added', { errno: 'EEXIST', result: 'exists' });
  }

  /**
   * Removes an address from a link. Resolves 'deleted', or 'absent' when the kernel answers
   * EADDRNOTAVAIL (it was not there). Other errors reject with NetlinkError.
   */
  async delAddress(ifindex: number, cidr: string): Promise<'deleted' | 'absent'> {
    const spec = toSpec(ifindex, cidr);
    return requestIdempotent(this.requests, (seq) => encodeDelAddr(seq, spec), 'RTM_DELADDR', 'deleted', { errno: 'EADDRNOTAVAIL', result: 'absent' });
  }

  /** Sets a link administratively up or down (`ip link set dev X up|down`). */
  async setLinkUp(ifindex: number, up: boolean): Promise<void> {
    await this.requests.request((seq) => encodeSetLinkUp(seq, ifindex, up), { dump: false, op: 'RTM_NEWLINK' });
  }

  /** Closes both sockets (waiting requests reject with ECANCELED); the poller stays open. Idempotent. */
  close(): void {
    this.requests.close();
    this.events?.close();
    this.listeners.clear();
  }

  // -------------------------------------------------------------------------------------

  private async getLink(sel: { index: number } | { name: string }): Promise<Link | undefined> {
    let reply: Reply;
    try {
      reply = await this.requests.request((seq) => encodeGetLink(seq, sel), { dump: false, op: 'RTM_GETLINK' });
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === 'ENODEV') return undefined;
      throw err;
    }
    return this.decodeAll(reply.messages, decodeLink)[0];
  }

  private async dump(op: string, build: (seq: number) => Buffer): Promise<NlMessage[]> {
    let reply: Reply | undefined;
    for (let i = 0; i < DUMP_ATTEMPTS; i++) {
      reply = await this.requests.request(build, { dump: true, op });
      if (!reply.interrupted) break;
    }
    // Still interrupted after the last attempt: the last snapshot is returned; events
    // that follow bring it up to date.
    return reply?.messages ?? [];
  }

  private decodeAll<T>(msgs: NlMessage[], decode: (m: NlMessage) => { ok: true; value: T } | { ok: false; reason: string }): T[] {
    const out: T[] = [];
    for (const m of msgs) {
      const r = decode(m);
      if (r.ok) out.push(r.value);
      else this.dropped[r.reason] = (this.dropped[r.reason] ?? 0) + 1;
    }
    return out;
  }

  private onNotification(msg: NlMessage): void {
    const r = decodeRtMessage(msg);
    if (!r.ok) {
      this.dropped[r.reason] = (this.dropped[r.reason] ?? 0) + 1;
      return;
    }
    const self = r.value.kind === 'addr' && msg.header.pid === this.requests.pid;
    this.emit({ ...r.value, self });
  }

  private emit(e: RtEvent): void {
    for (const cb of [...this.listeners]) {
      try {
        cb(e);
      } catch (err) {
        // One listener's bug neither starves the others nor stops the socket's reads.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}

function invalid(message: string): FwlbError {
  return new FwlbError('ERR_INVALID_ARGUMENT', message);
}

function toSpec(ifindex: number, cidr: string): AddrSpec {
  if (!Number.isInteger(ifindex) || ifindex <= 0 || ifindex > 0x7fffffff) throw invalid(`bad ifindex ${ifindex}`);
  const c: Cidr | undefined = parseCidr(cidr);
  if (!c) throw invalid(`bad address ${JSON.stringify(cidr)}: want "a.b.c.d/len" or "v6addr/len"`);
  return { family: c.family, index: ifindex, prefixLen: c.prefixLen, local: c.bytes };
}
