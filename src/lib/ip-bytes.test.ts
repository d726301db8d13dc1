import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { canonicalAddress, compareAddresses, formatIPv4, formatIPv6, parseAddress, parseIPv4, parseIPv6 } from './ip-bytes.js';

test('IPv4 text <-> bytes', () => {
  assert.deepEqual([...(parseIPv4('192.0.2.255') ?? [])], [192, 0, 2, 255]);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4/24', ' 1.2.3.4', 'a.b.c.d', 42, undefined]) {
    assert.equal(parseIPv4(bad), undefined, String(bad));
  }
  assert.equal(formatIPv4(Uint8Array.from([9, 10, 198, 18, 0, 100]), 2), '198.18.0.100');
});

test('IPv6 text <-> bytes, canonical form of RFC 5952', () => {
  const cases: Array<[string, string]> = [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // longest run first-most on a tie
    ['2001:0db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed
    ['FF02::12', 'ff02::12'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::1%eth0', 'fe80::1'], // the zone is not part of the address
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], // IPv4-mapped keeps its dotted quad (RFC 5952 section 5)
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ];
  for (const [text, canonical] of cases) {
    const b = parseIPv6(text);
    assert.ok(b, text);
    assert.equal(formatIPv6(b), canonical, text);
  }
  for (const bad of ['', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', 'g::1', '12345::1', '1.2.3.4', '::1.2.3', 7]) {
    assert.equal(parseIPv6(bad), undefined, String(bad));
  }
});

test('parse/format round trips agree with node:net (property)', () => {
  fc.assert(
    fc.property(fc.ipV4(), (a) => {
      const b = parseIPv4(a);
      assert.ok(b);
      assert.equal(formatIPv4(b), a);
    }),
  );
  fc.assert(
    fc.property(fc.ipV6(), (a) => {
      const b = parseIPv6(a);
      assert.ok(b, a);
      const text = formatIPv6(b);
      assert.ok(isIPv6(text), text);
      assert.deepEqual(parseIPv6(text), b);
    }),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 45 }), (s) => {
      if (parseIPv4(s)) assert.ok(isIPv4(s), s);
      if (parseIPv6(s)) assert.ok(isIPv6(s.split('%')[0] ?? ''), s);
    }),
  );
});

test('canonicalAddress strips the prefix length; parseAddress honours the family', () => {
  assert.equal(canonicalAddress('198.18.0.100/24'), '198.18.0.100');
  assert.equal(canonicalAddress('2001:DB8::0:1/64'), '2001:db8::1');
  assert.equal(canonicalAddress('nope'), undefined);
  assert.equal(parseAddress('10.0.0.1', 6), undefined);
  assert.equal(parseAddress('::1', 4), undefined);
  assert.ok(parseAddress('::1'));
});

test('compareAddresses: unsigned integers in network byte order (RFC 5798 6.4.3)', () => {
  assert.ok(compareAddresses('10.0.0.2', '10.0.0.1') > 0);
  assert.ok(compareAddresses('9.255.255.255', '10.0.0.0') < 0);
  assert.ok(compareAddresses('128.0.0.1', '127.255.255.255') > 0); // unsigned, not signed
  assert.equal(compareAddresses('fe80::1', 'FE80:0::1'), 0);
  assert.ok(compareAddresses('fe80::2', 'fe80::1') > 0);
  assert.ok(compareAddresses('garbage', '0.0.0.0') < 0); // garbage never wins a tie
});
