/**
 * VRRP advertisements <-> bytes: version 3 (RFC 5798, IPv4 and IPv6) and version 2
 * (RFC 3768, IPv4). Only the VRRP message, never the IP header: the adapter's raw socket
 * supplies source, destination and TTL/hop limit, and the v3 checksum covers them through
 * the pseudo-header.
 *
 *  v3 (RFC 5798 5.1)                       v2 (RFC 3768 5.1)
 *  0       4       8              16              24             32
 *  |Version| Type  | Virtual Rtr ID|   Priority    | Count Addrs  |
 *  |(rsvd) |     Max Adver Int     |          Checksum            |   v3
 *  |   Auth Type   |   Adver Int   |          Checksum            |   v2
 *  |                  IPvX Address(es) (4 or 16 bytes each)        |
 *  |                  Authentication Data, 8 bytes (v2 only)       |
 *
 * `decodeAdvert` never throws, whatever the bytes: it returns a closed set of reasons.
 */
import { internetChecksum, ipv4PseudoHeader, ipv6PseudoHeader } from '../../lib/checksum.js';
import { FwlbError } from '../../lib/errors.js';
import { formatIPv4, formatIPv6, parseAddress } from '../../lib/ip-bytes.js';
import {
  IPPROTO_VRRP,
  VRRP_HEADER_LEN,
  VRRP_IP_TTL,
  VRRP_MAX_ADDRESSES,
  VRRP_TYPE_ADVERTISEMENT,
  VRRP_V2_ADVER_INT_MAX_S,
  VRRP_V2_ADVER_INT_UNIT_MS,
  VRRP_V2_AUTH_DATA_LEN,
  VRRP_V2_AUTH_RESERVED_AH,
  VRRP_V3_ADVER_INT_MAX_CS,
  VRRP_V3_ADVER_INT_UNIT_MS,
  VRRP_VERSION_2,
  VRRP_VERSION_3,
  VRRP_VRID_MAX,
  VRRP_VRID_MIN,
} from './constants.js';
import type { PacketDropReason } from './drop.js';

/** A VRRPv3 advertisement (RFC 5798 5.2). */
export interface VrrpV3Advert {
  version: 3;
  family: 4 | 6;
  vrid: number;
  priority: number;
  /** Max Adver Int in milliseconds; a whole number of centiseconds, 10..40950 (RFC 5798 5.2.7). */
  maxAdvertIntervalMs: number;
  /** Canonical address text (no prefix length). For IPv6 RFC 5798 5.2.9 wants the link-local first. */
  addresses: string[];
}

/** A VRRPv2 advertisement (RFC 3768 5.3). IPv4 only. */
export interface VrrpV2Advert {
  version: 2;
  family: 4;
  vrid: number;
  priority: number;
  /** Adver Int in milliseconds; a whole number of seconds, 1000..255000 (RFC 3768 5.3.7). */
  advertIntervalMs: number;
  addresses: string[];
  /** Authentication Type (RFC 3768 5.3.6); 0 = none. The 8 bytes of auth data are sent as zeros. */
  authType?: number;
}

export type VrrpAdvert = VrrpV3Advert | VrrpV2Advert;

/** Source and destination of the IP packet carrying the advert (for the v3 pseudo-header). */
export interface IpEndpoints {
  src: string;
  dst: string;
}

/** What the IP layer tells the decoder about a received packet. */
export interface ReceivedIpMeta extends IpEndpoints {
  /** IPv4 TTL or IPv6 hop limit as received. */
  ttl: number;
  family: 4 | 6;
}

/**
 * How a v3 checksum was (or is to be) computed. RFC 5798 5.2.8 sums a pseudo-header for both
 * families ('pseudo_header'; keepalived and most of the deployed base do this for IPv4 too).
 * RFC 9568 5.2.8 sums the VRRP message alone over IPv4 ('message_only'). We send the RFC 5798
 * form by default and accept either over IPv4. v2 is always 'message_only' (RFC 3768 5.3.8).
 */
