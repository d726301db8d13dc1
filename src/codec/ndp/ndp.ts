/**
 * IPv6 Neighbor Discovery frames (RFC 4861), the IPv6 counterpart of gratuitous ARP: a new
 * VRRP master sends, for each virtual IPv6 address, an unsolicited Neighbor Advertisement
 * with R set, S clear, O set, target = the address and target link-layer address = the
 * virtual MAC (RFC 9568 6.4.1 / 6.4.2). This file builds such frames (and Neighbor
 * Solicitations, for tests and the lab) and decodes received NS/NA frames. Pure.
 *
 * Ethernet II (dst, src, type 0x86dd, RFC 2464 section 3) + IPv6 header (RFC 8200 section 3:
 * version 6, traffic class 0, flow label 0, payload length, next header 58 = ICMPv6, hop
 * limit 255 (RFC 4861 4.3 / 4.4), source, destination) + the ICMPv6 message:
 *   NS (4.3): type 135, code 0, checksum, 4 reserved bytes, target address, options
 *   NA (4.4): type 136, code 0, checksum, flags R|S|O + 29 reserved bits, target, options
 *   option (4.6): type, length in units of 8 bytes (0 is invalid), data; the link-layer
 *   address options (4.6.1) on Ethernet are 8 bytes: type, length 1, the MAC (RFC 2464 8).
 * The ICMPv6 checksum covers the IPv6 pseudo-header (RFC 8200 8.1; RFC 4443 2.3).
 *
 * A multicast IPv6 destination is sent to the Ethernet address 33:33 + its last four bytes
 * (RFC 2464 section 7). NS for address resolution and DAD go to the target's
 * solicited-node multicast address, ff02::1:ff00:0/104 + the target's low 24 bits
 * (RFC 4291 2.7.1; RFC 4861 7.2.2; RFC 4862 5.4.2).
 *
 * The decoder applies the checks of RFC 4861 7.1.1 / 7.1.2 that need nothing but the frame,
 * and names the first one that fails. It never throws and never reads past the buffer.
 * Not handled (rejected by name): 802.1Q tags (the ethertype is then not IPv6) and IPv6
 * extension headers before ICMPv6 (next header is then not 58); a node's own stack sends
 * neither with NS/NA, and RFC 6980 forbids fragmented ND.
 */
import { internetChecksum, ipv6PseudoHeader } from '../../lib/checksum.js';
import { formatIPv6, formatMac, parseIPv6, parseMac } from '../../lib/ip-bytes.js';

export const ETHERTYPE_IPV6 = 0x86dd; /* RFC 2464 section 3 */
export const IPPROTO_ICMPV6 = 58; /* RFC 8200 / RFC 4443: next header value of ICMPv6 */
export const ICMPV6_NEIGHBOR_SOLICITATION = 135; /* RFC 4861 4.3 */
export const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136; /* RFC 4861 4.4 */
export const ND_HOP_LIMIT = 255; /* RFC 4861 4.3, 4.4; checked on receipt, 7.1.1 / 7.1.2 */
export const ND_OPT_SOURCE_LINK_LAYER = 1; /* RFC 4861 4.6 / 4.6.1 */
export const ND_OPT_TARGET_LINK_LAYER = 2; /* RFC 4861 4.6 / 4.6.1 */
export const NA_FLAG_ROUTER = 0x80; /* RFC 4861 4.4: R, the top bit of the word after the checksum */
export const NA_FLAG_SOLICITED = 0x40; /* RFC 4861 4.4: S */
export const NA_FLAG_OVERRIDE = 0x20; /* RFC 4861 4.4: O */
export const ALL_NODES_ADDRESS = 'ff02::1'; /* RFC 4291 2.7.1, link-local scope */
/** RFC 4861 7.2.6 / section 10: at most 3 unsolicited NAs per change, RetransTimer (1 s) apart. */
export const MAX_NEIGHBOR_ADVERTISEMENT = 3;
export const RETRANS_TIMER_MS = 1000; /* RFC 4861 section 10: RETRANS_TIMER */

