/**
 * Gratuitous ARP (RFC 5227 section 3; RFC 5798 section 6.4.2 asks a new master to send one
 * per virtual address): an ARP request for the address, sent by its new owner to the
 * broadcast address, so that hosts and switches learn the new MAC at once.
 *
 * Ethernet II (dst, src, type 0x0806) + ARP (RFC 826):
 *   htype 1 (Ethernet), ptype 0x0800 (IPv4), hlen 6, plen 4, oper 1 (request),
 *   sender MAC, sender IP = the address, target MAC 0, target IP = the address.
 */
import { formatIPv4, formatMac, parseIPv4, parseMac } from '../../lib/ip-bytes.js';

export const ETHERTYPE_ARP = 0x0806; /* RFC 826 / IEEE registry */
export const ARP_HTYPE_ETHERNET = 1; /* RFC 826 */
export const ARP_PTYPE_IPV4 = 0x0800;
export const ARP_OP_REQUEST = 1; /* RFC 826 */
export const ARP_OP_REPLY = 2;
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';

/** The whole Ethernet frame of a gratuitous ARP request for `address` from `mac`. */
export function gratuitousArp(mac: string, address: string): Buffer {
  const src = parseMac(mac);
  const ip = parseIPv4(address);
  if (src?.length !== 6 || !ip) throw new TypeError(`gratuitousArp: bad MAC ${mac} or address ${address}`);
  const f = Buffer.alloc(42);
  f.set(parseMac(BROADCAST_MAC)!, 0);
  f.set(src, 6);
  f.writeUInt16BE(ETHERTYPE_ARP, 12);
  f.writeUInt16BE(ARP_HTYPE_ETHERNET, 14);
  f.writeUInt16BE(ARP_PTYPE_IPV4, 16);
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(ARP_OP_REQUEST, 20);
  f.set(src, 22);
  f.set(ip, 28);
  // target hardware address stays zero
  f.set(ip, 38);
  return f;
}

export interface ArpPacket {
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

/** Decodes an ARP packet (after the Ethernet header); never throws. */
export function decodeArp(b: Uint8Array): { ok: true; value: ArpPacket } | { ok: false; reason: 'too_short' | 'not_ethernet_ipv4' } {
  if (b.length < 28) return { ok: false, reason: 'too_short' };
  const u16 = (i: number) => ((b[i] as number) << 8) | (b[i + 1] as number);
  if (u16(0) !== ARP_HTYPE_ETHERNET || u16(2) !== ARP_PTYPE_IPV4 || b[4] !== 6 || b[5] !== 4) return { ok: false, reason: 'not_ethernet_ipv4' };
  const mac = (o: number) => formatMac(b.subarray(o, o + 6));
  const ip = (o: number) => formatIPv4(b, o);
  return { ok: true, value: { op: u16(6), senderMac: mac(8), senderIp: ip(14), targetMac: mac(18), targetIp: ip(24) } };
}
