/**
 * Checks of the config against the host a node runs on: its interfaces exist and
 * carry the node's addresses, every VIP lies in its interface's subnet, every
 * backend is reachable through an interface of the node other than the sync link.
 * Pure: the host's state is gathered by an adapter (adapters/host.ts) and passed in.
 */
import { bareAddress, addressValue, sameSubnet } from '../lib/ip.js';
import type { NodeView } from './node.js';
import type { Config } from './schema.js';
import type { ConfigIssue } from './issues.js';

export interface HostLink {
  up: boolean;
  /** "address/len", every address on the link. */
  addresses: string[];
}

export interface HostState {
  links: Record<string, HostLink>;
  /** Backend address -> the interface the kernel routes it through, or null when unroutable. */
  routes: Record<string, string | null>;
}

const bare = bareAddress;
const sameAddr = (a: string, b: string) => addressValue(a) === addressValue(b) && bare(a).includes(':') === bare(b).includes(':');

/** The backend addresses whose route the host adapter must look up. */
export function routedAddresses(c: Config): string[] {
  return [...new Set(Object.values(c.services).flatMap((s) => Object.values(s.backends).map((b) => b.address.address)))].sort();
}

export function hostCheck(c: Config, node: NodeView, host: HostState): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const vips = c.vrrp ? Object.values(c.vrrp.groups).flatMap((g) => Object.values(g.instances).flatMap((i) => i.addresses)) : [];
  const isVip = (a: string) => vips.some((v) => sameAddr(v, a));
  const ifaceAt = (role: string): (string | number)[] => (c.nodes[node.name]?.interfaces[role] ? ['nodes', node.name, 'interfaces', role] : ['interfaces', role]);

  for (const [role, ifname] of Object.entries(node.interfaces)) {
    const link = host.links[ifname];
    if (!link) {
      issues.push({ path: ifaceAt(role), message: `interface "${ifname}" does not exist on this host (node ${node.name})` });
      continue;
    }
    const mine = node.addresses[role];
    if (mine && !link.addresses.some((a) => sameAddr(a, mine))) {
      issues.push({
        path: ['nodes', node.name, 'addresses', role],
        message: `${mine} is not configured on ${ifname} (it has: ${link.addresses.join(', ') || 'no address'})`,
      });
    }
  }

  // A VIP must fall in the subnet of one of its interface's own (non-VIP) addresses.
  if (c.vrrp) {
    for (const [g, group] of Object.entries(c.vrrp.groups)) {
      for (const [iname, inst] of Object.entries(group.instances)) {
        const link = host.links[node.interfaces[inst.interface] ?? ''];
        if (!link) continue;
        const own = link.addresses.filter((a) => !isVip(a));
        inst.addresses.forEach((vip, k) => {
          if (!own.some((a) => sameSubnet(a, vip))) {
            issues.push({
              path: ['vrrp', 'groups', g, 'instances', iname, 'addresses', k],
              message: `${vip} is outside the subnet of ${node.interfaces[inst.interface]} (${own.join(', ') || 'no address'})`,
            });
          }
        });
      }
    }
  }

  // Backends: routed through an interface fwlb manages, never the sync link.
  const usable = new Set(Object.entries(node.interfaces).filter(([role]) => role !== c.state_sync?.interface).map(([, n]) => n));
  for (const [s, svc] of Object.entries(c.services)) {
    for (const [b, be] of Object.entries(svc.backends)) {
      const dev = host.routes[be.address.address];
      if (dev === undefined) continue;
      if (dev === null || !usable.has(dev)) {
        issues.push({
          path: ['services', s, 'backends', b, 'address'],
          message: `${be.address.address} is not reachable from any inside interface of ${node.name} (${dev === null ? 'no route' : `routed via ${dev}`})`,
        });
      }
    }
  }
  return issues;
}