export type ChecksumForm = 'pseudo_header' | 'message_only';

export type AdvertDecodeResult =
  | { ok: true; value: VrrpAdvert; checksumForm: ChecksumForm }
  | { ok: false; reason: PacketDropReason };

/** The advertisement interval of either version, in milliseconds. */
export function advertIntervalMs(advert: VrrpAdvert): number {
  return advert.version === 3 ? advert.maxAdvertIntervalMs : advert.advertIntervalMs;
}

/** Bytes in an advertisement: header, addresses, and for v2 the authentication data. */
export function advertLength(version: 2 | 3, family: 4 | 6, count: number): number {
  return VRRP_HEADER_LEN + count * (family === 4 ? 4 : 16) + (version === 2 ? VRRP_V2_AUTH_DATA_LEN : 0);
}

/**
 * Why an interval cannot be sent by this version, or undefined when it can: v3 carries whole
 * centiseconds in 12 bits (RFC 5798 5.2.7), v2 whole seconds in 8 bits (RFC 3768 5.3.7).
 * The config layer can use this to reject an interval before it reaches the wire.
 */
export function advertIntervalProblem(version: 2 | 3, ms: number): string | undefined {
  const [unit, max, name] =
    version === 3
      ? [VRRP_V3_ADVER_INT_UNIT_MS, VRRP_V3_ADVER_INT_MAX_CS, 'centiseconds (VRRPv3)']
      : [VRRP_V2_ADVER_INT_UNIT_MS, VRRP_V2_ADVER_INT_MAX_S, 'seconds (VRRPv2)'];
  if (!Number.isInteger(ms) || ms % unit !== 0) return `advertisement interval ${ms} ms is not a whole number of ${name}`;
  if (ms < unit || ms / unit > max) return `advertisement interval ${ms} ms is outside 1..${max} ${name}`;
  return undefined;
}

/** Everything wrong with an advert we are about to send; empty when it can be encoded. */
export function advertProblems(advert: VrrpAdvert, ip: IpEndpoints): string[] {
  const p: string[] = [];
  const raw = advert as { version: unknown; family: unknown };
  const int = (n: unknown, lo: number, hi: number) => typeof n === 'number' && Number.isInteger(n) && n >= lo && n <= hi;
  if (advert.version !== VRRP_VERSION_2 && advert.version !== VRRP_VERSION_3) p.push(`version ${String(raw.version)} is not 2 or 3`);
  if (advert.family !== 4 && advert.family !== 6) p.push(`family ${String(raw.family)} is not 4 or 6`);
  if (advert.version === VRRP_VERSION_2 && advert.family !== 4) p.push('VRRPv2 carries IPv4 only (RFC 3768)');
  if (!int(advert.vrid, VRRP_VRID_MIN, VRRP_VRID_MAX)) p.push(`VRID ${advert.vrid} is outside 1..255`);
  if (!int(advert.priority, 0, 255)) p.push(`priority ${advert.priority} is outside 0..255`);
  const ivProblem = advertIntervalProblem(advert.version, advertIntervalMs(advert));
  if (ivProblem) p.push(ivProblem);
  if (advert.version === VRRP_VERSION_2 && advert.authType !== undefined && !int(advert.authType, 0, 255)) p.push(`auth type ${advert.authType} is not a byte`);
  if (!Array.isArray(advert.addresses) || advert.addresses.length < 1 || advert.addresses.length > VRRP_MAX_ADDRESSES) {
    p.push('an advertisement carries 1..255 addresses (RFC 5798 5.2.5)');
  } else {
    for (const a of advert.addresses) if (!parseAddress(a, advert.family)) p.push(`"${a}" is not an IPv${advert.family} address`);
  }
  if (advert.version === VRRP_VERSION_3) {
    if (!parseAddress(ip.src, advert.family)) p.push(`source "${ip.src}" is not an IPv${advert.family} address`);
    if (!parseAddress(ip.dst, advert.family)) p.push(`destination "${ip.dst}" is not an IPv${advert.family} address`);
  }
  return p;
}

