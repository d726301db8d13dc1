/**
 * Reads a raw IPv4 datagram as a Linux raw IPv4 socket delivers it (header included, fields
 * in network order), so the VRRP decoder gets the TTL, source and destination it must check.
 * IPv6 raw sockets deliver no header (hop limit and addresses come from ancillary data), so
 * there is no IPv6 counterpart. Never throws, whatever the bytes.
 *
 *   0       4       8               16      19                      32
 *   |Version|  IHL  |Type of Service|          Total Length         |   RFC 791 3.1
 *   |         Identification        |Flags|     Fragment Offset     |
 *   |  Time to Live |    Protocol   |         Header Checksum       |
 *   |                       Source Address                          |
 *   |                    Destination Address                        |
 *   |                    Options (IHL > 5) ...                      |
 */
import { internetChecksum } from '../../lib/checksum.js';
import { formatIPv4 } from '../../lib/ip-bytes.js';
import { IPPROTO_VRRP } from './constants.js';
import type { Ipv4DropReason, PacketDropReason } from './drop.js';
import { decodeAdvert, type ChecksumForm, type VrrpAdvert } from './packet.js';

export interface Ipv4Packet {
  /** Header length in bytes (IHL * 4, 20..60). */
  headerLength: number;
  tos: number;
  /** Total length from the header; bytes after it (link-layer padding) are not in `payload`. */
  totalLength: number;
  id: number;
  ttl: number;
  protocol: number;
  src: string;
  dst: string;
  /** The bytes after the header, up to the total length (a view into the input, no copy). */
  payload: Uint8Array;
}

export type Ipv4DecodeResult = { ok: true; value: Ipv4Packet } | { ok: false; reason: Ipv4DropReason };

const IPV4_MIN_HEADER = 20;

/** Parses and checks an IPv4 header (RFC 791 3.1). Options are skipped, not interpreted. */
export function decodeIPv4Packet(buf: Uint8Array): Ipv4DecodeResult {
  const fail = (reason: Ipv4DropReason): Ipv4DecodeResult => ({ ok: false, reason });
  if (!(buf instanceof Uint8Array) || buf.length < IPV4_MIN_HEADER) return fail('too_short');
  const b = (i: number) => buf[i] as number;
  if (b(0) >> 4 !== 4) return fail('bad_ip_version');
  const headerLength = (b(0) & 0x0f) * 4;
  if (headerLength < IPV4_MIN_HEADER || headerLength > buf.length) return fail('bad_ip_header_length');
  const totalLength = (b(2) << 8) | b(3);
  if (totalLength < headerLength || totalLength > buf.length) return fail('bad_ip_total_length');
  if (internetChecksum(buf.subarray(0, headerLength)) !== 0) return fail('bad_ip_checksum');
  // More-fragments flag or a non-zero offset: a piece of a datagram, never an advertisement.
  const flagsFrag = (b(6) << 8) | b(7);
  if ((flagsFrag & 0x2000) !== 0 || (flagsFrag & 0x1fff) !== 0) return fail('ip_fragment');
  return {
    ok: true,
    value: {
      headerLength,
      tos: b(1),
      totalLength,
      id: (b(4) << 8) | b(5),
      ttl: b(8),
      protocol: b(9),
      src: formatIPv4(buf, 12),
      dst: formatIPv4(buf, 16),
      payload: buf.subarray(headerLength, totalLength),
    },
  };
}

export type Ipv4AdvertDecodeResult =
  | { ok: true; value: VrrpAdvert; checksumForm: ChecksumForm; ip: Ipv4Packet }
  | { ok: false; reason: Ipv4DropReason | PacketDropReason };

/** A raw IPv4 datagram to a VRRP advertisement: IP header checks, protocol 112, then `decodeAdvert`. */
export function decodeIPv4Advert(buf: Uint8Array): Ipv4AdvertDecodeResult {
  const ip = decodeIPv4Packet(buf);
  if (!ip.ok) return ip;
  if (ip.value.protocol !== IPPROTO_VRRP) return { ok: false, reason: 'bad_protocol' };
  const adv = decodeAdvert(ip.value.payload, { src: ip.value.src, dst: ip.value.dst, ttl: ip.value.ttl, family: 4 });
  if (!adv.ok) return adv;
  return { ok: true, value: adv.value, checksumForm: adv.checksumForm, ip: ip.value };
}
