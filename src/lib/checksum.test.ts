import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { internetChecksum, ipv4PseudoHeader, ipv6PseudoHeader, onesComplementSum } from './checksum.js';

/** A straightforward reference: pad to even length, sum 16-bit words, fold. */
function referenceSum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += ((bytes[i] as number) << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

test('RFC 1071 section 3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', () => {
  const data = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(onesComplementSum([data]), 0xddf2);
  assert.equal(internetChecksum(data), 0x220d);
});

test('a message with its checksum in place verifies to 0; all zeros do not', () => {
  const msg = Uint8Array.from([0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  const c = internetChecksum(msg);
  msg[10] = c >> 8;
  msg[11] = c & 0xff;
  assert.equal(internetChecksum(msg), 0);
  assert.equal(internetChecksum(new Uint8Array(8)), 0xffff);
});

test('odd lengths pad with a zero byte at the end', () => {
  assert.equal(onesComplementSum([Uint8Array.from([0xab])]), 0xab00);
  assert.equal(onesComplementSum([Uint8Array.from([0x01, 0x02, 0x03])]), 0x0102 + 0x0300);
});

test('summing split buffers equals summing the concatenation, at every split (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 5 }), (bytes, cuts) => {
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const parts: Uint8Array[] = [];
      let from = 0;
      for (const p of points) {
        parts.push(bytes.subarray(from, p));
        from = p;
      }
      parts.push(bytes.subarray(from));
      assert.equal(onesComplementSum(parts), referenceSum(bytes));
      assert.equal(internetChecksum(...parts), ~referenceSum(bytes) & 0xffff);
    }),
  );
});

test('large input stays exact (folding keeps the accumulator small)', () => {
  const big = new Uint8Array(1 << 20).fill(0xff);
  assert.equal(onesComplementSum([big]), 0xffff);
  assert.equal(onesComplementSum([big, big.subarray(1)]), referenceSum(Uint8Array.from([...big, ...big.subarray(1)])));
});

test('IPv4 pseudo-header layout: src, dst, zero, protocol, length', () => {
  const h = ipv4PseudoHeader(Uint8Array.from([192, 0, 2, 1]), Uint8Array.from([224, 0, 0, 18]), 112, 0x0123);
  assert.deepEqual([...h], [192, 0, 2, 1, 224, 0, 0, 18, 0, 112, 0x01, 0x23]);
  assert.throws(() => ipv4PseudoHeader(new Uint8Array(16), new Uint8Array(4), 112, 1), RangeError);
});

test('IPv6 pseudo-header layout (RFC 8200 8.1): src, dst, 32-bit length, 3 zeros, next header', () => {
  const src = new Uint8Array(16).fill(0xaa);
  const dst = new Uint8Array(16).fill(0xbb);
  const h = ipv6PseudoHeader(src, dst, 112, 0x01020304);
  assert.equal(h.length, 40);
  assert.deepEqual([...h.subarray(0, 16)], [...src]);
  assert.deepEqual([...h.subarray(16, 32)], [...dst]);
  assert.deepEqual([...h.subarray(32)], [1, 2, 3, 4, 0, 0, 0, 112]);
  assert.throws(() => ipv6PseudoHeader(new Uint8Array(4), dst, 112, 1), RangeError);
});
