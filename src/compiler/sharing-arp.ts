/**
 * Sharing (issue 14): the shared addresses answer ARP with their interface's shared
 * multicast MAC, so that a switch floods the frames sent to them to every node. Each node
 * holds the shared addresses as its own (the kernel answers ARP for them, ping works) and
 * this table rewrites the sender hardware address of every ARP packet that speaks for a
 * shared address (replies, and any request the kernel sends from one), leaving the frame's
 * own Ethernet source alone (a multicast source MAC is invalid). Its own table, `arp
 * fwlb_share`, replaced whole in one transaction like `inet fwlb`.
 */
import type { Config } from '../config/schema.js';
import type { NodeView } from '../config/node.js';
import { sharedMacs } from './ruleset.js';
import { ipFamily } from '../lib/ip.js';

export const SHARING_ARP_TABLE = 'fwlb_share';

export function compileSharingArp(c: Config, node: NodeView): string {
  if (!c.sharing) return '';
  const macs = sharedMacs(c);
  const rules: string[] = [];
  for (const role of Object.keys(c.sharing.addresses).sort()) {
    const addrs = c.sharing.addresses[role]!.map((a) => a.split('/')[0]!).filter((a) => ipFamily(a) === 4).sort();
    if (!addrs.length) continue; // IPv6 only: compiler/sharing-nd.ts
    const ifname = node.interfaces[role] ?? role;
    const set = addrs.length === 1 ? addrs[0]! : `{ ${addrs.join(', ')} }`;
    rules.push(`\t\toifname "${ifname}" arp saddr ip ${set} arp saddr ether set ${macs[role]} comment "shared addresses answer with the shared MAC"`);
  }
  return [
    `table arp ${SHARING_ARP_TABLE}`,
    `delete table arp ${SHARING_ARP_TABLE}`,
    `table arp ${SHARING_ARP_TABLE} {`,
    '\tchain output {',
    '\t\ttype filter hook output priority filter; policy accept;',
    ...rules,
    '\t}',
    '}',
    '',
  ].join('\n');
}
