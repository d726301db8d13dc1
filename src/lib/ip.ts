/** IP addresses and prefixes as text: family, parsing, containment and overlap (bigint arithmetic). */
import { isIPv4, isIPv6 } from 'node:net';

/** An IP address or prefix as a family and a big integer, for containment and overlap tests. */
export interface Prefix {
  family: 4 | 6;
  /** Network address (host bits cleared) as an integer. */
  net: bigint;
  len: number;
  /** The text as written (address part). */
  text: string;
}

function v4ToBig(a: string): bigint {
  return a.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function v6ToBig(a: string): bigint {
  // Expand an embedded dotted quad, then the '::'.
  let s = a;
  const dq = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dq?.[1]) {
    const n = v4ToBig(dq[1]);
    s = s.slice(0, -dq[1].length) + ((n >> 16n) & 0xffffn).toString(16) + ':' + (n & 0xffffn).toString(16);
  }
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function ipFamily(a: string): 4 | 6 | 0 {
  return isIPv4(a) ? 4 : isIPv6(a) ? 6 : 0;
}

/** An IPv6 link-local address (fe80::/10), with or without a prefix length. */
export function isLinkLocal(a: string): boolean {
  return /^fe[89ab]/i.test(a);
}

/** Parses "a.b.c.d", "a.b.c.d/n" or the IPv6 equivalents; undefined if not valid. */
export function parsePrefix(s: string): Prefix | undefined {
  const [addr = '', lenText, extra] = s.split('/');
  if (extra !== undefined) return undefined;
  const family = ipFamily(addr);
  if (family === 0) return undefined;
  const bits = family === 4 ? 32 : 128;
  let len = bits;
  if (lenText !== undefined) {
    if (!/^\d{1,3}$/.test(lenText)) return undefined;
    len = Number(lenText);
    if (len > bits) return undefined;
  }
  const value = family === 4 ? v4ToBig(addr) : v6ToBig(addr);
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - len)) - 1n);
  return { family, net: value & mask, len, text: addr };
}

/** The address part of "addr/len" as an integer, host bits kept. */
export function addressValue(s: string): bigint | undefined {
  const addr = s.split('/')[0] ?? '';
  const f = ipFamily(addr);
  return f === 4 ? v4ToBig(addr) : f === 6 ? v6ToBig(addr) : undefined;
}

/** True when `inner` (an address or prefix) lies inside prefix `outer`. */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || inner.len < outer.len) return false;
  const bits = outer.family === 4 ? 32 : 128;
  const shift = BigInt(bits - outer.len);
  return inner.net >> shift === outer.net >> shift;
}

/** True when the address `addr` (host bits kept) lies in the subnet of `ifaceAddr` ("a/n"). */
export function sameSubnet(ifaceAddr: string, addr: string): boolean {
  const subnet = parsePrefix(ifaceAddr);
  const value = addressValue(addr);
  if (!subnet || value === undefined) return false;
  const fam = ipFamily(addr.split('/')[0] ?? '');
  if (fam !== subnet.family) return false;
  const bits = subnet.family === 4 ? 32 : 128;
  const shift = BigInt(bits - subnet.len);
  return value >> shift === subnet.net >> shift;
}

/** Canonical text of a prefix as nft prints it: "net/len", or the bare address for a host. */
export function prefixText(p: Prefix): string {
  const bits = p.family === 4 ? 32 : 128;
  const addr = p.family === 4 ? bigToV4(p.net) : bigToV6(p.net);
  return p.len === bits ? addr : `${addr}/${p.len}`;
}

export function bigToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
}

export function bigToV6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * "198.18.1.13:80", "198.18.1.13", "[2001:db8::1]:80", "2001:db8::1" -> the address and
 * the port if given; undefined for anything else (zone ids and host names included).
 */
export function parseAddressPort(s: string): { address: string; port?: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)|([0-9a-fA-F:]+))(?::(\d{1,5}))?$/.exec(s);
  const address = m?.[1] ?? m?.[2] ?? m?.[3];
  if (!m || !address || ipFamily(address) === 0 || (m[3] && m[4])) return undefined;
  if (m[4] === undefined) return { address };
  const port = Number(m[4]);
  return port >= 1 && port <= 65535 ? { address, port } : undefined;
}

/** The address of "address/len" (or the address itself). */
export function bareAddress(a: string): string {
  return a.split('/')[0] ?? a;
}
