import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sockaddrIn, sockaddrIn6, sockaddrOf, AF_INET, AF_INET6 } from './libc.js';

test('struct sockaddr_in6: family, port in network order, the address, the scope in host order', () => {
  const sa = sockaddrIn6('fe80::1', 7, 3780);
  assert.equal(sa.length, 28);
  assert.equal(sa.readUInt16LE(0), AF_INET6);
  assert.equal(sa.readUInt16BE(2), 3780);
  assert.equal(sa.readUInt32LE(4), 0, 'flow info');
  assert.deepEqual([...sa.subarray(8, 24)], [0xfe, 0x80, ...Array(13).fill(0), 1]);
  assert.equal(sa.readUInt32LE(24), 7);
  assert.throws(() => sockaddrIn6('198.18.0.1'), /not an IPv6 address/);
});

test('sockaddrOf picks the family from the address', () => {
  assert.equal(sockaddrOf('ff02::12').readUInt16LE(0), AF_INET6);
  assert.deepEqual(sockaddrOf('224.0.0.18'), sockaddrIn('224.0.0.18'));
  assert.equal(sockaddrOf('224.0.0.18').readUInt16LE(0), AF_INET);
});
