import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { internetChecksum, ipv4PseudoHeader, ipv6PseudoHeader } from '../../lib/checksum.js';
import { FwlbError } from '../../lib/errors.js';
import { formatIPv6, parseAddress, parseIPv6 } from '../../lib/ip-bytes.js';
import { PACKET_DROP_REASONS } from './drop.js';
import {
  advertIntervalProblem,
  advertLength,
  advertProblems,
  decodeAdvert,
  encodeAdvert,
  type ReceivedIpMeta,
  type VrrpAdvert,
  type VrrpV2Advert,
  type VrrpV3Advert,
} from './packet.js';

// ---------------------------------------------------------------------------------------
// Fixture builder
// ---------------------------------------------------------------------------------------

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');
const V4: ReceivedIpMeta = { src: '198.18.0.2', dst: '224.0.0.18', ttl: 255, family: 4 };
const V6: ReceivedIpMeta = { src: 'fe80::1', dst: 'ff02::12', ttl: 255, family: 6 };

/** Recomputes the checksum of a (mutated) packet, so a test reaches the check it aims at. */
function rechecksum(buf: Buffer, ip: ReceivedIpMeta, pseudo: boolean): Buffer {
  const b = Buffer.from(buf);
  b.writeUInt16BE(0, 6);
  const src = parseAddress(ip.src, ip.family) as Uint8Array;
  const dst = parseAddress(ip.dst, ip.family) as Uint8Array;
  const ph = ip.family === 4 ? ipv4PseudoHeader(src, dst, 112, b.length) : ipv6PseudoHeader(src, dst, 112, b.length);
  b.writeUInt16BE(pseudo ? internetChecksum(ph, b) : internetChecksum(b), 6);
  return b;
}

const v3v4: VrrpV3Advert = { version: 3, family: 4, vrid: 51, priority: 200, maxAdvertIntervalMs: 100, addresses: ['198.18.0.100'] };
const v3v6: VrrpV3Advert = { version: 3, family: 6, vrid: 7, priority: 200, maxAdvertIntervalMs: 1000, addresses: ['fe80::1:7', '2001:db8::7'] };
const v2: VrrpV2Advert = { version: 2, family: 4, vrid: 51, priority: 150, advertIntervalMs: 1000, addresses: ['198.18.0.100', '198.18.0.101'], authType: 0 };

function decodeOk(buf: Uint8Array, ip: ReceivedIpMeta): VrrpAdvert {
  const r = decodeAdvert(buf, ip);
  assert.ok(r.ok, `expected ok, got ${r.ok ? '' : r.reason}`);
  return r.value;
}
function decodeFails(buf: Uint8Array, ip: ReceivedIpMeta, reason: string): void {
  const r = decodeAdvert(buf, ip);
  assert.equal(r.ok, false, `expected ${reason}, decoded fine`);
  if (!r.ok) assert.equal(r.reason, reason);
}

// ---------------------------------------------------------------------------------------
// Known-good bytes
// ---------------------------------------------------------------------------------------

test('v3 IPv4, built by hand from the RFC 5798 5.1 layout: every field', () => {
  // 0x31 version 3 | type 1; VRID 51; priority 200; 1 address; rsvd 0 | 10 cs; checksum;
  // 198.18.0.100. The checksum 0x99a6 was computed independently (pseudo-header
  // 198.18.0.2 > 224.0.0.18, proto 112, length 12).
  const bytes = hex('31 33 c8 01  00 0a 99 a6  c6 12 00 64');
  assert.deepEqual(encodeAdvert(v3v4, V4), bytes);
  const r = decodeAdvert(bytes, V4);
  assert.ok(r.ok);
  assert.equal(r.checksumForm, 'pseudo_header');
  assert.deepEqual(r.value, v3v4);
});

test('v3 IPv6, built by hand: pseudo-header of RFC 2460/8200 8.1 with next header 112', () => {
  // fe80::1 > ff02::12, VRID 7, priority 200, 2 addresses, 100 cs; checksum 0xdc19 computed independently.
  const bytes = hex(`31 07 c8 02  00 64 dc 19
    fe80 0000 0000 0000 0000 0000 0001 0007
    2001 0db8 0000 0000 0000 0000 0000 0007`);
  assert.deepEqual(encodeAdvert(v3v6, V6), bytes);
  assert.deepEqual(decodeOk(bytes, V6), v3v6);
});

