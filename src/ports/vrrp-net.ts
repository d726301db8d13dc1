/**
 * Port: what the VRRP service needs of the host: raw VRRP I/O per interface, the adverts'
 * own clock, addresses, link state (adapters/vrrp-net.ts over rtnetlink and raw sockets).
 */
import type { AdvertTiming } from '../fsm/vrrp/advert-schedule.js';
import type { VrrpAdvert } from '../codec/vrrp/packet.js';
import type { Ipv4DropReason, PacketDropReason } from '../codec/vrrp/drop.js';

/**
 * An advert as the host hands it over: decoded with the checks of its IP layer (TTL or hop
 * limit 255, the checksum over the pseudo-header) and its IP source, or why it was dropped.
 */
export type ReceivedAdvert = { ok: true; value: VrrpAdvert; src: string } | { ok: false; reason: Ipv4DropReason | PacketDropReason };

/** VRRP I/O on one interface. */
export interface VrrpLinkIO {
  /** Sends a VRRP payload (the IP header is the kernel's) to the group or a unicast peer, once. */
  send(payload: Buffer, dst: string): void;
  /**
   * The master's advert for `vrid`, sent now and then every `intervalMs` by a clock of its own
   * (fsm/vrrp/advert-schedule.ts, in a thread of its own for the real host) while renewed at
   * least every `leaseMs`; the same payload again only renews.
   */
  advertise(vrid: number, payload: Buffer, dst: string, intervalMs: number, leaseMs: number, now: boolean): void;
  /** Stops the adverts of `vrid` at once. */
  stopAdvertising(vrid: number): void;
  /** One gratuitous ARP per address. */
  garp(addresses: readonly string[]): void;
  /** Reads the adverts waiting in the socket now (handing each to onPacket). */
  drain(): void;
  close(): void;
}

/** What the service needs of the host (adapters/vrrp-net.ts over rtnetlink and raw sockets). */
export interface VrrpNet {
  /** IPv6 when `primaryAddress` (the source of our adverts) is: then the interface's link-local. */
  open(ifname: string, primaryAddress: string, onAdvert: (r: ReceivedAdvert) => void): VrrpLinkIO;
  /** Idempotent: an address already there is fine. */
  addAddress(ifname: string, cidr: string): Promise<void>;
  /** Idempotent: an address already gone is fine. */
  delAddress(ifname: string, cidr: string): Promise<void>;
  /** Carrier and admin state; undefined when the interface does not exist. */
  linkUp(ifname: string): boolean | undefined;
  onLinkChange(cb: (ifname: string, up: boolean) => void): () => void;
  /**
   * The interface's IPv6 link-local addresses that IPv6 adverts may leave from (DAD passed),
   * in the order first seen; none while it has none (no carrier yet, DAD running or failed).
   * Link-local VIPs are among them: the service never picks one.
   */
  linkLocals(ifname: string): string[];
  /** Called when an interface's usable link-local addresses change. */
  onLinkLocal(cb: (ifname: string) => void): () => void;
  /** How the adverts' own clock keeps time (the advert thread's counters), when it runs. */
  advertTiming?(): (AdvertTiming & { realtime?: boolean }) | undefined;
}

export interface ScriptRunner {
  /** Runs a tracking script; resolves true on exit 0 within the timeout. */
  check(path: string, timeoutMs: number): Promise<boolean>;
}
