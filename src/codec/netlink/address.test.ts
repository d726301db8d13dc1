import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { formatIp, formatMac, parseCidr, parseIp, parseMac } from './address.js';
import { formatIPv6, parseIPv4, parseIPv6 } from '../../lib/ip-bytes.js';

test('IPv4 text <-> bytes', () => {
  assert.deepEqual([...(parseIPv4('198.18.0.255') ?? [])], [198, 18, 0, 255]);
  for (const bad of ['198.18.0', '198.18.0.256', '01.2.3.4', '1.2.3.4 ', '', '1.2.3.4.5', 'a.b.c.d']) assert.equal(parseIPv4(bad), undefined, bad);
  assert.equal(formatIp(4, Buffer.of(10, 0, 0, 1)), '10.0.0.1');
  assert.equal(formatIp(4, Buffer.of(10, 0, 0)), undefined);
});

test('IPv6 text -> bytes, and RFC 5952 text back', () => {
  const cases: Array<[string, string]> = [
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run
    ['2001:DB8::A', '2001:db8::a'],
    ['::ffff:198.18.0.1', '::ffff:198.18.0.1'],
    ['64:ff9b::198.18.0.1', '64:ff9b::c612:1'],
  ];
  for (const [input, want] of cases) {
    const b = parseIPv6(input);
    assert.ok(b, input);
    assert.equal(formatIPv6(b), want, input);
  }
  for (const bad of ['1::2::3', '12345::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', ':1:2', 'g::', '::1.2.3', '']) {
    assert.equal(parseIPv6(bad), undefined, bad);
  }
});

test('property: 16 random bytes -> text -> the same bytes, and Node agrees the text is IPv6', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      const t = formatIPv6(b);
      assert.ok(isIPv6(t), t);
      assert.deepEqual([...(parseIPv6(t) ?? [])], [...b]);
    }),
    { numRuns: 2000 },
  );
});

test('parseCidr: prefix lengths, host addresses, refusals', () => {
  assert.deepEqual(parseCidr('198.18.0.1/24'), { family: 4, bytes: Buffer.of(198, 18, 0, 1), prefixLen: 24 });
  assert.equal(parseCidr('198.18.0.1')?.prefixLen, 32);
  assert.equal(parseCidr('2001:db8::1')?.prefixLen, 128);
  assert.equal(parseCidr('2001:db8::1/64')?.family, 6);
  assert.equal(parseCidr('0.0.0.0/0')?.prefixLen, 0);
  for (const bad of ['198.18.0.1/33', '2001:db8::1/129', '198.18.0.1/', '198.18.0.1/024', '198.18.0.1/2/3', 'x/24', '198.18.0.1/-1']) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
  assert.equal(parseIp('::1')?.family, 6);
  assert.equal(parseIp('nope'), undefined);
});

test('MAC text', () => {
  assert.equal(formatMac(Buffer.of(2, 0, 0, 0, 0, 0x0a)), '02:00:00:00:00:0a');
  assert.equal(formatMac(Buffer.alloc(0)), '');
  assert.deepEqual([...(parseMac('02:00:00:00:00:0A') ?? [])], [2, 0, 0, 0, 0, 10]);
  assert.equal(parseMac('02:00:00:00:00:0'), undefined);
});
