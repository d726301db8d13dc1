/** What the rest of fwlb derives from the `bgp:` section (issue 26). */
import type { Config } from './schema.js';
import { ipFamily } from '../lib/ip.js';

/** Every address a node may announce (each service's, then `bgp.addresses`), once each, of one family or both. */
export function bgpAddresses(c: Config, family?: 4 | 6): string[] {
  if (!c.bgp) return [];
  const all = [...new Set([...Object.values(c.services).map((s) => s.listen.address), ...c.bgp.addresses])];
  return family ? all.filter((a) => ipFamily(a) === family) : all;
}
