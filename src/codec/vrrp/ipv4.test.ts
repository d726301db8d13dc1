import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { internetChecksum } from '../../lib/checksum.js';
import { IPV4_DROP_REASONS, PACKET_DROP_REASONS } from './drop.js';
import { decodeIPv4Advert, decodeIPv4Packet } from './ipv4.js';
import { encodeAdvert, type VrrpV3Advert } from './packet.js';

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');

/** Two captured Ethernet frames; a raw IPv4 socket sees them from the IP header on. */
// gopacket layers/vrrp_test.go (tcpdump): VRRPv2 192.168.0.30 > 224.0.0.18, vrid 1, prio 100.
const V2_FRAME = hex(`0100 5e00 0012 0000 5e00 0101 0800 45c0
  0028 0000 0000 ff70 19cd c0a8 001e e000
  0012 2101 6401 0001 ba52 c0a8 0001 0000
  0000 0000 0000 0000 0000 0000`);
// lagopus/vrrpd packets/vrrp_adv_test.go: VRRPv3 192.168.100.238 > 224.0.0.18, vrid 50, prio 255.
const V3_FRAME = hex(`0100 5e00 0012 5254 00dc 6598 0800 45c0
  0024 0001 0000 ff70 b4ff c0a8 64ee e000
  0012 3132 ff02 0064 b539 0a00 0001 0a00
  0002 0000 0000 0000 0000 0000 0000`);

/** Rewrites the IPv4 header checksum after a mutation. */
function fixIpChecksum(b: Buffer): Buffer {
  const ihl = ((b[0] as number) & 0x0f) * 4;
  b.writeUInt16BE(0, 10);
  b.writeUInt16BE(internetChecksum(b.subarray(0, ihl)), 10);
  return b;
}

test('captured VRRPv2 datagram: IP header fields, then the advert; Ethernet padding trimmed', () => {
  const dgram = V2_FRAME.subarray(14); // 46 bytes: 40 of IP datagram + 6 of Ethernet padding
  const ip = decodeIPv4Packet(dgram);
  assert.ok(ip.ok);
  assert.deepEqual({ ...ip.value, payload: undefined }, {
    headerLength: 20, tos: 0xc0, totalLength: 40, id: 0, ttl: 255, protocol: 112,
    src: '192.168.0.30', dst: '224.0.0.18', payload: undefined,
  });
  assert.equal(ip.value.payload.length, 20);
  const adv = decodeIPv4Advert(dgram);
  assert.ok(adv.ok);
  assert.deepEqual(adv.value, { version: 2, family: 4, vrid: 1, priority: 100, advertIntervalMs: 1000, addresses: ['192.168.0.1'], authType: 0 });
});

test('captured VRRPv3 datagram decodes to the advert its fields say', () => {
  const adv = decodeIPv4Advert(V3_FRAME.subarray(14));
  assert.ok(adv.ok);
  assert.equal(adv.ip.id, 1);
  assert.equal(adv.checksumForm, 'pseudo_header');
  const expected: VrrpV3Advert = { version: 3, family: 4, vrid: 50, priority: 255, maxAdvertIntervalMs: 1000, addresses: ['10.0.0.1', '10.0.0.2'] };
  assert.deepEqual(adv.value, expected);
});

test('IP options are skipped (IHL 6)', () => {
  const vrrp = encodeAdvert({ version: 3, family: 4, vrid: 9, priority: 100, maxAdvertIntervalMs: 1000, addresses: ['10.1.1.1'] }, { src: '10.1.1.2', dst: '224.0.0.18' });
  const h = Buffer.alloc(24);
  h.set([0x46, 0, 0, 24 + vrrp.length, 0, 7, 0x40, 0, 255, 112, 0, 0, 10, 1, 1, 2, 224, 0, 0, 18, 1, 1, 1, 0]);
  const r = decodeIPv4Advert(Buffer.concat([fixIpChecksum(h), vrrp]));
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.equal(r.ip.headerLength, 24);
  assert.equal(r.value.vrid, 9);
});

test('each rejection reason of the IPv4 reader', () => {
  const good = () => Buffer.from(V2_FRAME.subarray(14, 14 + 40));
  const fails = (b: Uint8Array, reason: string) => {
    const r = decodeIPv4Advert(b);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.reason, reason);
  };
  fails(Buffer.alloc(19), 'too_short');
  let b = good();
  b[0] = 0x65;
  fails(b, 'bad_ip_version');
  b = good();
  b[0] = 0x44; // IHL 4: below the minimum
  fails(b, 'bad_ip_header_length');
  b = good();
  b[0] = 0x4f; // IHL 15 = 60 bytes, beyond a 40-byte buffer
  fails(b, 'bad_ip_header_length');
  b = good();
  b.writeUInt16BE(41, 2); // longer than what arrived
  fails(fixIpChecksum(b), 'bad_ip_total_length');
  b = good();
  b.writeUInt16BE(19, 2); // shorter than the header
  fails(fixIpChecksum(b), 'bad_ip_total_length');
  b = good();
  b[11] = (b[11] as number) ^ 1;
  fails(b, 'bad_ip_checksum');
  b = good();
  b.writeUInt16BE(0x2000, 6); // more fragments
  fails(fixIpChecksum(b), 'ip_fragment');
  b = good();
  b.writeUInt16BE(0x0001, 6); // offset 8
  fails(fixIpChecksum(b), 'ip_fragment');
  b = good();
  b[9] = 17;
  fails(fixIpChecksum(b), 'bad_protocol');
  // The TTL from the header reaches the VRRP check (RFC 3768 7.1).
  b = good();
  b[8] = 254;
  fails(fixIpChecksum(b), 'bad_ttl');
  // Don't-fragment is fine.
  b = good();
  b.writeUInt16BE(0x4000, 6);
  assert.ok(decodeIPv4Advert(fixIpChecksum(b)).ok);
});

test('every truncation of a captured datagram is refused, never thrown', () => {
  const dgram = V3_FRAME.subarray(14, 14 + 36);
  for (let n = 0; n < dgram.length; n++) {
    const r = decodeIPv4Advert(dgram.subarray(0, n));
    assert.equal(r.ok, false, `length ${n}`);
  }
});

test('random bytes and mutated datagrams never throw (property)', () => {
  const reasons = new Set<string>([...IPV4_DROP_REASONS, ...PACKET_DROP_REASONS]);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const r = decodeIPv4Advert(bytes);
      if (!r.ok) assert.ok(reasons.has(r.reason));
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.boolean(), (edits, fix) => {
      const b = Buffer.from(V3_FRAME.subarray(14));
      for (const [at, v] of edits) b[at % b.length] = v;
      if (fix && ((b[0] as number) & 0x0f) * 4 <= b.length && ((b[0] as number) & 0x0f) >= 5) fixIpChecksum(b);
      const r = decodeIPv4Advert(b);
      if (!r.ok) assert.ok(reasons.has(r.reason));
    }),
    { numRuns: 3000 },
  );
});
