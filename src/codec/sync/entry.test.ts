import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bodyToEntry, entryToBody } from './entry.js';
import type { ConntrackEntry } from '../netlink/ctnetlink.js';

const E: ConntrackEntry = {
  family: 4,
  orig: { src: '198.18.0.10', dst: '198.18.0.100', proto: 6, srcPort: 40000, dstPort: 7 },
  reply: { src: '198.18.1.11', dst: '198.18.0.10', proto: 6, srcPort: 7, dstPort: 40000 },
  status: 0x1ae,
  timeout: 431999,
  mark: 0,
  id: 12345,
  use: 1,
  tcp: { state: 'ESTABLISHED', wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x23, flagsReply: 0x23 },
};

test('an entry survives the trip through a sync record (what a peer needs to recreate it)', () => {
  const back = bodyToEntry(entryToBody(E));
  assert.ok(back.ok);
  const { id: _id, use: _use, ...kept } = E;
  assert.deepEqual(back.value, kept);
});

test('bad bodies are refused with a reason, never thrown (property)', () => {
  assert.deepEqual(bodyToEntry(new Uint8Array([])), { ok: false, reason: 'empty' });
  assert.deepEqual(bodyToEntry(Buffer.from([2, 0x7b, 0x7d])), { ok: false, reason: 'bad_version' });
  assert.deepEqual(bodyToEntry(Buffer.concat([Buffer.from([1]), Buffer.from('{nope')])), { ok: false, reason: 'bad_json' });
  const wrongFamily = entryToBody({ ...E, orig: { ...E.orig, src: '2001:db8::1' } });
  assert.deepEqual(bodyToEntry(wrongFamily), { ok: false, reason: 'bad_entry' });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => void bodyToEntry(b)));
  fc.assert(fc.property(fc.jsonValue(), (j) => void bodyToEntry(Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(j))]))));
});
