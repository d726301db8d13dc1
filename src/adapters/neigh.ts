/**
 * The neighbour probe interval of an interface (net.ipv4.neigh.IFNAME.retrans_time_ms, and
 * net.ipv6.neigh.IFNAME.retrans_time_ms for neighbour discovery: the same trap over IPv6), in
 * this network namespace. A packet forwarded in the moment a link loses its carrier leaves
 * its neighbour entry INCOMPLETE with its probe lost; the kernel probes again only after
 * retrans_time (1 s by default), and every packet to that neighbour waits in its queue
 * meanwhile, after the link is back: a 0.5-1 s stall of every flow to it (issue 20). The node
 * shortens it on its shared links and its VRRP links. And the relay link's reverse-path
 * filter (below).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';

/** Sets it to `ms` where it is longer, for both families; a failure is logged, never fatal. */
export function setNeighRetrans(ifname: string, ms: number, log: Logger): void {
  for (const [family, what] of [['ipv4', 'ARP probes'], ['ipv6', 'Neighbour solicitations']] as const) {
    const path = `/proc/sys/net/${family}/neigh/${ifname}/retrans_time_ms`;
    try {
      const was = readFileSync(path, 'utf8').trim();
      if (Number(was) <= ms) continue;
      writeFileSync(path, String(ms));
      log.info({ event: 'neigh_retrans', ifname, family, ms, was: Number(was) }, `${what} on ${ifname} repeated after ${ms} ms (was ${was} ms), so a neighbour left unresolved by a carrier loss is resolved at once when it is back`);
    } catch (e) {
      // No IPv6 on the interface (disabled): nothing to set there.
      if (family === 'ipv6' && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      log.warn({ event: 'neigh_retrans_failed', ifname, family, err: (e as Error).message }, `cannot set ${path}: a neighbour left unresolved by a carrier loss may stall its flows for up to the kernel's probe interval`);
    }
  }
}

/**
 * Loose reverse-path filtering on the BGP relay link (issue 26): a relayed packet arrives
 * there from a client whose route is by the outer link, and strict filtering (1) drops it.
 * The kernel applies the larger of `all` and the interface's value, so loose (2) on the
 * interface wins over a strict `all`; 0 (off) is left alone.
 */
export function setLooseRpFilter(ifname: string, log: Logger): void {
  const path = `/proc/sys/net/ipv4/conf/${ifname}/rp_filter`;
  try {
    const all = Number(readFileSync('/proc/sys/net/ipv4/conf/all/rp_filter', 'utf8').trim());
    const was = Number(readFileSync(path, 'utf8').trim());
    if (Math.max(all, was) !== 1) return;
    writeFileSync(path, '2');
    log.info({ event: 'rp_filter_loose', ifname, was, all }, `reverse-path filtering on ${ifname} made loose (was strict): the packets relayed to this node come from clients routed by another link`);
  } catch (e) {
    log.warn({ event: 'rp_filter_failed', ifname, err: (e as Error).message }, `cannot set ${path}: with strict reverse-path filtering the relayed packets are dropped`);
  }
}
