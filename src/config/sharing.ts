/** What the rest of fwlb derives from the `sharing:` section (issue 14). */
import type { Config } from './schema.js';
import { ipFamily } from '../lib/ip.js';

/** The shared addresses of one family per interface role, without their prefix length, sorted (roles without any left out). */
export function sharedByFamily(c: Config, family: 4 | 6): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [role, list] of Object.entries(c.sharing?.addresses ?? {})) {
    const addrs = list.map((a) => a.split('/')[0]!).filter((a) => ipFamily(a) === family).sort();
    if (addrs.length) out[role] = addrs;
  }
  return out;
}

/**
 * The role whose far endpoint keys the flow hash (config `sharing.outer`, or derived; see the
 * schema). Undefined when it cannot be told: the cross-check asks for it then.
 */
export function sharingOuter(c: Config): string | undefined {
  const sh = c.sharing;
  if (!sh) return undefined;
  if (sh.outer) return sh.outer;
  const outs = [...new Set(c.firewall.nat.map((n) => n.out))];
  if (outs.length === 1) return outs[0];
  const listen = new Set(Object.values(c.services).map((s) => s.listen.address));
  const roles = Object.entries(sh.addresses).filter(([, list]) => list.some((a) => listen.has(a.split('/')[0] ?? ''))).map(([r]) => r);
  if (roles.length === 1) return roles[0];
  const all = Object.keys(sh.addresses);
  return all.length === 1 ? all[0] : undefined;
}