/**
 * Encodes an advertisement: the VRRP message only, checksum filled in (RFC 5798 7.2 / RFC 3768
 * 7.2). Values come from our own configuration, so invalid ones are a programming error and
 * throw an FwlbError with code ERR_VRRP_ENCODE (use `advertProblems` to check first).
 * For v3, `ip` gives the pseudo-header; for v2 it is not used.
 */
export function encodeAdvert(advert: VrrpAdvert, ip: IpEndpoints, options: { v3Ipv4Checksum?: ChecksumForm } = {}): Buffer {
  const problems = advertProblems(advert, ip);
  if (problems.length > 0) throw new FwlbError('ERR_VRRP_ENCODE', `cannot encode VRRP advertisement: ${problems.join('; ')}`);
  const addrLen = advert.family === 4 ? 4 : 16;
  const buf = Buffer.alloc(advertLength(advert.version, advert.family, advert.addresses.length));
  buf[0] = (advert.version << 4) | VRRP_TYPE_ADVERTISEMENT;
  buf[1] = advert.vrid;
  buf[2] = advert.priority;
  buf[3] = advert.addresses.length;
  if (advert.version === VRRP_VERSION_3) {
    // 4 reserved bits, zero on transmission (RFC 5798 5.2.6), then 12 bits of centiseconds.
    buf.writeUInt16BE((advert.maxAdvertIntervalMs / VRRP_V3_ADVER_INT_UNIT_MS) & VRRP_V3_ADVER_INT_MAX_CS, 4);
  } else {
    buf[4] = advert.authType ?? 0;
    buf[5] = advert.advertIntervalMs / VRRP_V2_ADVER_INT_UNIT_MS;
  }
  advert.addresses.forEach((a, i) => buf.set(parseAddress(a, advert.family) as Uint8Array, VRRP_HEADER_LEN + i * addrLen));
  // v2 Authentication Data stays zero (RFC 3768 5.3.10). The checksum field is zero while summing.
  const form: ChecksumForm =
    advert.version === VRRP_VERSION_2 ? 'message_only' : advert.family === 6 ? 'pseudo_header' : (options.v3Ipv4Checksum ?? 'pseudo_header');
  const pseudo = form === 'pseudo_header' ? pseudoHeader(advert.family, ip, buf.length) : undefined;
  buf.writeUInt16BE(pseudo ? internetChecksum(pseudo, buf) : internetChecksum(buf), 6);
  return buf;
}

/**
 * Decodes and validates an advertisement as received (RFC 5798 7.1, RFC 3768 7.1), in this
 * order: IP meta readable, fixed header present, TTL 255, version, family, exact length,
 * checksum, type, VRID, address count, interval, v2 auth type. Checks that need the instance's
 * configuration (VRID configured, owner, address list, v2 interval) are the instance's.
 * Never throws.
 */
