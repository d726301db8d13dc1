/**
 * Address text <-> bytes for the netlink codecs: IPv4/IPv6 addresses as the kernel carries
 * them in IFA_ADDRESS / IFA_LOCAL (network order, 4 or 16 bytes), "addr/len" prefixes as the
 * caller writes them, and link-layer addresses (IFLA_ADDRESS) as "aa:bb:cc:dd:ee:ff".
 * Pure; parsers return undefined for input they cannot read, formatters never throw.
 *
 * (src/codec/vrrp/address.ts has a sibling of the IP part; both could move to src/lib.)
 */

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

/** "192.0.2.1" -> 4 bytes; dotted quad only, no leading zeros. */
export function parseIPv4(text: string): Buffer | undefined {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(text);
  if (!m) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const n = Number(m[i + 1]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** IPv6 text (RFC 4291 2.2, with "::" and an optional trailing dotted quad) -> 16 bytes. */
export function parseIPv6(text: string): Buffer | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string, last: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i] ?? '';
      if (last && i === items.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (!v4) return undefined;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        out.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const compressed = halves.length === 2;
  const head = groups(halves[0] ?? '', !compressed);
  const tail = compressed ? groups(halves[1] ?? '', true) : [];
  if (!head || !tail) return undefined;
  const gap = 8 - head.length - tail.length;
  if (compressed ? gap < 1 : gap !== 0) return undefined;
  const all = [...head, ...new Array<number>(compressed ? gap : 0).fill(0), ...tail];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Address text of either family -> bytes and family. */
export function parseIp(text: string): { family: IpFamily; bytes: Buffer } | undefined {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  if (v6) return { family: 6, bytes: v6 };
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

/** 4 bytes -> "a.b.c.d". */
export function formatIPv4(b: Uint8Array): string {
  return `${b[0] ?? 0}.${b[1] ?? 0}.${b[2] ?? 0}.${b[3] ?? 0}`;
}

/** 16 bytes -> RFC 5952 text: lower case, no leading zeros, the longest run of 2+ zero groups as "::". */
export function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[i * 2] ?? 0) << 8) | (b[i * 2 + 1] ?? 0));
  // IPv4-mapped (::ffff:a.b.c.d) keeps its dotted quad (RFC 5952 5).
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(b.subarray(12, 16))}`;
  }
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed (RFC 5952 4.2.2)
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Bytes of a known family -> text, or undefined when the length does not fit the family. */
export function formatIp(family: IpFamily, b: Uint8Array): string | undefined {
  if (family === 4 && b.length === 4) return formatIPv4(b);
  if (family === 6 && b.length === 16) return formatIPv6(b);
  return undefined;
}

/** A link-layer address -> "aa:bb:cc:dd:ee:ff" (any length; "" for none). */
export function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** "aa:bb:cc:dd:ee:ff" (1..32 octets) -> bytes. */
export function parseMac(text: string): Buffer | undefined {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){0,31}$/.test(text)) return undefined;
  return Buffer.from(text.split(':').map((x) => parseInt(x, 16)));
}
