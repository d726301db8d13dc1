import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAdvert } from './packet.js';
import { decodeIPv4Advert } from './ipv4.js';
import { dropCounterRows, emptyDropCounters, mergeDropCounters, recordDrop, VRRP_DROP_REASONS } from './drop.js';

test('drop counters: start at zero for every reason, count immutably, export in a stable order', () => {
  const zero = emptyDropCounters();
  assert.equal(Object.keys(zero).length, VRRP_DROP_REASONS.length);
  assert.ok(Object.values(zero).every((n) => n === 0));
  const one = recordDrop(zero, 'bad_ttl');
  const two = recordDrop(one, 'bad_ttl', 2);
  assert.equal(zero.bad_ttl, 0);
  assert.equal(one.bad_ttl, 1);
  assert.equal(two.bad_ttl, 3);
  assert.equal(mergeDropCounters(one, two).bad_ttl, 4);
  const rows = dropCounterRows(two);
  assert.deepEqual(rows.map((r) => r.reason), [...VRRP_DROP_REASONS]);
  assert.equal(rows.find((r) => r.reason === 'bad_ttl')?.count, 3);
  assert.equal(new Set(VRRP_DROP_REASONS).size, VRRP_DROP_REASONS.length);
});

test('a receive loop counts every rejected packet by reason', () => {
  let counters = emptyDropCounters();
  const meta = { src: '198.18.0.2', dst: '224.0.0.18', ttl: 255, family: 4 as const };
  for (const pkt of [Buffer.alloc(3), Buffer.alloc(12), Buffer.from([0x31, 1, 1, 1, 0, 1, 0, 0, 1, 2, 3, 4])]) {
    const r = decodeAdvert(pkt, meta);
    if (!r.ok) counters = recordDrop(counters, r.reason);
  }
  const ip = decodeIPv4Advert(Buffer.alloc(30));
  if (!ip.ok) counters = recordDrop(counters, ip.reason);
  assert.equal(counters.too_short, 1);
  assert.equal(counters.bad_version, 1);
  assert.equal(counters.bad_checksum, 1);
  assert.equal(counters.bad_ip_version, 1);
});
