/**
 * Tests of the Neighbor Discovery codec (ndp.ts): frames checked byte by byte against the
 * RFC 4861 / RFC 8200 / RFC 2464 layouts with checksums summed here by hand, builder ->
 * decoder round trips, RFC 4291's solicited-node example, each reject reason, and
 * properties: the decoder never throws, and every truncation or single-byte corruption of
 * a valid frame is either still consistent or rejected for the right reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { internetChecksum, ipv6PseudoHeader } from '../../lib/checksum.js';
import { formatIPv6, formatMac, parseIPv6 } from '../../lib/ip-bytes.js';
import { decodeNdp, multicastMac, NDP_DECODE_REASONS, neighborSolicitation, solicitedNodeAddress, unsolicitedNeighborAdvert, type NdpDecodeResult, type NdpMessage } from './ndp.js';

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');

/** This test's own RFC 1071 sum: 16-bit big-endian words (odd tail padded with zero), end-around carry. */
function onesSum(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += ((bytes[i] as number) << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The pseudo-header of RFC 8200 8.1 written out here (src, dst, 32-bit length, 3 zeros, 58) plus the ICMPv6 message, from a frame. */
function pseudoAndMessage(f: Uint8Array): Uint8Array {
  const len = f.length - 54;
  const ph = new Uint8Array(40);
  ph.set(f.subarray(22, 54), 0);
  ph[34] = len >> 8;
  ph[35] = len & 0xff;
  ph[39] = 58;
  return Buffer.concat([ph, f.subarray(54)]);
}

/** Rewrites the ICMPv6 checksum of a (mutated) frame so a test reaches the check it aims at. */
function rechecksum(buf: Uint8Array): Buffer {
  const f = Buffer.from(buf);
  const len = f.readUInt16BE(18);
  f.writeUInt16BE(0, 56);
  f.writeUInt16BE(internetChecksum(ipv6PseudoHeader(f.subarray(22, 38), f.subarray(38, 54), 58, len), f.subarray(54, 54 + len)), 56);
  return f;
}

function decodeOk(f: Uint8Array): NdpMessage {
  const r = decodeNdp(f);
  assert.ok(r.ok, `expected ok, got ${r.ok ? '' : r.reason}`);
  return r.value;
}
function decodeFails(f: Uint8Array, reason: string): void {
  assert.deepEqual(decodeNdp(f), { ok: false, reason });
}

const VMAC = '00:00:5e:00:02:07'; // RFC 9568 7.3: the IPv6 virtual router MAC of VRID 7
const na = (over: Partial<Parameters<typeof unsolicitedNeighborAdvert>[0]> = {}) => unsolicitedNeighborAdvert({ mac: VMAC, source: 'fe80::1', target: '2001:db8::7', router: true, ...over });

// ---------------------------------------------------------------------------------------
// Known-good bytes
// ---------------------------------------------------------------------------------------

test('unsolicited NA, built by hand from RFC 2464 / RFC 8200 / RFC 4861 4.4 and 4.6.1: every byte', () => {
  // Checksum by hand (RFC 1071), 16-bit words of pseudo-header + message, checksum field 0:
  //   fe80 + 0001 (src) + ff02 + 0001 (dst) + 0020 (length 32) + 003a (58)
  //   + 8800 (type 136, code 0) + a000 (R|O) + 2001 + 0db8 + 0007 (target)
  //   + 0201 + 0000 + 5e00 + 0207 (option: type 2, length 1, the MAC)
  //   = 0x3b5a6 -> 0xb5a6 + 3 = 0xb5a9 -> complement 0x4a56.
  const bytes = hex(`
    3333 0000 0001  0000 5e00 0207  86dd
    6000 0000  0020 3a ff
    fe80 0000 0000 0000 0000 0000 0000 0001
    ff02 0000 0000 0000 0000 0000 0000 0001
    88 00 4a56  a0 00 00 00
    2001 0db8 0000 0000 0000 0000 0000 0007
    02 01 0000 5e00 0207`);
  const f = na();
  assert.equal(f.toString('hex'), bytes.toString('hex'));
  // The same checksum, verified the receiver's way: the message summed with its checksum in place is all ones.
  assert.equal(onesSum(pseudoAndMessage(f)), 0xffff);
  assert.deepEqual(decodeNdp(f), {
    ok: true,
    value: {
      type: 136,
      ethDestination: '33:33:00:00:00:01',
      ethSource: VMAC,
      source: 'fe80::1',
      destination: 'ff02::1',
      hopLimit: 255,
      target: '2001:db8::7',
      router: true,
      solicited: false,
      override: true,
      targetLinkLayer: VMAC,
    },
  });
});

test('unsolicited NA from a host: R clear, O still set, S never set (RFC 4861 7.2.6)', () => {
  const f = na({ router: false, source: '2001:db8::7' });
  assert.equal(f[58], 0x20);
  assert.equal(onesSum(pseudoAndMessage(f)), 0xffff);
  const v = decodeOk(f);
  assert.ok(v.type === 136 && !v.router && !v.solicited && v.override && v.source === '2001:db8::7');
});

test('NS for address resolution: to the solicited-node group and its 33:33 MAC, with a source link-layer option', () => {
  const f = neighborSolicitation({ mac: '02:00:00:00:00:01', source: 'fe80::1', target: '2001:db8::1:2:3' });
  const bytes = hex(`
    3333 ff02 0003  0200 0000 0001  86dd
    6000 0000  0020 3a ff
    fe80 0000 0000 0000 0000 0000 0000 0001
    ff02 0000 0000 0000 0000 0001 ff02 0003
    87 00 ${f.subarray(56, 58).toString('hex')}  00 00 00 00
    2001 0db8 0000 0000 0000 0001 0002 0003
    01 01 0200 0000 0001`);
  assert.equal(f.toString('hex'), bytes.toString('hex'));
  assert.equal(onesSum(pseudoAndMessage(f)), 0xffff);
  assert.deepEqual(decodeOk(f), {
    type: 135,
    ethDestination: '33:33:ff:02:00:03',
    ethSource: '02:00:00:00:00:01',
    source: 'fe80::1',
    destination: 'ff02::1:ff02:3',
    hopLimit: 255,
    target: '2001:db8::1:2:3',
    sourceLinkLayer: '02:00:00:00:00:01',
  });
});

test('NS for DAD: from ::, no source link-layer option (RFC 4861 4.3), 24-byte message', () => {
  const f = neighborSolicitation({ mac: '02:00:00:00:00:01', source: '::', target: 'fe80::abcd:ef12' });
  assert.equal(f.length, 14 + 40 + 24);
  assert.equal(f.readUInt16BE(18), 24);
  assert.equal(f.subarray(0, 6).toString('hex'), '3333ffcdef12');
  assert.equal(onesSum(pseudoAndMessage(f)), 0xffff);
  const v = decodeOk(f);
  assert.ok(v.type === 135);
  assert.equal(v.source, '::');
  assert.equal(v.destination, 'ff02::1:ffcd:ef12');
  assert.equal(v.sourceLinkLayer, undefined);
});

// ---------------------------------------------------------------------------------------
// Address mapping
// ---------------------------------------------------------------------------------------

test('solicited-node addresses (RFC 4291 2.7.1) and their Ethernet addresses (RFC 2464 section 7)', () => {
  assert.equal(solicitedNodeAddress('4037::01:800:200E:8C6C'), 'ff02::1:ff0e:8c6c'); // the RFC's example
  assert.equal(solicitedNodeAddress('2001:db8:1::55'), solicitedNodeAddress('2001:db8:2::55')); // only the low 24 bits count
  assert.equal(solicitedNodeAddress('::'), 'ff02::1:ff00:0');
  assert.equal(solicitedNodeAddress('fe80::1%eth0'), 'ff02::1:ff00:1');
  assert.equal(multicastMac('ff02::1'), '33:33:00:00:00:01');
  assert.equal(multicastMac('FF02::1:FF0E:8C6C'), '33:33:ff:0e:8c:6c');
  assert.equal(multicastMac('ff02::12'), '33:33:00:00:00:12'); // VRRP's group
  assert.equal(multicastMac('ff05::1:3'), '33:33:00:01:00:03');
  for (const bad of ['', 'nope', '192.0.2.1', 'ff02::1']) assert.throws(() => solicitedNodeAddress(bad), TypeError, bad);
  for (const bad of ['', 'nope', '2001:db8::1', '::']) assert.throws(() => multicastMac(bad), TypeError, bad);
});

test('builders throw TypeError on bad arguments, like gratuitousArp', () => {
  const bad: Array<Parameters<typeof unsolicitedNeighborAdvert>[0]> = [
    { mac: 'zz', source: 'fe80::1', target: '2001:db8::7', router: true },
    { mac: '00:00:5e:00:02', source: 'fe80::1', target: '2001:db8::7', router: true }, // 5 bytes
    { mac: '01:00:5e:00:00:12', source: 'fe80::1', target: '2001:db8::7', router: true }, // group MAC
    { mac: VMAC, source: '::', target: '2001:db8::7', router: true }, // NA source must be an address of the interface (4.4)
    { mac: VMAC, source: 'ff02::1', target: '2001:db8::7', router: true },
    { mac: VMAC, source: '198.18.0.1', target: '2001:db8::7', router: true },
    { mac: VMAC, source: 'fe80::1', target: 'ff02::1', router: true }, // target MUST NOT be multicast (4.4)
    { mac: VMAC, source: 'fe80::1', target: '::', router: true },
    { mac: VMAC, source: 'fe80::1', target: '2001:db8::7', router: 'yes' as unknown as boolean },
  ];
  for (const args of bad) assert.throws(() => unsolicitedNeighborAdvert(args), TypeError, JSON.stringify(args));
  assert.throws(() => neighborSolicitation({ mac: VMAC, source: 'fe80::1', target: 'ff02::1:ff00:1' }), TypeError);
  assert.throws(() => neighborSolicitation({ mac: VMAC, source: 'ff02::2', target: 'fe80::2' }), TypeError);
  assert.throws(() => neighborSolicitation({ mac: 'ff:ff:ff:ff:ff:ff', source: '::', target: 'fe80::2' }), TypeError);
});

// ---------------------------------------------------------------------------------------
// Each reject reason
// ---------------------------------------------------------------------------------------

test('decoder: each reject reason, on a frame that gets just that far', () => {
  const f = na();
  const edit = (fn: (g: Buffer) => void, fix = true): Buffer => {
    const g = Buffer.from(f);
    fn(g);
    return fix ? rechecksum(g) : g;
  };
  decodeFails(f.subarray(0, 53), 'too_short');
  decodeFails(edit((g) => g.writeUInt16BE(0x0800, 12), false), 'not_ipv6');
  decodeFails(edit((g) => g.writeUInt16BE(0x8100, 12), false), 'not_ipv6'); // a VLAN tag
  decodeFails(edit((g) => (g[14] = 0x40), false), 'not_ipv6');
  decodeFails(edit((g) => (g[20] = 0), false), 'not_icmpv6'); // a hop-by-hop header first
  decodeFails(f.subarray(0, f.length - 1), 'truncated');
  decodeFails(edit((g) => g.writeUInt16BE(3, 18)), 'too_short');
  decodeFails(edit((g) => (g[54] = 128)), 'not_ndp'); // echo request, checksum fine
  decodeFails(edit((g) => (g[54] = 134)), 'not_ndp'); // router advertisement
  decodeFails(edit((g) => (g[57] = (g[57] as number) ^ 1), false), 'bad_checksum');
  decodeFails(edit((g) => (g[21] = 64)), 'bad_hop_limit'); // forwarded: not from the link (7.1.2)
  decodeFails(edit((g) => (g[55] = 1)), 'bad_code');
  // 20 bytes of ICMPv6 with a good checksum: shorter than the 24 of 7.1.2.
  const short = edit((g) => g.writeUInt16BE(20, 18), false);
  decodeFails(rechecksum(short.subarray(0, 54 + 20)), 'too_short');
  decodeFails(edit((g) => (g[62] = 0xff)), 'bad_target'); // target ff01:db8::7
  decodeFails(edit((g) => (g[79] = 0)), 'bad_option'); // option length 0 (4.6)
  decodeFails(edit((g) => (g[79] = 2)), 'bad_option'); // runs past the end
  decodeFails(edit((g) => (g[58] = (g[58] as number) | 0x40)), 'solicited_to_multicast');
  // A 2-byte tail after the fixed part: an option header whose length runs past the end.
  const tail = Buffer.concat([f.subarray(0, 78), hex('0101')]);
  tail.writeUInt16BE(26, 18);
  decodeFails(rechecksum(tail), 'bad_option');
  const oneByte = Buffer.concat([f.subarray(0, 78), hex('02')]);
  oneByte.writeUInt16BE(25, 18);
  decodeFails(rechecksum(oneByte), 'bad_option');
});

test('decoder: a target link-layer option other than 8 bytes is refused on Ethernet (RFC 2464 section 8)', () => {
  const f = na();
  const g = Buffer.concat([f, Buffer.alloc(8)]);
  g.writeUInt16BE(40, 18);
  g[79] = 2; // length 2 = 16 bytes
  decodeFails(rechecksum(g), 'bad_option');
});

test('decoder: DAD solicitations must go to a solicited-node group and carry no source link-layer option (7.1.1)', () => {
  const dad = neighborSolicitation({ mac: '02:00:00:00:00:01', source: '::', target: 'fe80::2' });
  // To all-nodes instead: refused.
  const toAll = Buffer.from(dad);
  toAll.set(parseIPv6('ff02::1')!, 38);
  decodeFails(rechecksum(toAll), 'bad_dad_solicitation');
  // With a source link-layer option: refused.
  const withSlla = Buffer.concat([dad, hex('0101 0200 0000 0001')]);
  withSlla.writeUInt16BE(32, 18);
  decodeFails(rechecksum(withSlla), 'bad_dad_solicitation');
  // A unicast NS (to the target itself, 4.3) from a real address is fine.
  const unicast = Buffer.from(neighborSolicitation({ mac: '02:00:00:00:00:01', source: 'fe80::1', target: 'fe80::2' }));
  unicast.set(parseIPv6('fe80::2')!, 38);
  assert.equal(decodeOk(rechecksum(unicast)).destination, 'fe80::2');
});

test('decoder: unknown options and the other link-layer option are skipped (4.3, 4.4, 4.6.1); Ethernet padding is ignored', () => {
  const f = na();
  // A nonce-like unknown option (type 14, 8 bytes) and a source link-layer option before the target one.
  const g = Buffer.concat([f.subarray(0, 78), hex('0e01 1122 3344 5566  0101 0200 0000 0009'), f.subarray(78)]);
  g.writeUInt16BE(48, 18);
  const v = decodeOk(rechecksum(g));
  assert.ok(v.type === 136);
  assert.equal(v.targetLinkLayer, VMAC);
  // Two target link-layer options: the first one counts.
  const two = Buffer.concat([f, hex('0201 0200 0000 0009')]);
  two.writeUInt16BE(40, 18);
  const w = decodeOk(rechecksum(two));
  assert.ok(w.type === 136 && w.targetLinkLayer === VMAC);
  // No option at all: decodes, without a link-layer address.
  const none = Buffer.from(f.subarray(0, 78));
  none.writeUInt16BE(24, 18);
  const x = decodeOk(rechecksum(none));
  assert.ok(x.type === 136 && x.targetLinkLayer === undefined);
  // Trailing bytes after the IPv6 payload (padding, a frame check sequence): ignored.
  assert.deepEqual(decodeNdp(Buffer.concat([f, Buffer.alloc(10, 0xaa)])), decodeNdp(f));
  // A solicited unicast NA (S set, to a unicast address) is valid.
  const sol = Buffer.from(f);
  sol[58] = 0x60;
  sol.set(parseIPv6('fe80::2')!, 38);
  const y = decodeOk(rechecksum(sol));
  assert.ok(y.type === 136 && y.solicited && !y.router);
});

// ---------------------------------------------------------------------------------------
// Round trips and properties
// ---------------------------------------------------------------------------------------

const macArb = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => formatMac(Uint8Array.from(b, (x, i) => (i === 0 ? x & 0xfe : x))));
const unicastArb = fc
  .uint8Array({ minLength: 16, maxLength: 16 })
  .filter((a) => a[0] !== 0xff && a.some((x) => x !== 0))
  .map((a) => formatIPv6(a));
const naArgsArb = fc.record({ mac: macArb, source: unicastArb, target: unicastArb, router: fc.boolean() });
const nsArgsArb = fc.record({ mac: macArb, source: fc.oneof(unicastArb, fc.constant('::')), target: unicastArb });
const frameArb = fc.oneof(naArgsArb.map(unsolicitedNeighborAdvert), nsArgsArb.map(neighborSolicitation));

test('round trip: every unsolicited NA decodes to what was built', () => {
  fc.assert(
    fc.property(naArgsArb, ({ mac, source, target, router }) => {
      const f = unsolicitedNeighborAdvert({ mac, source, target, router });
      assert.equal(onesSum(pseudoAndMessage(f)), 0xffff);
      assert.deepEqual(decodeNdp(f), {
        ok: true,
        value: { type: 136, ethDestination: '33:33:00:00:00:01', ethSource: mac, source, destination: 'ff02::1', hopLimit: 255, target, router, solicited: false, override: true, targetLinkLayer: mac },
      });
    }),
  );
});

test('round trip: every NS decodes to what was built, to the target solicited-node group', () => {
  fc.assert(
    fc.property(nsArgsArb, ({ mac, source, target }) => {
      const f = neighborSolicitation({ mac, source, target });
      assert.equal(onesSum(pseudoAndMessage(f)), 0xffff);
      const group = solicitedNodeAddress(target);
      assert.deepEqual(decodeNdp(f), {
        ok: true,
        value: { type: 135, ethDestination: multicastMac(group), ethSource: mac, source, destination: group, hopLimit: 255, target, sourceLinkLayer: source === '::' ? undefined : mac },
      });
    }),
  );
});

/** What a single-byte corruption of a valid frame `f` (no padding) at `i` must give. */
function checkCorruption(f: Buffer, i: number, v: number): void {
  const base = decodeOk(f);
  const g = Buffer.from(f);
  g[i] = v;
  const r: NdpDecodeResult = decodeNdp(g);
  const at = `byte ${i} := ${v}`;
  if (i < 12 || (i >= 15 && i < 18) || (i === 14 && v >> 4 === 6)) {
    // Ethernet addresses, traffic class, flow label: not checked, the rest decodes the same.
    assert.deepEqual(r, { ok: true, value: { ...base, ethDestination: formatMac(g.subarray(0, 6)), ethSource: formatMac(g.subarray(6, 12)) } }, at);
  } else if (i < 15) {
    assert.deepEqual(r, { ok: false, reason: 'not_ipv6' }, at);
  } else if (i < 20) {
    // Payload length: longer runs past the frame; shorter cuts the message, which then fails
    // (the checksum almost surely) or, if it still verifies, says the same about what remains.
    if (54 + g.readUInt16BE(18) > g.length) assert.deepEqual(r, { ok: false, reason: 'truncated' }, at);
    else if (r.ok) assert.ok(r.value.type === base.type && r.value.target === base.target && r.value.source === base.source, at);
  } else if (i === 20) {
    assert.deepEqual(r, { ok: false, reason: 'not_icmpv6' }, at);
  } else if (i === 21) {
    assert.deepEqual(r, { ok: false, reason: 'bad_hop_limit' }, at);
  } else if (i === 54 && v !== 135 && v !== 136) {
    assert.deepEqual(r, { ok: false, reason: 'not_ndp' }, at);
  } else {
    // Addresses (in the pseudo-header), the message, the checksum itself: a one-byte change
    // always changes the one's complement sum, so the checksum catches it.
    assert.deepEqual(r, { ok: false, reason: 'bad_checksum' }, at);
  }
}

test('every single-byte corruption of known frames, every value: consistent, or the right reason', () => {
  const frames = [na(), na({ router: false }), neighborSolicitation({ mac: '02:00:00:00:00:01', source: 'fe80::1', target: 'fe80::2' }), neighborSolicitation({ mac: '02:00:00:00:00:01', source: '::', target: 'fe80::2' })];
  for (const f of frames) {
    for (let i = 0; i < f.length; i++) {
      for (let v = 0; v < 256; v++) if (v !== f[i]) checkCorruption(f, i, v);
    }
  }
});

test('every truncation of known frames: too_short below the headers, truncated after', () => {
  for (const f of [na(), neighborSolicitation({ mac: '02:00:00:00:00:01', source: '::', target: 'fe80::2' })]) {
    for (let n = 0; n < f.length; n++) decodeFails(f.subarray(0, n), n < 54 ? 'too_short' : 'truncated');
  }
});

test('random valid frames: every truncation and a random single-byte corruption (property)', () => {
  fc.assert(
    fc.property(frameArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (f, at, xor) => {
      const i = at % f.length;
      checkCorruption(f, i, (f[i] as number) ^ xor);
      for (let n = 0; n < f.length; n++) assert.equal(decodeNdp(f.subarray(0, n)).ok, false);
    }),
    { numRuns: 300 },
  );
});

test('decoder never throws on arbitrary bytes, and names a known reason (property)', () => {
  const reasons = new Set<string>(NDP_DECODE_REASONS);
  const check = (b: Uint8Array) => {
    const r = decodeNdp(b);
    if (!r.ok) assert.ok(reasons.has(r.reason), r.reason);
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), check), { numRuns: 500 });
  // Past the headers and the checksum: a valid Ethernet/IPv6 header, type 135 or 136, any
  // body, any claimed length, the checksum made right, so the later checks and the option walk see garbage.
  const header = na().subarray(0, 54);
  fc.assert(
    fc.property(fc.constantFrom(135, 136), fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 0, max: 130 }), fc.integer({ min: 0, max: 255 }), (type, body, len, hop) => {
      const g = Buffer.concat([header, Buffer.from([type]), body]);
      g.writeUInt16BE(len, 18);
      g[21] = hop;
      check(g);
      if (54 + len <= g.length && g.length >= 58) check(rechecksum(g));
    }),
    { numRuns: 2000 },
  );
});