const ETH_HEADER = 14;
const IPV6_HEADER = 40;
const ICMP_OFFSET = ETH_HEADER + IPV6_HEADER;
const ND_FIXED = 24; /* type, code, checksum, 4 bytes flags/reserved, 16 bytes target (7.1.1 / 7.1.2) */
const LINK_LAYER_OPTION = 8; /* RFC 2464 section 8: type, length 1, 6-byte MAC */

/** Reasons `decodeNdp` rejects a frame, in the order it checks them ('too_short' is checked again once the type is known). */
export const NDP_DECODE_REASONS = [
  'too_short', // fewer bytes than Ethernet + IPv6 headers, or an ICMPv6 message shorter than NS/NA's 24 (7.1.1 / 7.1.2)
  'not_ipv6', // ethertype is not 0x86dd or the version nibble is not 6
  'not_icmpv6', // next header is not 58 (extension headers are not walked)
  'truncated', // the IPv6 payload length runs past the end of the frame
  'not_ndp', // an ICMPv6 type other than 135 (NS) or 136 (NA)
  'bad_checksum', // the ICMPv6 checksum, pseudo-header included, does not verify (7.1.1 / 7.1.2)
  'bad_hop_limit', // hop limit is not 255: the packet may have been forwarded (7.1.1 / 7.1.2)
  'bad_code', // ICMPv6 code is not 0 (7.1.1 / 7.1.2)
  'bad_target', // the target address is multicast (4.3 / 4.4, 7.1.1 / 7.1.2)
  'bad_option', // an option of length 0 (4.6), one running past the end, or an Ethernet link-layer option whose length is not 1 (RFC 2464 8)
  'solicited_to_multicast', // an NA with S set sent to a multicast destination (4.4, 7.1.2)
  'bad_dad_solicitation', // an NS from :: not sent to a solicited-node address, or carrying a source link-layer option (7.1.1)
] as const;
export type NdpDecodeReason = (typeof NDP_DECODE_REASONS)[number];

interface NdpCommon {
  /** Ethernet destination and source, "aa:bb:cc:dd:ee:ff". */
  ethDestination: string;
  ethSource: string;
  /** IPv6 header fields, canonical text (RFC 5952). */
  source: string;
  destination: string;
  hopLimit: number;
  target: string;
}

export interface NeighborSolicitation extends NdpCommon {
  type: typeof ICMPV6_NEIGHBOR_SOLICITATION;
  /** The first Source Link-Layer Address option, if any (4.3); target link-layer options are ignored (4.6.1). */
  sourceLinkLayer: string | undefined;
}

export interface NeighborAdvertisement extends NdpCommon {
  type: typeof ICMPV6_NEIGHBOR_ADVERTISEMENT;
  router: boolean;
  solicited: boolean;
  override: boolean;
  /** The first Target Link-Layer Address option, if any (4.4); source link-layer options are ignored (4.6.1). */
  targetLinkLayer: string | undefined;
}

export type NdpMessage = NeighborSolicitation | NeighborAdvertisement;
export type NdpDecodeResult = { ok: true; value: NdpMessage } | { ok: false; reason: NdpDecodeReason };

const isMulticast = (a: Uint8Array): boolean => a[0] === 0xff; /* RFC 4291 2.7: ff00::/8 */
const isUnspecified = (a: Uint8Array): boolean => a.every((x) => x === 0); /* RFC 4291 2.5.2 */

/** True for ff02::1:ffxx:xxxx (RFC 4291 2.7.1). */
function isSolicitedNode(a: Uint8Array): boolean {
  const prefix = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];
  return prefix.every((x, i) => a[i] === x);
}

