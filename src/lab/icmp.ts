/**
 * PURE: ICMP echo (RFC 792) as the lab's ping tool needs it: build a request, recognise
 * the matching reply inside a raw IPv4 datagram.
 */

export const ICMP_ECHO_REPLY = 0; /* rfc792 "Echo or Echo Reply Message", type 0 */
export const ICMP_ECHO_REQUEST = 8; /* rfc792, type 8 */
const ICMP_HEADER_LEN = 8;
const IPPROTO_ICMP = 1;

/** The Internet checksum (RFC 1071) of `buf`. */
export function inetChecksum(buf: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += ((buf[i] ?? 0) << 8) | (buf[i + 1] ?? 0);
  if (buf.length % 2 === 1) sum += (buf[buf.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function encodeEchoRequest(id: number, seq: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(ICMP_HEADER_LEN + payload.length);
  b[0] = ICMP_ECHO_REQUEST;
  b.writeUInt16BE(id & 0xffff, 4);
  b.writeUInt16BE(seq & 0xffff, 6);
  payload.copy(b, ICMP_HEADER_LEN);
  b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}

export interface EchoReply { source: string; id: number; seq: number }

/** Decodes a raw-socket IPv4 datagram as an echo reply; null if it is anything else. */
export function decodeEchoReply(dgram: Buffer): EchoReply | null {
  if (dgram.length < 20 || (dgram[0] ?? 0) >> 4 !== 4 || dgram[9] !== IPPROTO_ICMP) return null;
  const ihl = ((dgram[0] ?? 0) & 0x0f) * 4;
  if (ihl < 20 || dgram.length < ihl + ICMP_HEADER_LEN) return null;
  const icmp = dgram.subarray(ihl);
  if (icmp[0] !== ICMP_ECHO_REPLY || icmp[1] !== 0 || inetChecksum(icmp) !== 0) return null;
  return { source: Array.from(dgram.subarray(12, 16)).join('.'), id: icmp.readUInt16BE(4), seq: icmp.readUInt16BE(6) };
}

/** Parses a dotted IPv4 address into 4 bytes; null if malformed. */
export function parseIPv4(s: string): Buffer | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((n) => n >= 0 && n <= 255) ? Buffer.from(bytes) : null;
}
