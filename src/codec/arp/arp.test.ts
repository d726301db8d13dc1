import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeArp, gratuitousArp } from './arp.js';

test('gratuitous ARP frame: broadcast, our MAC, request with sender = target = the address', () => {
  const f = gratuitousArp('02:00:5e:00:01:33', '198.18.0.100');
  assert.equal(f.length, 42);
  assert.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff');
  assert.equal(f.subarray(6, 12).toString('hex'), '02005e000133');
  assert.equal(f.readUInt16BE(12), 0x0806);
  // Fixture written from RFC 826's layout: htype 1, ptype 0800, hlen 6, plen 4, op 1.
  assert.equal(f.subarray(14, 22).toString('hex'), '0001080006040001');
  const arp = decodeArp(f.subarray(14));
  assert.deepEqual(arp, {
    ok: true,
    value: { op: 1, senderMac: '02:00:5e:00:01:33', senderIp: '198.18.0.100', targetMac: '00:00:00:00:00:00', targetIp: '198.18.0.100' },
  });
});

test('ARP decoder never throws on garbage (property)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => void decodeArp(b)));
  assert.deepEqual(decodeArp(new Uint8Array(10)), { ok: false, reason: 'too_short' });
});
