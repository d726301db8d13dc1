import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeCounterObject, encodeCounterDump, NFT_GETOBJ, NFT_NEWOBJ, NFTA_OBJ_TABLE, NFTA_OBJ_TYPE } from './nftables.js';
import { NLM_F_DUMP, NLM_F_REQUEST, splitMessages, type NlMessage } from './nlmsg.js';

// Captured from Linux 6.18: `counter backend_198_18_11_2_8080 { packets 5 bytes 300 }` and an
// empty `counter b` in table inet fwlbtest (seq and pid zeroed). Test data only.
const ANSWER_A =
  '7c000000120a02080000000000000000010000020d00010066776c6274657374000000001d0002006261636b656e645f3139385f31385f31315f325f383038300000000008000300000000010c000600000000000000000108000500000000001c0004000c000100000000000000012c0c0002000000000000000005';
const ANSWER_B =
  '64000000120a02080000000000000000010000020d00010066776c627465737400000000060002006200000008000300000000010c000600000000000000000208000500000000001c0004000c00010000000000000000000c0002000000000000000000';

const msg = (h: string): NlMessage => {
  const s = splitMessages(Buffer.from(h, 'hex'));
  assert.ok(s.ok);
  return s.value[0] as NlMessage;
};

test('the kernel numbers', () => {
  assert.equal(NFT_GETOBJ, 0x0a13);
  assert.equal(NFT_NEWOBJ, 0x0a12);
});

test('a counter dump request: GETOBJ, dump flags, inet, the table name and the counter type', () => {
  const b = encodeCounterDump(7, 'inet', 'fwlb');
  const m = splitMessages(b);
  assert.ok(m.ok);
  const one = m.value[0] as NlMessage;
  assert.equal(one.header.type, NFT_GETOBJ);
  assert.equal(one.header.flags, NLM_F_REQUEST | NLM_F_DUMP);
  assert.equal(one.header.seq, 7);
  assert.equal(one.payload[0], 1, 'NFPROTO_INET');
  // nfgenmsg, then NFTA_OBJ_TABLE "fwlb\0" (len 9, padded to 12), then NFTA_OBJ_TYPE be32 1.
  assert.equal(one.payload.readUInt16LE(6), NFTA_OBJ_TABLE);
  assert.equal(one.payload.toString('utf8', 8, 12), 'fwlb');
  assert.equal(one.payload.readUInt16LE(18), NFTA_OBJ_TYPE);
  assert.equal(one.payload.readUInt32BE(20), 1);
});

test('kernel answers decode to the counters', () => {
  assert.deepEqual(decodeCounterObject(msg(ANSWER_A)), { ok: true, value: { table: 'fwlbtest', name: 'backend_198_18_11_2_8080', packets: 5, bytes: 300 } });
  assert.deepEqual(decodeCounterObject(msg(ANSWER_B)), { ok: true, value: { table: 'fwlbtest', name: 'b', packets: 0, bytes: 0 } });
});

test('refusals: other message types, short payloads, objects that are not counters', () => {
  const a = msg(ANSWER_A);
  assert.equal(decodeCounterObject({ ...a, header: { ...a.header, type: 0x100 } }).ok, false);
  const short = decodeCounterObject({ ...a, payload: a.payload.subarray(0, 2) });
  assert.equal(short.ok ? '' : short.reason, 'short_payload');
  const quota = Buffer.from(a.payload);
  quota.writeUInt32BE(2, quota.indexOf(Buffer.from('0800030000000001', 'hex')) + 4);
  const q = decodeCounterObject({ ...a, payload: quota });
  assert.equal(q.ok ? '' : q.reason, 'bad_attribute_value');
});

test('property: mutilated answers and garbage are refused with a reason, never thrown', () => {
  const a = msg(ANSWER_A);
  fc.assert(
    fc.property(fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }), fc.nat(), (edits, cut) => {
      const p = Buffer.from(a.payload);
      for (const e of edits) p[e.at % p.length] = e.v;
      const r = decodeCounterObject({ header: a.header, payload: p.subarray(0, cut % (p.length + 1)) });
      if (!r.ok) assert.equal(typeof r.reason, 'string');
      else assert.ok(Number.isSafeInteger(r.value.packets) && Number.isSafeInteger(r.value.bytes));
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const r = decodeCounterObject({ header: a.header, payload: Buffer.from(bytes) });
      assert.equal(typeof r.ok, 'boolean');
    }),
    { numRuns: 1000 },
  );
});