test('option walk against a model: length 0, overrun, wrong link-layer length, first link-layer address wins (property)', () => {
  const optArb = fc.record({ type: fc.integer({ min: 0, max: 4 }), units: fc.integer({ min: 0, max: 3 }), fill: fc.uint8Array({ minLength: 24, maxLength: 24 }) });
  fc.assert(
    fc.property(fc.boolean(), fc.array(optArb, { maxLength: 5 }), fc.integer({ min: 0, max: 7 }), (isNa, opts, cut) => {
      const base = isNa ? na() : neighborSolicitation({ mac: '02:00:00:00:00:01', source: 'fe80::1', target: 'fe80::2' });
      const wanted = isNa ? 2 : 1;
      const bytes = opts.map((o) => {
        const b = Buffer.alloc(Math.max(o.units * 8, 2));
        b.set(o.fill.subarray(0, b.length));
        b[0] = o.type;
        b[1] = o.units;
        return b;
      });
      let body = Buffer.concat([base.subarray(54, 78), ...bytes]);
      if (bytes.length > 0) body = body.subarray(0, body.length - Math.min(cut, body.length - 24));
      const g = Buffer.concat([base.subarray(0, 54), body]);
      g.writeUInt16BE(body.length, 18);
      // The model: walk the options as RFC 4861 4.6 / RFC 2464 section 8 say.
      let expected: string | undefined;
      let bad = false;
      for (let o = 24; o < body.length && !bad; ) {
        const units = o + 1 < body.length ? (body[o + 1] as number) : 0;
        if (units === 0 || o + units * 8 > body.length) bad = true;
        else {
          if (body[o] === wanted) {
            if (units !== 1) bad = true;
            else expected ??= formatMac(body.subarray(o + 2, o + 8));
          }
          o += units * 8;
        }
      }
      const r = decodeNdp(rechecksum(g));
      if (bad) return assert.deepEqual(r, { ok: false, reason: 'bad_option' });
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.equal(r.value.type === 136 ? r.value.targetLinkLayer : r.value.sourceLinkLayer, expected);
    }),
    { numRuns: 1000 },
  );
});
