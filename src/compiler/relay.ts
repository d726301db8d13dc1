/**
 * The relay of issue 26 (BGP with sharing, `bgp.relay`): the router spreads flows over the
 * nodes by its own hash, which is not fwlb's, and changes it whenever a node comes or goes.
 * A node that receives from the router a packet to an announced address whose bucket another
 * node owns sends it on, once and unchanged, to that owner over the relay link: the owner
 * carries the flow as sharing does (its conntrack entry, its NAT, its sync), so a change of the
 * router's hash changes only which node a packet enters by, never which node carries it.
 *
 * Its own table, `netdev fwlb_relay`, replaced whole in one transaction whenever the owners
 * change: a netdev ingress chain on the outer link, before conntrack (the entering node keeps
 * no state of a relayed flow). The bucket is the one sharing computes (compiler/ruleset.ts):
 * jhash of the source address and port, mod buckets, the cluster's seed, offset 1, so the
 * owner files the relayed packet under the same bucket. The map holds the buckets of the
 * other nodes with their relay addresses; a bucket missing from it (ours, or nobody's) breaks
 * the rule and the packet goes on here. IPv4 TCP and UDP only for now (not fragments: no
 * ports before reassembly).
 */
import type { Config } from '../config/schema.js';
import type { NodeView } from '../config/node.js';
import { bgpAddresses } from '../config/bgp.js';
import { sharingOuter } from '../config/sharing.js';
import { defaultSeed } from '../fsm/sharing.js';
import { bareAddress } from '../lib/ip.js';

export const RELAY_TABLE = 'fwlb_relay';
/** Packets to announced addresses seen on the outer link (relayed or not). */
export const RELAY_SEEN_COUNTER = 'relay_seen';
/** Of those, the ones that went on here (their bucket ours, or nobody's): the rest were relayed. */
export const RELAY_LOCAL_COUNTER = 'relay_local';

/** The relay table for these owners (index = bucket), or '' without `bgp.relay`. */
export function compileRelay(c: Config, node: NodeView, owners: readonly (string | undefined)[]): string {
  const relay = c.bgp?.relay;
  const sh = c.sharing;
  if (!relay || !sh) return '';
  const outer = sharingOuter(c) ?? '';
  const outerIf = node.interfaces[outer] ?? outer;
  const relayIf = node.interfaces[relay] ?? relay;
  const next = new Map(node.peers.map((p) => [p.name, p.addresses[relay]]));
  const elements: string[] = [];
  owners.forEach((o, b) => {
    const to = o && o !== node.name ? next.get(o) : undefined;
    if (to) elements.push(`${b + 1} : ${bareAddress(to)}`);
  });
  const announced = bgpAddresses(c, 4);
  const seed = `0x${(sh.seed ?? defaultSeed(c.cluster.name)).toString(16).padStart(8, '0')}`;
  const lines = [
    `table netdev ${RELAY_TABLE}`,
    `delete table netdev ${RELAY_TABLE}`,
    `table netdev ${RELAY_TABLE} {`,
    `\tcounter ${RELAY_SEEN_COUNTER} {`,
    '\t}',
    `\tcounter ${RELAY_LOCAL_COUNTER} {`,
    '\t}',
    '\tmap owners4 {',
    `\t\ttypeof numgen inc mod ${sh.buckets} : ip daddr`,
    ...(elements.length ? [`\t\telements = { ${elements.join(', ')} }`] : []),
    '\t}',
    '\tset announced4 {',
    '\t\ttype ipv4_addr',
    ...(announced.length ? [`\t\telements = { ${announced.join(', ')} }`] : []),
    '\t}',
    '\tchain outer {',
    `\t\ttype filter hook ingress device "${outerIf}" priority -300; policy accept;`,
    `\t\tip daddr @announced4 meta l4proto { tcp, udp } counter name ${RELAY_SEEN_COUNTER} fwd ip to jhash ip saddr . th sport mod ${sh.buckets} seed ${seed} offset 1 map @owners4 device "${relayIf}" comment "another node's bucket: to its owner, once"`,
    `\t\tip daddr @announced4 meta l4proto { tcp, udp } counter name ${RELAY_LOCAL_COUNTER} comment "ours (or nobody's): on here"`,
    '\t}',
    '}',
    '',
  ];
  return lines.join('\n');
}
