import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { udpDropsOf } from './udp-drops.js';

// /proc/net/udp of a node (Linux 6.1) with the sync socket on 198.18.2.1:3780 (0x0EC4) that
// dropped 17515 datagrams, and another socket on port 53.
const SAMPLE = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  310: 010212C6:0EC4 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 55131 2 0000000000000000 17515
 1234: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 55132 2 0000000000000000 3
`;

test('drops of the sockets on a port', () => {
  assert.equal(udpDropsOf(SAMPLE, 3780), 17515);
  assert.equal(udpDropsOf(SAMPLE, 53), 3);
  assert.equal(udpDropsOf(SAMPLE, 3781), 0);
  assert.equal(udpDropsOf('', 3780), 0);
});

test('property: any text gives a count, never a throw', () => {
  fc.assert(fc.property(fc.string({ maxLength: 500 }), fc.integer({ min: 0, max: 65535 }), (t, p) => {
    const n = udpDropsOf(t, p);
    assert.ok(Number.isSafeInteger(n) && n >= 0);
  }));
});
