/**
 * BIRD's part of a node's config (issue 26): the routes the node announces by BGP, as BIRD 2
 * static protocols, `fwlb4` and `fwlb6`, in the file BIRD's own config includes. Pure: the
 * announcement in, the file's text out.
 *
 * Every route is a host route (/32, /128) through the TUN device the daemon holds open, with
 * `check link`: BIRD withdraws a route whose device is down or gone, so the device is the
 * node's kill switch: down when the node is not ready, gone when the daemon dies, however it
 * dies (nothing to clean up, nothing announced by a dead node). Tried on BIRD 2.0.12: the
 * router's kernel lost the routes 2 ms after a kill -9 of the device's holder.
 * BGP announces a route through a device with the node's own session address as next hop,
 * so the same file serves every neighbour, eBGP or iBGP, IPv4 and IPv6.
 */
import { bareAddress, parsePrefix, prefixText } from '../lib/ip.js';

/** RFC 8326: the routes of a node about to go; a receiver lowers their preference (LOCAL_PREF 0). */
export const GRACEFUL_SHUTDOWN: readonly [number, number] = [65535, 0];

/** The protocols' names: an operator's BGP export filter takes them with `proto ~ "fwlb*"`. */
export const BIRD_PROTOCOLS = { 4: 'fwlb4', 6: 'fwlb6' } as const;

export interface BirdAnnouncement {
  node: string;
  /** The TUN device the routes point through. */
  device: string;
  /** The addresses announced as host routes, any order (duplicates are one). */
  addresses: readonly string[];
  /** BGP communities every route carries. */
  communities: readonly (readonly [number, number])[];
  /** Every route also carries GRACEFUL_SHUTDOWN: the node is draining before it withdraws. */
  gracefulShutdown: boolean;
}

/** The host routes of the addresses, IPv4 then IPv6, each family in numeric order, once each. */
export function hostRoutes(addresses: readonly string[]): { 4: string[]; 6: string[] } {
  const seen = new Map<string, { family: 4 | 6; net: bigint }>();
  for (const a of addresses) {
    const p = parsePrefix(bareAddress(a));
    if (p) seen.set(`${prefixText(p)}/${p.family === 4 ? 32 : 128}`, { family: p.family, net: p.net });
  }
  const sorted = [...seen].sort(([, x], [, y]) => x.family - y.family || (x.net < y.net ? -1 : x.net > y.net ? 1 : 0));
  return { 4: sorted.filter(([, v]) => v.family === 4).map(([k]) => k), 6: sorted.filter(([, v]) => v.family === 6).map(([k]) => k) };
}

export function compileBirdAnnouncement(a: BirdAnnouncement): string {
  const communities = [...a.communities, ...(a.gracefulShutdown ? [GRACEFUL_SHUTDOWN] : [])];
  const attrs = communities.length ? ` { ${communities.map(([x, y]) => `bgp_community.add((${x},${y}));`).join(' ')} }` : '';
  const routes = hostRoutes(a.addresses);
  const out = [
    `# Written by fwlb for node ${a.node}: the routes it announces${a.gracefulShutdown ? ', tagged GRACEFUL_SHUTDOWN: it is draining' : ''}.`,
    '# fwlb rewrites this file and reconfigures BIRD; edits are lost. Export with: export where proto ~ "fwlb*";',
  ];
  for (const family of [4, 6] as const) {
    out.push(`protocol static ${BIRD_PROTOCOLS[family]} {`, `\tipv${family};`, '\tcheck link;');
    for (const r of routes[family]) out.push(`\troute ${r} via "${a.device}"${attrs};`);
    out.push('}');
  }
  return out.join('\n') + '\n';
}