/** 16 bytes of the solicited-node multicast address of `a` (RFC 4291 2.7.1). */
function solicitedNodeBytes(a: Uint8Array): Uint8Array {
  const out = Uint8Array.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0]);
  out.set(a.subarray(13, 16), 13);
  return out;
}

/** 6 bytes of the Ethernet address a multicast IPv6 destination is sent to (RFC 2464 section 7). */
function multicastMacBytes(a: Uint8Array): Uint8Array {
  return Uint8Array.from([0x33, 0x33, a[12] as number, a[13] as number, a[14] as number, a[15] as number]);
}

/**
 * The solicited-node multicast address of a unicast or anycast IPv6 address (RFC 4291
 * 2.7.1): ff02::1:ff00:0/104 followed by the address's low-order 24 bits. Canonical text.
 */
export function solicitedNodeAddress(addr: string): string {
  const a = parseIPv6(addr);
  if (!a || isMulticast(a)) throw new TypeError(`solicitedNodeAddress: not a unicast or anycast IPv6 address: ${addr}`);
  return formatIPv6(solicitedNodeBytes(a));
}

/** The Ethernet address of a multicast IPv6 address: 33:33 + its last four bytes (RFC 2464 section 7). */
export function multicastMac(ipv6Multicast: string): string {
  const a = parseIPv6(ipv6Multicast);
  if (!a || !isMulticast(a)) throw new TypeError(`multicastMac: not an IPv6 multicast address: ${ipv6Multicast}`);
  return formatMac(multicastMacBytes(a));
}

/** A 6-byte individual (not group, IEEE 802 bit 0 of byte 0 clear) MAC, or a TypeError naming the caller. */
function unicastMac(fn: string, mac: string): Uint8Array {
  const m = parseMac(mac);
  if (m?.length !== 6 || ((m[0] as number) & 1) !== 0) throw new TypeError(`${fn}: not a unicast Ethernet MAC: ${mac}`);
  return m;
}

/** A parsed IPv6 address that is neither multicast nor (unless allowed) ::, or a TypeError. */
function address(fn: string, what: string, text: string, allowUnspecified = false): Uint8Array {
  const a = parseIPv6(text);
  if (!a || isMulticast(a) || (!allowUnspecified && isUnspecified(a))) throw new TypeError(`${fn}: bad ${what} address ${text}`);
  return a;
}

/**
 * Ethernet + IPv6 + an ND message of the fixed part `nd` (its checksum field zero) and
 * `options`; fills in the payload length and the ICMPv6 checksum.
 */
function frame(dstMac: Uint8Array, srcMac: Uint8Array, src: Uint8Array, dst: Uint8Array, nd: Uint8Array, options: Uint8Array): Buffer {
  const icmpLength = nd.length + options.length;
  const f = Buffer.alloc(ICMP_OFFSET + icmpLength);
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  f.writeUInt16BE(ETHERTYPE_IPV6, 12);
  f[14] = 0x60; // version 6, traffic class 0, flow label 0 (bytes 15-17 stay zero)
  f.writeUInt16BE(icmpLength, 18);
  f[20] = IPPROTO_ICMPV6;
  f[21] = ND_HOP_LIMIT;
  f.set(src, 22);
  f.set(dst, 38);
  f.set(nd, ICMP_OFFSET);
  f.set(options, ICMP_OFFSET + nd.length);
  const icmp = f.subarray(ICMP_OFFSET);
  f.writeUInt16BE(internetChecksum(ipv6PseudoHeader(src, dst, IPPROTO_ICMPV6, icmpLength), icmp), ICMP_OFFSET + 2);
  return f;
}

/** The 24-byte fixed part of an NS/NA: type, code 0, checksum 0 (filled in later), flags byte, target. */
function ndFixed(type: number, flags: number, target: Uint8Array): Uint8Array {
  const nd = new Uint8Array(ND_FIXED);
  nd[0] = type;
  nd[4] = flags;
  nd.set(target, 8);
  return nd;
}

