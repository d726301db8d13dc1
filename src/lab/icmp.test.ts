import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEchoReply, encodeEchoRequest, inetChecksum, parseIPv4 } from './icmp.js';

/** A minimal IPv4 header (20 bytes, protocol ICMP) around an ICMP message. */
function ipv4(src: string, icmp: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[9] = 1;
  parseIPv4(src)?.copy(h, 12);
  return Buffer.concat([h, icmp]);
}

function asReply(req: Buffer): Buffer {
  const r = Buffer.from(req);
  r[0] = 0;
  r.writeUInt16BE(0, 2);
  r.writeUInt16BE(inetChecksum(r), 2);
  return r;
}

test('checksum: RFC 1071 example and odd lengths', () => {
  // RFC 1071 section 3 example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
  assert.equal(inetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex')), 0x220d);
  assert.equal(inetChecksum(Buffer.from([0xff])), 0x00ff);
});

test('echo request: type 8, id, seq, verifying checksum', () => {
  const b = encodeEchoRequest(0x1234, 7, Buffer.from('hi'));
  assert.equal(b[0], 8);
  assert.equal(b.readUInt16BE(4), 0x1234);
  assert.equal(b.readUInt16BE(6), 7);
  assert.equal(inetChecksum(b), 0);
});

test('decode: a reply is recognised; requests, corrupt and truncated ones are not', () => {
  const req = encodeEchoRequest(42, 3);
  assert.deepEqual(decodeEchoReply(ipv4('198.18.0.2', asReply(req))), { source: '198.18.0.2', id: 42, seq: 3 });
  assert.equal(decodeEchoReply(ipv4('198.18.0.2', req)), null);
  const bad = asReply(req);
  bad[7] = (bad[7] ?? 0) ^ 1;
  assert.equal(decodeEchoReply(ipv4('198.18.0.2', bad)), null);
  assert.equal(decodeEchoReply(ipv4('198.18.0.2', asReply(req)).subarray(0, 24)), null);
  assert.equal(decodeEchoReply(Buffer.alloc(3)), null);
});

test('parseIPv4', () => {
  assert.deepEqual([...(parseIPv4('198.18.0.100') ?? [])], [198, 18, 0, 100]);
  assert.equal(parseIPv4('198.18.0'), null);
  assert.equal(parseIPv4('198.18.0.256'), null);
  assert.equal(parseIPv4('a.b.c.d'), null);
});
