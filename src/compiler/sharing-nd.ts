/**
 * Sharing over IPv6 (issue 22): neighbour discovery answered with the shared MAC, as ARP is
 * (compiler/sharing-arp.ts). Each node holds the shared IPv6 addresses as its own, so its
 * kernel answers neighbour solicitations for them, with the interface's own MAC in the
 * target link-layer address option of the advertisement. The table `ip6 fwlb_share6` puts
 * the shared MAC there, and in the source link-layer option of a solicitation the kernel
 * sends from a shared address, updating the ICMPv6 checksum: nft(8) cannot say that (its
 * raw payload writes update no checksum), so the table goes to the kernel over netlink
 * (codec/netlink/nft-batch.ts), replaced whole like the ARP table.
 *
 * Where the options are (RFC 4861 4.3, 4.4): an NS or NA is 24 bytes (type, code, checksum,
 * 4 bytes of flags or reserved, the 16-byte target) and its options follow; Linux writes the
 * link-layer option first, type 1 (source) or 2 (target), length 1 (8 bytes), then the MAC.
 * A rule matches the option's type and length before it writes, so a message laid out any
 * other way is left alone.
 */
import type { Config } from '../config/schema.js';
import type { NodeView } from '../config/node.js';
import type { NftExpr, NftTableSpec } from '../codec/netlink/nft-batch.js';
import { ifnameBytes } from '../codec/netlink/nft-batch.js';
import { sharedByFamily } from '../config/sharing.js';
import { parseIPv6, parseMac } from '../lib/ip-bytes.js';
import { sharedMacs } from './ruleset.js';

export const SHARING_ND_TABLE = 'fwlb_share6';

const ICMPV6 = 58;
const ND_SOLICIT = 135;
const ND_ADVERT = 136;
/** Option type and length (in units of 8 bytes) of a source / target link-layer address option on Ethernet. */
const SLLA = Buffer.of(1, 1);
const TLLA = Buffer.of(2, 1);
const OPTIONS_AT = 24;

/** The shared IPv6 addresses per interface role, without their prefix length, sorted. */
export const sharedIPv6 = (c: Config): Record<string, string[]> => sharedByFamily(c, 6);

/** The table, or undefined when no shared address is IPv6. */
export function compileSharingNd(c: Config, node: NodeView): NftTableSpec | undefined {
  const v6 = sharedIPv6(c);
  if (!Object.keys(v6).length) return undefined;
  const macs = sharedMacs(c);
  const rules: NftTableSpec['rules'] = [];
  for (const role of Object.keys(v6).sort()) {
    const ifname = ifnameBytes(node.interfaces[role] ?? role);
    const mac = Buffer.from(parseMac(macs[role]!)!);
    for (const a of v6[role]!) {
      const addr = Buffer.from(parseIPv6(a)!);
      const head = (type: number): NftExpr[] => [
        { kind: 'meta', key: 'l4proto' },
        { kind: 'cmp', data: Buffer.of(ICMPV6) },
        { kind: 'payload', base: 'transport', offset: 0, len: 1 },
        { kind: 'cmp', data: Buffer.of(type) },
        { kind: 'meta', key: 'oifname' },
        { kind: 'cmp', data: ifname },
      ];
      const write = (option: Buffer): NftExpr[] => [
        { kind: 'payload', base: 'transport', offset: OPTIONS_AT, len: 2 },
        { kind: 'cmp', data: option },
        { kind: 'immediate', data: mac },
        { kind: 'payload_set', base: 'transport', offset: OPTIONS_AT + 2, len: 6, csumOffset: 2 },
      ];
      rules.push({
        exprs: [...head(ND_ADVERT), { kind: 'payload', base: 'transport', offset: 8, len: 16 }, { kind: 'cmp', data: addr }, ...write(TLLA)],
        comment: `advertisements for ${a} carry the shared MAC ${macs[role]} (checksum updated)`,
      });
      rules.push({
        exprs: [...head(ND_SOLICIT), { kind: 'payload', base: 'network', offset: 8, len: 16 }, { kind: 'cmp', data: addr }, ...write(SLLA)],
        comment: `solicitations from ${a} carry the shared MAC ${macs[role]} (checksum updated)`,
      });
    }
  }
  return { family: 'ip6', name: SHARING_ND_TABLE, chain: { name: 'output', hook: 'output', priority: 0 }, rules };
}
