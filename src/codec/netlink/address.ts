/**
 * Address text <-> bytes for the netlink codecs: IPv4/IPv6 addresses as the kernel carries
 * them in IFA_ADDRESS / IFA_LOCAL (network order, 4 or 16 bytes), "addr/len" prefixes as the
 * caller writes them, and link-layer addresses (IFLA_ADDRESS) as "aa:bb:cc:dd:ee:ff".
 * Pure; parsers return undefined for input they cannot read, formatters never throw.
 *
 * The text <-> bytes conversions themselves are src/lib/ip-bytes.ts, shared with the
 * other codecs.
 */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../lib/ip-bytes.js';
export { formatMac, parseMac } from '../../lib/ip-bytes.js';

export type IpFamily = 4 | 6;

/** AF_INET and AF_INET6 (linux/socket.h) <-> 4 and 6. */
export const AF_UNSPEC = 0; // linux/socket.h
export const AF_INET = 2; // linux/socket.h
export const AF_INET6 = 10; // linux/socket.h

export function afOf(family: IpFamily): number {
  return family === 4 ? AF_INET : AF_INET6;
}

export function familyOfAf(af: number): IpFamily | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

/** Address text of either family -> bytes and family. */
export function parseIp(text: string): { family: IpFamily; bytes: Buffer } | undefined {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: Buffer.from(v4) };
  const v6 = parseIPv6(text);
  if (v6) return { family: 6, bytes: Buffer.from(v6) };
  return undefined;
}

/** A prefix as written by a caller: "198.18.0.1/24", "2001:db8::1/64"; no length = host route. */
export interface Cidr {
  family: IpFamily;
  /** The address with its host bits kept (a VIP, not a network). */
  bytes: Buffer;
  prefixLen: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const parts = text.split('/');
  if (parts.length > 2) return undefined;
  const ip = parseIp(parts[0] ?? '');
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  let prefixLen = max;
  if (parts.length === 2) {
    const t = parts[1] ?? '';
    if (!/^(0|[1-9]\d{0,2})$/.test(t)) return undefined;
    prefixLen = Number(t);
    if (prefixLen > max) return undefined;
  }
  return { family: ip.family, bytes: ip.bytes, prefixLen };
}

/** Bytes of a known family -> text, or undefined when the length does not fit the family. */
export function formatIp(family: IpFamily, b: Uint8Array): string | undefined {
  if (family === 4 && b.length === 4) return formatIPv4(b);
  if (family === 6 && b.length === 16) return formatIPv6(b);
  return undefined;
}
