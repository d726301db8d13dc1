/**
 * The Internet checksum (RFC 1071) and the pseudo-headers that upper-layer protocols sum
 * with it (IPv4: RFC 768 / RFC 793 layout; IPv6: RFC 8200 section 8.1, formerly RFC 2460).
 *
 * No domain knowledge here: callers hand in bytes. Nothing throws on any input except a
 * pseudo-header built from addresses of the wrong size, which is a programming error.
 */

/**
 * The 16-bit one's complement sum (RFC 1071 section 1, step 2) of the concatenation of
 * `parts`, folded to 16 bits but not complemented. The parts are summed as one stream of
 * bytes, so a part of odd length in the middle pairs its last byte with the next part's
 * first byte, exactly as if the buffers had been copied together first.
 */
export function onesComplementSum(parts: readonly Uint8Array[]): number {
  let sum = 0;
  let odd = false; // true when the next byte is the low half of a 16-bit word
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) {
      const byte = part[i] as number;
      sum += odd ? byte : byte << 8;
      odd = !odd;
    }
    // Fold now and then so the accumulator stays an exact integer (RFC 1071 section 2(C)).
    if (sum > 0xffffffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * The Internet checksum (RFC 1071): the one's complement of the one's complement sum of
 * the parts. To verify a received message, sum it with its checksum field in place: the
 * result is 0 when the message is intact.
 */
export function internetChecksum(...parts: readonly Uint8Array[]): number {
  return ~onesComplementSum(parts) & 0xffff;
}

/**
 * The 12-byte IPv4 pseudo-header summed by upper-layer checksums (the layout of RFC 768 and
 * RFC 793 section 3.1): source, destination, a zero byte, the protocol, the upper-layer length.
 */
export function ipv4PseudoHeader(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): Uint8Array {
  if (src.length !== 4 || dst.length !== 4) throw new RangeError('IPv4 pseudo-header needs 4-byte addresses');
  const h = new Uint8Array(12);
  h.set(src, 0);
  h.set(dst, 4);
  h[8] = 0;
  h[9] = protocol & 0xff;
  h[10] = (length >>> 8) & 0xff;
  h[11] = length & 0xff;
  return h;
}

/**
 * The 40-byte IPv6 pseudo-header of RFC 8200 section 8.1 (RFC 2460 section 8.1 before it):
 * source, destination, a 32-bit upper-layer packet length, three zero bytes, the next header.
 */
export function ipv6PseudoHeader(src: Uint8Array, dst: Uint8Array, nextHeader: number, length: number): Uint8Array {
  if (src.length !== 16 || dst.length !== 16) throw new RangeError('IPv6 pseudo-header needs 16-byte addresses');
  const h = new Uint8Array(40);
  h.set(src, 0);
  h.set(dst, 16);
  h[32] = (length >>> 24) & 0xff;
  h[33] = (length >>> 16) & 0xff;
  h[34] = (length >>> 8) & 0xff;
  h[35] = length & 0xff;
  h[39] = nextHeader & 0xff;
  return h;
}
