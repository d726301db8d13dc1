import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeControlMessage, ipv6ArrivalInfo, parseControlMessages, IPPROTO_IPV6, IPV6_HOPLIMIT, IPV6_PKTINFO, SIZEOF_CMSGHDR } from './cmsg.js';
import { parseIPv6 } from '../lib/ip-bytes.js';

const int = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
};
const pktinfo = (addr: string, ifindex: number) => Buffer.concat([Buffer.from(parseIPv6(addr)!), int(ifindex)]);

test('the hop limit and the packet info as the kernel lays them out (16-byte headers, 8-byte alignment)', () => {
  const hop = encodeControlMessage(IPPROTO_IPV6, IPV6_HOPLIMIT, int(255));
  assert.equal(hop.length, 24, 'cmsg_len 20, the next one at 24');
  assert.equal(hop.readBigUInt64LE(0), 20n);
  const info = encodeControlMessage(IPPROTO_IPV6, IPV6_PKTINFO, pktinfo('ff02::12', 7));
  const buf = Buffer.concat([hop, info]);
  const r = parseControlMessages(buf);
  assert.ok(r.ok);
  assert.deepEqual(r.value.map((m) => [m.level, m.type, m.data.length]), [[41, 52, 4], [41, 50, 20]]);
  assert.deepEqual(ipv6ArrivalInfo(r.value), { hopLimit: 255, destination: 'ff02::12', ifindex: 7 });
});

test('msg_controllen bounds the walk; other levels and short data are ignored', () => {
  const hop = encodeControlMessage(IPPROTO_IPV6, IPV6_HOPLIMIT, int(64));
  const other = encodeControlMessage(1 /* SOL_SOCKET */, 29, Buffer.alloc(16));
  const short = encodeControlMessage(IPPROTO_IPV6, IPV6_PKTINFO, Buffer.alloc(8));
  const buf = Buffer.concat([other, short, hop, Buffer.alloc(64, 0xff)]);
  const r = parseControlMessages(buf, other.length + short.length + hop.length);
  assert.ok(r.ok);
  assert.equal(r.value.length, 3);
  assert.deepEqual(ipv6ArrivalInfo(r.value), { hopLimit: 64 });
  assert.deepEqual(parseControlMessages(buf, 0), { ok: true, value: [] });
});

test('garbage: a header cut short, a length below a header or past the end is a reason, never a throw', () => {
  const hop = encodeControlMessage(IPPROTO_IPV6, IPV6_HOPLIMIT, int(255));
  assert.deepEqual(parseControlMessages(hop.subarray(0, 10)), { ok: false, reason: 'short_header', at: 0 });
  const tooLong = Buffer.from(hop);
  tooLong.writeBigUInt64LE(BigInt(hop.length + 1), 0);
  assert.deepEqual(parseControlMessages(tooLong), { ok: false, reason: 'bad_length', at: 0 });
  const tooShort = Buffer.from(hop);
  tooShort.writeBigUInt64LE(BigInt(SIZEOF_CMSGHDR - 1), 0);
  assert.deepEqual(parseControlMessages(tooShort), { ok: false, reason: 'bad_length', at: 0 });
  const huge = Buffer.from(hop);
  huge.writeBigUInt64LE(2n ** 63n, 0);
  assert.equal(parseControlMessages(huge).ok, false);
});

test('property: any bytes parse or give a reason; every message found lies inside the buffer', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), fc.nat(300), (bytes, n) => {
      const buf = Buffer.from(bytes);
      const r = parseControlMessages(buf, n);
      if (!r.ok) return ['short_header', 'bad_length'].includes(r.reason);
      for (const m of r.value) assert.ok(m.data.byteOffset + m.data.length <= buf.byteOffset + buf.length);
      ipv6ArrivalInfo(r.value);
      return true;
    }),
  );
});

test('property: what is encoded is parsed back, in order', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ level: fc.integer({ min: 0, max: 300 }), type: fc.integer({ min: 0, max: 100 }), data: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 6 }), (msgs) => {
      const buf = Buffer.concat(msgs.map((m) => encodeControlMessage(m.level, m.type, m.data)));
      const r = parseControlMessages(buf);
      assert.ok(r.ok);
      assert.deepEqual(r.value.map((m) => ({ level: m.level, type: m.type, data: Buffer.from(m.data) })), msgs.map((m) => ({ level: m.level, type: m.type, data: Buffer.from(m.data) })));
    }),
  );
});