test('v2, built by hand from the RFC 3768 5.1 layout: auth type, seconds, 8 bytes of auth data', () => {
  const bytes = hex(`21 33 96 02  00 01 bb da
    c6 12 00 64  c6 12 00 65
    00 00 00 00  00 00 00 00`);
  assert.deepEqual(encodeAdvert(v2, V4), bytes);
  assert.deepEqual(decodeOk(bytes, V4), v2);
  // v2 has no pseudo-header: the same bytes verify whatever the IP addresses.
  assert.deepEqual(decodeOk(bytes, { ...V4, src: '10.9.9.9', dst: '10.1.1.1' }), v2);
});

test('captured v2 advert (tcpdump: 192.168.0.30 > 224.0.0.18, vrid 1, prio 100, intvl 1s)', () => {
  // VRRP part of a frame published as a capture in gopacket's layers/vrrp_test.go.
  const bytes = hex('2101 6401 0001 ba52 c0a8 0001 0000 0000 0000 0000');
  const meta: ReceivedIpMeta = { src: '192.168.0.30', dst: '224.0.0.18', ttl: 255, family: 4 };
  assert.deepEqual(decodeOk(bytes, meta), { version: 2, family: 4, vrid: 1, priority: 100, advertIntervalMs: 1000, addresses: ['192.168.0.1'], authType: 0 });
  assert.deepEqual(encodeAdvert({ version: 2, family: 4, vrid: 1, priority: 100, advertIntervalMs: 1000, addresses: ['192.168.0.1'] }, meta), bytes);
});

test('captured v3 IPv4 advert (192.168.100.238 > 224.0.0.18, vrid 50, owner, 2 addresses)', () => {
  // VRRP part of a frame published in lagopus/vrrpd's packets/vrrp_adv_test.go.
  const bytes = hex('3132 ff02 0064 b539 0a00 0001 0a00 0002');
  const meta: ReceivedIpMeta = { src: '192.168.100.238', dst: '224.0.0.18', ttl: 255, family: 4 };
  const adv: VrrpV3Advert = { version: 3, family: 4, vrid: 50, priority: 255, maxAdvertIntervalMs: 1000, addresses: ['10.0.0.1', '10.0.0.2'] };
  assert.deepEqual(decodeOk(bytes, meta), adv);
  assert.deepEqual(encodeAdvert(adv, meta), bytes);
  // The same packet with a wrong checksum (0xb538) is refused.
  decodeFails(hex('3132 ff02 0064 b538 0a00 0001 0a00 0002'), meta, 'bad_checksum');
});

test('v3 over IPv4 also accepts the RFC 9568 message-only checksum, and can send it', () => {
  const msgOnly = encodeAdvert(v3v4, V4, { v3Ipv4Checksum: 'message_only' });
  assert.equal(msgOnly.readUInt16BE(6), 0x404a); // computed independently
  const r = decodeAdvert(msgOnly, V4);
  assert.ok(r.ok);
  assert.equal(r.checksumForm, 'message_only');
  // Over IPv6 the pseudo-header is mandatory: a message-only checksum is refused.
  decodeFails(rechecksum(encodeAdvert(v3v6, V6), V6, false), V6, 'bad_checksum');
});

test('reserved bits are zero on transmission and ignored on reception (RFC 5798 5.2.6)', () => {
  const sent = encodeAdvert({ ...v3v4, maxAdvertIntervalMs: 40950 }, V4);
  assert.equal(sent[4], 0x0f);
  assert.equal(sent[5], 0xff);
  const withRsvd = Buffer.from(sent);
  withRsvd[4] = (withRsvd[4] as number) | 0xf0;
  assert.equal((decodeOk(rechecksum(withRsvd, V4, true), V4) as VrrpV3Advert).maxAdvertIntervalMs, 40950);
});

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