/** An 8-byte link-layer address option (RFC 4861 4.6.1, RFC 2464 section 8). */
function linkLayerOption(type: number, mac: Uint8Array): Uint8Array {
  const o = new Uint8Array(LINK_LAYER_OPTION);
  o[0] = type;
  o[1] = 1;
  o.set(mac, 2);
  return o;
}

export interface UnsolicitedNeighborAdvertArgs {
  /** The link-layer address to announce (the virtual MAC); also the frame's Ethernet source. */
  mac: string;
  /** IPv6 source: an address assigned to the sending interface (RFC 4861 4.4), e.g. the VIP itself or the interface's link-local address. */
  source: string;
  /** The address whose link-layer address is announced (the VIP). */
  target: string;
  /** The R flag: true when the sender is a router (RFC 4861 7.2.6 MUST; RFC 9568 6.4 sets it). */
  router: boolean;
}

/**
 * The whole Ethernet frame of an unsolicited Neighbor Advertisement (RFC 4861 7.2.6): to
 * all-nodes ff02::1 (Ethernet 33:33:00:00:00:01), S clear (MUST), O set, with a Target
 * Link-Layer Address option carrying `mac`. Throws TypeError on bad arguments.
 */
export function unsolicitedNeighborAdvert({ mac, source, target, router }: UnsolicitedNeighborAdvertArgs): Buffer {
  const fn = 'unsolicitedNeighborAdvert';
  const m = unicastMac(fn, mac);
  const src = address(fn, 'source', source);
  const tgt = address(fn, 'target', target);
  if (typeof router !== 'boolean') throw new TypeError(`${fn}: router must be a boolean`);
  const dst = parseIPv6(ALL_NODES_ADDRESS)!;
  const flags = (router ? NA_FLAG_ROUTER : 0) | NA_FLAG_OVERRIDE;
  return frame(multicastMacBytes(dst), m, src, dst, ndFixed(ICMPV6_NEIGHBOR_ADVERTISEMENT, flags, tgt), linkLayerOption(ND_OPT_TARGET_LINK_LAYER, m));
}

export interface NeighborSolicitationArgs {
  /** The sender's MAC: the Ethernet source, and the Source Link-Layer Address option unless `source` is ::. */
  mac: string;
  /** An address of the sending interface, or :: for Duplicate Address Detection (RFC 4861 4.3). */
  source: string;
  /** The address being resolved (or, for DAD, tried). */
  target: string;
}

/**
 * The whole Ethernet frame of a multicast Neighbor Solicitation (RFC 4861 4.3, 7.2.2): to
 * the target's solicited-node address and its 33:33 MAC. From ::, no Source Link-Layer
 * Address option (4.3 MUST NOT); otherwise one (4.3: MUST in multicast solicitations).
 * Throws TypeError on bad arguments.
 */
export function neighborSolicitation({ mac, source, target }: NeighborSolicitationArgs): Buffer {
  const fn = 'neighborSolicitation';
  const m = unicastMac(fn, mac);
  const src = address(fn, 'source', source, true);
  const tgt = address(fn, 'target', target);
  const dst = solicitedNodeBytes(tgt);
  const options = isUnspecified(src) ? new Uint8Array(0) : linkLayerOption(ND_OPT_SOURCE_LINK_LAYER, m);
  return frame(multicastMacBytes(dst), m, src, dst, ndFixed(ICMPV6_NEIGHBOR_SOLICITATION, 0, tgt), options);
}

/**
 * Walks the options after the fixed part (RFC 4861 4.6): the first link-layer address
 * option of type `wanted`, whether one of type 1 (source) was seen, or 'bad_option'.
 * Options of other types (the other link-layer one included, 4.6.1) are skipped.
 */