export function decodeAdvert(buf: Uint8Array, ip: ReceivedIpMeta): AdvertDecodeResult {
  const fail = (reason: PacketDropReason): AdvertDecodeResult => ({ ok: false, reason });
  if (!(buf instanceof Uint8Array) || !ip || typeof ip !== 'object') return fail('bad_ip_meta');
  const family = ip.family;
  if (family !== 4 && family !== 6) return fail('bad_ip_meta');
  const src = parseAddress(ip.src, family);
  const dst = parseAddress(ip.dst, family);
  if (!src || !dst) return fail('bad_ip_meta');
  if (buf.length < VRRP_HEADER_LEN) return fail('too_short');

  // MUST verify that the TTL / hop limit is 255 (RFC 5798 5.1.1.3, 5.1.2.3, 7.1).
  if (ip.ttl !== VRRP_IP_TTL) return fail('bad_ttl');

  // MUST verify the version (RFC 5798 7.1; RFC 3768 7.1). v2 exists for IPv4 only.
  const version = (buf[0] as number) >> 4;
  if (version !== VRRP_VERSION_2 && version !== VRRP_VERSION_3) return fail('bad_version');
  if (version === VRRP_VERSION_2 && family !== 4) return fail('bad_family');

  // MUST verify that the packet holds the complete message: exactly header, addresses and,
  // for v2, the authentication data. Trailing bytes are refused too: the checksum and the
  // pseudo-header length would not cover them.
  const count = buf[3] as number;
  if (buf.length !== advertLength(version, family, count)) return fail('bad_length');

  // MUST verify the checksum (RFC 5798 5.2.8; RFC 3768 5.3.8). Over IPv4 a v3 checksum may be
  // the RFC 5798 form (with pseudo-header) or the RFC 9568 form (message only): accept both.
  let checksumForm: ChecksumForm;
  if (version === VRRP_VERSION_2) {
    if (internetChecksum(buf) !== 0) return fail('bad_checksum');
    checksumForm = 'message_only';
  } else if (internetChecksum(pseudoHeaderBytes(family, src, dst, buf.length), buf) === 0) {
    checksumForm = 'pseudo_header';
  } else if (family === 4 && internetChecksum(buf) === 0) {
    checksumForm = 'message_only';
  } else {
    return fail('bad_checksum');
  }

  // A packet with unknown type MUST be discarded (RFC 5798 5.2.2; RFC 3768 5.3.2).
  if (((buf[0] as number) & 0x0f) !== VRRP_TYPE_ADVERTISEMENT) return fail('bad_type');
  const vrid = buf[1] as number;
  if (vrid < VRRP_VRID_MIN) return fail('bad_vrid');
  // "The minimum value is 1" (RFC 5798 5.2.5); a v2 advert without addresses is as meaningless.
  if (count < 1) return fail('bad_address_count');

  const priority = buf[2] as number;
  const addrLen = family === 4 ? 4 : 16;
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    const at = VRRP_HEADER_LEN + i * addrLen;
    addresses.push(family === 4 ? formatIPv4(buf, at) : formatIPv6(buf, at));
  }

  if (version === VRRP_VERSION_3) {
    // Reserved bits are ignored on reception (RFC 5798 5.2.6).
    const cs = (((buf[4] as number) << 8) | (buf[5] as number)) & VRRP_V3_ADVER_INT_MAX_CS;
    if (cs === 0) return fail('bad_interval');
    return {
      ok: true,
      checksumForm,
      value: { version: 3, family, vrid, priority, maxAdvertIntervalMs: cs * VRRP_V3_ADVER_INT_UNIT_MS, addresses },
    };
  }
  const seconds = buf[5] as number;
  if (seconds === 0) return fail('bad_interval');
  const authType = buf[4] as number;
  if (authType > VRRP_V2_AUTH_RESERVED_AH) return fail('bad_auth');
  // Authentication Data is ignored on reception (RFC 3768 5.3.10).
  return {
    ok: true,
    checksumForm,
    value: { version: 2, family: 4, vrid, priority, advertIntervalMs: seconds * VRRP_V2_ADVER_INT_UNIT_MS, addresses, authType },
  };
}

function pseudoHeaderBytes(family: 4 | 6, src: Uint8Array, dst: Uint8Array, length: number): Uint8Array {
  return family === 4 ? ipv4PseudoHeader(src, dst, IPPROTO_VRRP, length) : ipv6PseudoHeader(src, dst, IPPROTO_VRRP, length);
}

function pseudoHeader(family: 4 | 6, ip: IpEndpoints, length: number): Uint8Array {
  return pseudoHeaderBytes(family, parseAddress(ip.src, family) as Uint8Array, parseAddress(ip.dst, family) as Uint8Array, length);
}