const canon6 = fc.ipV6().map((a) => formatIPv6(parseIPv6(a) as Uint8Array));
const arbV3v4 = fc.record({
  version: fc.constant(3 as const),
  family: fc.constant(4 as const),
  vrid: fc.integer({ min: 1, max: 255 }),
  priority: fc.integer({ min: 0, max: 255 }),
  maxAdvertIntervalMs: fc.integer({ min: 1, max: 4095 }).map((cs) => cs * 10),
  addresses: fc.array(fc.ipV4(), { minLength: 1, maxLength: 20 }),
}).map((r) => ({ ...r })); // fast-check records have a null prototype; deepEqual compares prototypes
const arbV3v6 = fc.record({
  version: fc.constant(3 as const),
  family: fc.constant(6 as const),
  vrid: fc.integer({ min: 1, max: 255 }),
  priority: fc.integer({ min: 0, max: 255 }),
  maxAdvertIntervalMs: fc.integer({ min: 1, max: 4095 }).map((cs) => cs * 10),
  addresses: fc.array(canon6, { minLength: 1, maxLength: 12 }),
}).map((r) => ({ ...r }));
const arbV2 = fc.record({
  version: fc.constant(2 as const),
  family: fc.constant(4 as const),
  vrid: fc.integer({ min: 1, max: 255 }),
  priority: fc.integer({ min: 0, max: 255 }),
  advertIntervalMs: fc.integer({ min: 1, max: 255 }).map((s) => s * 1000),
  addresses: fc.array(fc.ipV4(), { minLength: 1, maxLength: 20 }),
  authType: fc.integer({ min: 0, max: 2 }),
}).map((r) => ({ ...r }));
const arbAdvert: fc.Arbitrary<{ advert: VrrpAdvert; ip: ReceivedIpMeta }> = fc.oneof(
  fc.tuple(arbV3v4, fc.ipV4(), fc.ipV4()).map(([advert, src, dst]) => ({ advert, ip: { src, dst, ttl: 255, family: 4 as const } })),
  fc.tuple(arbV3v6, fc.ipV6(), fc.ipV6()).map(([advert, src, dst]) => ({ advert, ip: { src, dst, ttl: 255, family: 6 as const } })),
  fc.tuple(arbV2, fc.ipV4(), fc.ipV4()).map(([advert, src, dst]) => ({ advert, ip: { src, dst, ttl: 255, family: 4 as const } })),
);

test('round trip: decode(encode(a)) = a for v2, v3 IPv4 and v3 IPv6 (property)', () => {
  fc.assert(
    fc.property(arbAdvert, ({ advert, ip }) => {
      const bytes = encodeAdvert(advert, ip);
      assert.equal(bytes.length, advertLength(advert.version, advert.family, advert.addresses.length));
      const r = decodeAdvert(bytes, ip);
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.deepEqual(r.value, advert);
      assert.equal(r.checksumForm, advert.version === 2 ? 'message_only' : 'pseudo_header');
    }),
    { numRuns: 500 },
  );
});

test('decoding works on a view at any offset into a larger buffer (split buffers)', () => {
  for (const [adv, ip] of [[v3v4, V4], [v3v6, V6], [v2, V4]] as const) {
    const bytes = encodeAdvert(adv, ip);
    for (let offset = 0; offset < 9; offset++) {
      const big = Buffer.alloc(offset + bytes.length + 5, 0xee);
      bytes.copy(big, offset);
      assert.deepEqual(decodeOk(big.subarray(offset, offset + bytes.length), ip), adv);
      const u8 = new Uint8Array(big.buffer, big.byteOffset + offset, bytes.length);
      assert.deepEqual(decodeOk(u8, ip), adv);
    }
  }
});

// ---------------------------------------------------------------------------------------
// Each rejection reason
// ---------------------------------------------------------------------------------------

test('too_short: fewer bytes than the fixed header', () => {
  for (let n = 0; n < 8; n++) decodeFails(Buffer.alloc(n), V4, 'too_short');
});