function readOptions(m: Uint8Array, wanted: number): { address: string | undefined; sawSource: boolean } | 'bad_option' {
  let address: string | undefined;
  let sawSource = false;
  for (let o = ND_FIXED; o < m.length; ) {
    if (o + 2 > m.length) return 'bad_option';
    const type = m[o] as number;
    const len = (m[o + 1] as number) * 8;
    if (len === 0 || o + len > m.length) return 'bad_option';
    if (type === ND_OPT_SOURCE_LINK_LAYER) sawSource = true;
    if (type === wanted) {
      if (len !== LINK_LAYER_OPTION) return 'bad_option';
      address ??= formatMac(m.subarray(o + 2, o + 8));
    }
    o += len;
  }
  return { address, sawSource };
}

/**
 * Decodes an Ethernet frame carrying an ICMPv6 Neighbor Solicitation or Advertisement and
 * applies RFC 4861's receive checks (7.1.1 / 7.1.2). Bytes after the IPv6 payload
 * (Ethernet padding) are ignored. Never throws.
 */
export function decodeNdp(b: Uint8Array): NdpDecodeResult {
  const fail = (reason: NdpDecodeReason): NdpDecodeResult => ({ ok: false, reason });
  if (b.length < ICMP_OFFSET) return fail('too_short');
  const u16 = (i: number) => ((b[i] as number) << 8) | (b[i + 1] as number);
  if (u16(12) !== ETHERTYPE_IPV6 || (b[14] as number) >> 4 !== 6) return fail('not_ipv6');
  if (b[20] !== IPPROTO_ICMPV6) return fail('not_icmpv6');
  const length = u16(18);
  if (ICMP_OFFSET + length > b.length) return fail('truncated');
  if (length < 4) return fail('too_short');
  const m = b.subarray(ICMP_OFFSET, ICMP_OFFSET + length);
  const type = m[0] as number;
  if (type !== ICMPV6_NEIGHBOR_SOLICITATION && type !== ICMPV6_NEIGHBOR_ADVERTISEMENT) return fail('not_ndp');
  const src = b.subarray(22, 38);
  const dst = b.subarray(38, 54);
  if (internetChecksum(ipv6PseudoHeader(src, dst, IPPROTO_ICMPV6, length), m) !== 0) return fail('bad_checksum');
  const hopLimit = b[21] as number;
  if (hopLimit !== ND_HOP_LIMIT) return fail('bad_hop_limit');
  if (m[1] !== 0) return fail('bad_code');
  if (length < ND_FIXED) return fail('too_short');
  const target = m.subarray(8, 24);
  if (isMulticast(target)) return fail('bad_target');
  const isNa = type === ICMPV6_NEIGHBOR_ADVERTISEMENT;
  const opts = readOptions(m, isNa ? ND_OPT_TARGET_LINK_LAYER : ND_OPT_SOURCE_LINK_LAYER);
  if (opts === 'bad_option') return fail('bad_option');
  const common: NdpCommon = {
    ethDestination: formatMac(b.subarray(0, 6)),
    ethSource: formatMac(b.subarray(6, 12)),
    source: formatIPv6(src),
    destination: formatIPv6(dst),
    hopLimit,
    target: formatIPv6(target),
  };
  if (isNa) {
    const flags = m[4] as number;
    const solicited = (flags & NA_FLAG_SOLICITED) !== 0;
    if (solicited && isMulticast(dst)) return fail('solicited_to_multicast');
    const router = (flags & NA_FLAG_ROUTER) !== 0;
    const override = (flags & NA_FLAG_OVERRIDE) !== 0;
    return { ok: true, value: { ...common, type: ICMPV6_NEIGHBOR_ADVERTISEMENT, router, solicited, override, targetLinkLayer: opts.address } };
  }
  if (isUnspecified(src) && (!isSolicitedNode(dst) || opts.sawSource)) return fail('bad_dad_solicitation');
  return { ok: true, value: { ...common, type: ICMPV6_NEIGHBOR_SOLICITATION, sourceLinkLayer: opts.address } };
}
