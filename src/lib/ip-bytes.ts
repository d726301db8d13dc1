/**
 * IP address text <-> network-order bytes, for every codec (VRRP, netlink, ARP) and the
 * VRRP election tie-break (RFC 5798 6.4.3 compares primary addresses "as unsigned integers
 * in network byte order"). Pure; every function returns undefined for input it cannot read,
 * never throws. (Prefix arithmetic on text lives in ip.ts.)
 */

/** Parses dotted-quad IPv4 ("192.0.2.1"); no leading zeros, no prefix length. */
export function parseIPv4(text: unknown): Uint8Array | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(text);
  if (!m) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const n = Number(m[i + 1]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/**
 * Parses IPv6 text (RFC 4291 2.2: full, "::"-compressed, or with a trailing dotted quad).
 * A zone suffix ("fe80::1%eth0") is accepted and ignored: the adapter may report link-local
 * sources that way, and the zone is not part of the address bytes.
 */
export function parseIPv6(text: unknown): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length > 64) return undefined;
  const s = text.split('%')[0] ?? '';
  if (s.length === 0) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const words = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const groups = part.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] as string;
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (!v4) return undefined;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = words(halves[0] as string);
  const tail = halves.length === 2 ? words(halves[1] as string) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const gap = 8 - head.length - tail.length;
    if (gap < 1) return undefined; // "::" stands for at least one zero group
    all = [...head, ...new Array<number>(gap).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** Parses an address of the given family, or of either family when none is given. */
export function parseAddress(text: unknown, family?: 4 | 6): Uint8Array | undefined {
  if (family === 4) return parseIPv4(text);
  if (family === 6) return parseIPv6(text);
  return parseIPv4(text) ?? parseIPv6(text);
}

/** "a.b.c.d" from 4 bytes at `offset`. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** Canonical IPv6 text (RFC 5952 section 4: lowercase, no leading zeros, longest zero run as "::"). */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(((bytes[offset + 2 * i] as number) << 8) | (bytes[offset + 2 * i + 1] as number));
  // IPv4-mapped (::ffff:a.b.c.d) keeps its dotted quad (RFC 5952 section 5).
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  // Longest run of two or more zero groups; the first one on a tie (RFC 5952 4.2.3).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

/** Canonical text of an address, or undefined when it does not parse. Strips a "/len" suffix. */
export function canonicalAddress(text: string): string | undefined {
  const addr = text.split('/')[0] ?? '';
  const v4 = parseIPv4(addr);
  if (v4) return formatIPv4(v4);
  const v6 = parseIPv6(addr);
  return v6 ? formatIPv6(v6) : undefined;
}

/**
 * Compares two addresses as unsigned integers in network byte order (RFC 5798 6.4.3):
 * negative when a < b, positive when a > b, 0 when equal. Addresses that do not parse sort
 * lowest, so garbage never wins an election tie.
 */
export function compareAddresses(a: string, b: string): number {
  const x = parseAddress(a);
  const y = parseAddress(b);
  if (!x || !y) return (x ? 1 : 0) - (y ? 1 : 0);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) {
    const d = (x[i] as number) - (y[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

/** A link-layer address -> "aa:bb:cc:dd:ee:ff" (any length; "" for none). */
export function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** "aa:bb:cc:dd:ee:ff" (1..32 octets) -> bytes. */
export function parseMac(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){0,31}$/.test(text)) return undefined;
  return Uint8Array.from(text.split(':').map((x) => parseInt(x, 16)));
}