test('bad_ip_meta: source/destination not of the stated family, unknown family', () => {
  const b = encodeAdvert(v3v4, V4);
  decodeFails(b, { ...V4, src: 'x' }, 'bad_ip_meta');
  decodeFails(b, { ...V4, dst: 'ff02::12' }, 'bad_ip_meta');
  decodeFails(b, { ...V4, family: 5 as 4 }, 'bad_ip_meta');
  decodeFails(b, undefined as unknown as ReceivedIpMeta, 'bad_ip_meta');
  decodeFails('not bytes' as unknown as Uint8Array, V4, 'bad_ip_meta');
});

test('bad_ttl: TTL / hop limit other than 255 (RFC 5798 5.1.1.3, 5.1.2.3, 7.1)', () => {
  for (const ttl of [0, 1, 64, 254, 256]) {
    decodeFails(encodeAdvert(v3v4, V4), { ...V4, ttl }, 'bad_ttl');
    decodeFails(encodeAdvert(v3v6, V6), { ...V6, ttl }, 'bad_ttl');
    decodeFails(encodeAdvert(v2, V4), { ...V4, ttl }, 'bad_ttl');
  }
});

test('bad_version: neither 2 nor 3', () => {
  for (const v of [0, 1, 4, 15]) {
    const b = Buffer.from(encodeAdvert(v3v4, V4));
    b[0] = (v << 4) | 1;
    decodeFails(rechecksum(b, V4, true), V4, 'bad_version');
  }
});

test('bad_family: VRRPv2 over IPv6', () => {
  const b = Buffer.alloc(8 + 16 + 8);
  b.set([0x21, 1, 100, 1, 0, 1]);
  decodeFails(rechecksum(b, V6, false), V6, 'bad_family');
});

test('bad_length: count disagrees with the bytes, or trailing bytes', () => {
  const b = Buffer.from(encodeAdvert(v3v4, V4));
  b[3] = 2; // says two addresses, carries one
  decodeFails(rechecksum(b, V4, true), V4, 'bad_length');
  const longer = Buffer.concat([encodeAdvert(v3v4, V4), Buffer.alloc(4)]);
  decodeFails(longer, V4, 'bad_length');
  const v2NoAuth = encodeAdvert(v2, V4).subarray(0, 16); // auth data missing
  decodeFails(v2NoAuth, V4, 'bad_length');
});

test('bad_checksum: any wrong checksum; v3 checksum bound to source and destination', () => {
  const b = Buffer.from(encodeAdvert(v3v4, V4));
  b[7] = (b[7] as number) ^ 1;
  decodeFails(b, V4, 'bad_checksum');
  decodeFails(encodeAdvert(v3v4, V4), { ...V4, src: '198.18.0.3' }, 'bad_checksum');
  decodeFails(encodeAdvert(v3v6, V6), { ...V6, dst: 'ff02::13' }, 'bad_checksum');
  const c = Buffer.from(encodeAdvert(v2, V4));
  c[9] = (c[9] as number) ^ 0x80;
  decodeFails(c, V4, 'bad_checksum');
});

test('bad_type: only ADVERTISEMENT (1) exists (RFC 5798 5.2.2)', () => {
  for (const t of [0, 2, 15]) {
    const b = Buffer.from(encodeAdvert(v3v4, V4));
    b[0] = 0x30 | t;
    decodeFails(rechecksum(b, V4, true), V4, 'bad_type');
  }
});

test('bad_vrid: VRID 0', () => {
  const b = Buffer.from(encodeAdvert(v2, V4));
  b[1] = 0;
  decodeFails(rechecksum(b, V4, false), V4, 'bad_vrid');
});

test('bad_address_count: no addresses (RFC 5798 5.2.5, minimum 1)', () => {
  const v3 = Buffer.from([0x31, 1, 100, 0, 0, 100, 0, 0]);
  decodeFails(rechecksum(v3, V4, true), V4, 'bad_address_count');
  const v2b = Buffer.alloc(16);
  v2b.set([0x21, 1, 100, 0, 0, 1]);
  decodeFails(rechecksum(v2b, V4, false), V4, 'bad_address_count');
});

