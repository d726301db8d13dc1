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
import { sharedByFamily } from '../config/sharing.js';

export const SHARING_ARP_TABLE = 'fwlb_share';

export function compileSharingArp(c: Config, node: NodeView): string {
  if (!c.sharing) return '';
  const macs = sharedMacs(c);
  const rules: string[] = [];
  // IPv4 only (IPv6: compiler/sharing-nd.ts).
  for (const [role, addrs] of Object.entries(sharedByFamily(c, 4)).sort(([a], [b]) => a.localeCompare(b))) {
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