test('bad_interval: advertisement interval 0', () => {
  const b = Buffer.from(encodeAdvert(v3v4, V4));
  b.writeUInt16BE(0xf000, 4); // reserved bits set, interval 0
  decodeFails(rechecksum(b, V4, true), V4, 'bad_interval');
  const c = Buffer.from(encodeAdvert(v2, V4));
  c[5] = 0;
  decodeFails(rechecksum(c, V4, false), V4, 'bad_interval');
});

test('bad_auth: v2 auth type beyond the three defined (RFC 3768 5.3.6); 1 and 2 decode', () => {
  const b = Buffer.from(encodeAdvert(v2, V4));
  b[4] = 3;
  decodeFails(rechecksum(b, V4, false), V4, 'bad_auth');
  for (const t of [1, 2]) {
    b[4] = t;
    assert.equal((decodeOk(rechecksum(b, V4, false), V4) as VrrpV2Advert).authType, t);
  }
  // Auth data is ignored on reception (RFC 3768 5.3.10).
  const d = Buffer.from(encodeAdvert(v2, V4));
  d.write('secret!!', 16, 'latin1');
  assert.deepEqual(decodeOk(rechecksum(d, V4, false), V4), v2);
});

test('every truncation of a valid packet is refused with too_short or bad_length', () => {
  for (const [adv, ip] of [[v3v4, V4], [v3v6, V6], [v2, V4]] as const) {
    const bytes = encodeAdvert(adv, ip);
    for (let n = 0; n < bytes.length; n++) {
      const r = decodeAdvert(bytes.subarray(0, n), ip);
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.reason, n < 8 ? 'too_short' : 'bad_length', `length ${n}`);
    }
  }
});

// ---------------------------------------------------------------------------------------
// Never throws
// ---------------------------------------------------------------------------------------

const arbMeta: fc.Arbitrary<ReceivedIpMeta> = fc.oneof(
  fc.record({ src: fc.ipV4(), dst: fc.constantFrom('224.0.0.18', '198.18.0.1'), ttl: fc.constantFrom(255, 255, 64), family: fc.constant(4 as const) }),
  fc.record({ src: fc.ipV6(), dst: fc.constantFrom('ff02::12', 'fe80::9'), ttl: fc.constantFrom(255, 255, 1), family: fc.constant(6 as const) }),
  fc.record({ src: fc.string(), dst: fc.string(), ttl: fc.integer(), family: fc.constantFrom(4 as const, 6 as const) }),
);

function assertClosedResult(r: ReturnType<typeof decodeAdvert>): void {
  assert.equal(typeof r.ok, 'boolean');
  if (!r.ok) assert.ok((PACKET_DROP_REASONS as readonly string[]).includes(r.reason), r.reason);
}

test('random bytes never throw and always give a result (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), arbMeta, (bytes, meta) => {
      assertClosedResult(decodeAdvert(bytes, meta));
    }),
    { numRuns: 3000 },
  );
});

test('random mutations of valid packets never throw, and a decoded one re-encodes identically (property)', () => {
  const arbMutation = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), value: fc.constant(0) }),
    fc.record({ kind: fc.constant('append' as const), at: fc.nat({ max: 40 }), value: fc.integer({ min: 0, max: 255 }) }),
  );
  fc.assert(
    fc.property(arbAdvert, fc.array(arbMutation, { minLength: 1, maxLength: 6 }), fc.boolean(), ({ advert, ip }, mutations, fix) => {
      let b: Buffer = Buffer.from(encodeAdvert(advert, ip));
      for (const m of mutations) {
        if (m.kind === 'set' && b.length > 0) b[m.at % b.length] = m.value;
        if (m.kind === 'cut') b = b.subarray(0, m.at % (b.length + 1));
        if (m.kind === 'append') b = Buffer.concat([b, Buffer.alloc(m.at, m.value)]);
      }
      // Half the time fix the checksum up, so mutations reach the checks behind it.
      if (fix && b.length >= 8) b = rechecksum(b, ip, advert.version === 3);
      const r = decodeAdvert(b, ip);
      assertClosedResult(r);
      if (r.ok) {
        const again = encodeAdvert(r.value, ip, { v3Ipv4Checksum: r.checksumForm });
        // Equal except for reserved bits (ignored) and v2 auth data (ignored).
        const mask = (x: Buffer) => {
          const y = Buffer.from(x);
          if (r.value.version === 3) y[4] = (y[4] as number) & 0x0f;
          else y.fill(0, y.length - 8);
          y.writeUInt16BE(0, 6);
          return y;
        };
        assert.deepEqual(mask(again), mask(b));
      }
    }),
    { numRuns: 3000 },
  );
});

test('any single bit flipped in a valid v2 or v3 IPv6 packet is refused (property)', () => {
  // (v3 over IPv4 is left out: accepting the RFC 9568 message-only form means a flip could,
  // for rare address pairs, turn into a valid message-only checksum.)
  const arb = fc.oneof(
    fc.tuple(arbV3v6, fc.ipV6(), fc.ipV6()).map(([advert, src, dst]) => ({ advert: advert as VrrpAdvert, ip: { src, dst, ttl: 255, family: 6 as const } })),
    fc.tuple(arbV2, fc.ipV4(), fc.ipV4()).map(([advert, src, dst]) => ({ advert: advert as VrrpAdvert, ip: { src, dst, ttl: 255, family: 4 as const } })),
  );
  fc.assert(
    fc.property(arb, fc.nat(), ({ advert, ip }, bit) => {
      const b = Buffer.from(encodeAdvert(advert, ip));
      const at = bit % (b.length * 8);
      // Reserved bits (v3) and auth data (v2) are covered by the checksum too.
      b[at >> 3] = (b[at >> 3] as number) ^ (0x80 >> (at & 7));
      assert.equal(decodeAdvert(b, ip).ok, false);
    }),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------------------
// Encoding our own adverts
// ---------------------------------------------------------------------------------------

test('encodeAdvert refuses what cannot go on the wire, with a stable error code', () => {
  const bad: Array<[VrrpAdvert, string]> = [
    [{ ...v3v4, vrid: 0 }, 'VRID'],
    [{ ...v3v4, vrid: 256 }, 'VRID'],
    [{ ...v3v4, priority: 256 }, 'priority'],
    [{ ...v3v4, maxAdvertIntervalMs: 105 }, 'centiseconds'],
    [{ ...v3v4, maxAdvertIntervalMs: 40960 }, 'outside'],
    [{ ...v3v4, maxAdvertIntervalMs: 0 }, 'outside'],
    [{ ...v2, advertIntervalMs: 1500 }, 'seconds'],
    [{ ...v2, advertIntervalMs: 256000 }, 'outside'],
    [{ ...v3v4, addresses: [] }, '1..255'],
    [{ ...v3v4, addresses: Array(256).fill('10.0.0.1') }, '1..255'],
    [{ ...v3v4, addresses: ['fe80::1'] }, 'IPv4 address'],
    [{ ...v3v4, addresses: ['198.18.0.100/24'] }, 'IPv4 address'],
    [{ ...v2, family: 6 } as unknown as VrrpAdvert, 'IPv4 only'],
  ];
  for (const [adv, words] of bad) {
    assert.throws(
      () => encodeAdvert(adv, V4),
      (e: unknown) => e instanceof FwlbError && e.code === 'ERR_VRRP_ENCODE' && e.message.includes(words),
      words,
    );
  }
  assert.match(advertProblems(v3v4, { src: 'nope', dst: '224.0.0.18' }).join(), /source/);
  // v2 does not use the addresses: any endpoints do.
  assert.deepEqual(advertProblems(v2, { src: 'nope', dst: 'nope' }), []);
});

test('advertIntervalProblem: v3 whole centiseconds 10..40950 ms, v2 whole seconds 1..255 s', () => {
  assert.equal(advertIntervalProblem(3, 10), undefined);
  assert.equal(advertIntervalProblem(3, 40950), undefined);
  assert.ok(advertIntervalProblem(3, 5));
  assert.ok(advertIntervalProblem(3, 15.5));
  assert.equal(advertIntervalProblem(2, 255000), undefined);
  assert.ok(advertIntervalProblem(2, 100));
});
