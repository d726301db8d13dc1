import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as osConstants } from 'node:os';
import fc from 'fast-check';
import { errnoName, errnoNumber } from './errno.js';
import * as F from './fixtures.js';
import {
  NlWriter,
  attr,
  decodeNlDone,
  decodeNlError,
  decodeNlMsgHdr,
  encodeAttr,
  encodeAttrString,
  encodeAttrU32,
  encodeAttrU8,
  encodeNlMsg,
  NETLINK_DECODE_REASONS,
  NLA_ALIGN,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_ALIGN,
  NLMSG_DONE,
  NLMSG_ERROR,
  nlaBinary,
  nlaFlag,
  nlaS32,
  nlaString,
  nlaU16,
  nlaU32,
  nlaU8,
  type NlMessage,
  parseAttrs,
  splitAttrs,
  splitMessages,
} from './nlmsg.js';
import { decodeRtMessage } from './rtnetlink.js';

const hex = (s: string) => Buffer.from(s, 'hex');
const ALL_FIXTURES = Object.entries(F).filter((e): e is [string, string] => typeof e[1] === 'string');

function only(datagram: Buffer): NlMessage {
  const s = splitMessages(datagram);
  assert.ok(s.ok, 'split');
  assert.equal(s.value.length, 1);
  return s.value[0] as NlMessage;
}

/** Every decoder of this layer and the next, on every message of a datagram: must not throw. */
function decodeEverything(b: Buffer): void {
  const s = splitMessages(b);
  decodeNlMsgHdr(b);
  splitAttrs(b);
  parseAttrs(b, { 1: attr('A', nlaU32), 2: attr('B', nlaString), 3: attr('C', nlaU8) });
  if (!s.ok) {
    assert.ok(NETLINK_DECODE_REASONS.includes(s.reason));
    return;
  }
  for (const m of s.value) {
    for (const r of [decodeNlError(m), decodeNlDone(m), decodeRtMessage(m)]) {
      if (!r.ok) assert.ok(NETLINK_DECODE_REASONS.includes(r.reason), r.reason);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Alignment and encoding

test('NLMSG_ALIGN / NLA_ALIGN round up to 4', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 16, 17].map(NLMSG_ALIGN), [0, 4, 4, 4, 4, 8, 16, 20]);
  assert.deepEqual([0, 1, 4, 7, 8].map(NLA_ALIGN), [0, 4, 4, 8, 8]);
});

test('encodeNlMsg writes nlmsghdr with the total length and pads every part', () => {
  const m = encodeNlMsg({ type: 0x1234, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 0xdeadbeef, pid: 7 }, Buffer.of(1, 2, 3), Buffer.of(9));
  assert.equal(m.length, 16 + 4 + 4);
  assert.deepEqual(decodeNlMsgHdr(m), { ok: true, value: { len: 24, type: 0x1234, flags: 5, seq: 0xdeadbeef, pid: 7 } });
  assert.deepEqual([...m.subarray(16)], [1, 2, 3, 0, 9, 0, 0, 0]);
});

test('encodeAttr: nla_len counts header + data, not the padding', () => {
  const a = encodeAttrString(3, 'lo');
  assert.deepEqual([...a], [7, 0, 3, 0, 0x6c, 0x6f, 0, 0]);
  assert.deepEqual([...encodeAttrU8(16, 6)], [5, 0, 16, 0, 6, 0, 0, 0]);
  assert.deepEqual([...encodeAttrU32(4, 1500)], [8, 0, 4, 0, 0xdc, 0x05, 0, 0]);
  assert.deepEqual([...encodeAttr(9, Buffer.alloc(0))], [4, 0, 9, 0]);
  assert.throws(() => encodeAttr(1, Buffer.alloc(0xffff)), RangeError);
});

// ---------------------------------------------------------------------------------------
// Attribute tables

const TABLE = {
  1: attr('T_U32', nlaU32),
  2: attr('T_STR', nlaString),
  3: attr('T_U8', nlaU8),
  4: attr('T_FLAG', nlaFlag),
  5: attr('T_BIN', nlaBinary),
  6: attr('T_U16', nlaU16),
  7: attr('T_S32', nlaS32),
} as const;

test('parseAttrs: round trip through the encoders, typed by the kernel names', () => {
  const buf = Buffer.concat([
    encodeAttrU32(1, 0xfffffffe),
    encodeAttrString(2, 'eth0:vip'),
    encodeAttrU8(3, 200),
    encodeAttr(4, Buffer.alloc(0)),
    encodeAttr(5, Buffer.of(1, 2, 3, 4, 5)),
    encodeAttr(6, Buffer.of(0x34, 0x12)),
    encodeAttr(7, Buffer.of(0xff, 0xff, 0xff, 0xff)),
  ]);
  const r = parseAttrs(buf, TABLE);
  assert.ok(r.ok);
  assert.equal(r.value.T_U32, 0xfffffffe);
  assert.equal(r.value.T_STR, 'eth0:vip');
  assert.equal(r.value.T_U8, 200);
  assert.equal(r.value.T_FLAG, true);
  assert.deepEqual([...(r.value.T_BIN ?? [])], [1, 2, 3, 4, 5]);
  assert.equal(r.value.T_U16, 0x1234);
  assert.equal(r.value.T_S32, -1);
});

test('parseAttrs skips unknown types, keeps the last of repeated ones, masks NLA_F_NESTED', () => {
  const nested = encodeAttrU32(1, 3);
  nested.writeUInt16LE(1 | NLA_F_NESTED, 2);
  const buf = Buffer.concat([encodeAttrU32(99, 1), encodeAttrU32(1, 1), encodeAttrString(1000, 'x'), nested]);
  assert.deepEqual(parseAttrs(buf, TABLE), { ok: true, value: { T_U32: 3 } });
});

test('parseAttrs rejects bad lengths and values, ignores a short tail', () => {
  const short = Buffer.of(3, 0, 1, 0); // nla_len 3 < NLA_HDRLEN
  assert.equal(parseAttrs(short, TABLE).ok, false);
  assert.deepEqual(parseAttrs(short, TABLE), { ok: false, reason: 'bad_attribute_length', detail: 'nla_len 3 of type 1 at offset 0' });
  const long = Buffer.of(12, 0, 1, 0, 0, 0, 0, 0); // claims 12, has 8
  assert.equal((parseAttrs(long, TABLE) as { reason: string }).reason, 'bad_attribute_length');
  const badU32 = encodeAttr(1, Buffer.of(1, 2, 3));
  assert.equal((parseAttrs(badU32, TABLE) as { reason: string }).reason, 'bad_attribute_value');
  const badFlag = encodeAttr(4, Buffer.of(1));
  assert.equal((parseAttrs(badFlag, TABLE) as { reason: string }).reason, 'bad_attribute_value');
  // An unknown attribute is skipped whatever its data, but not whatever its length.
  assert.equal(parseAttrs(encodeAttr(50, Buffer.of(1, 2, 3)), TABLE).ok, true);
  assert.deepEqual(parseAttrs(Buffer.concat([encodeAttrU8(3, 1), Buffer.of(0, 0)]), TABLE), { ok: true, value: { T_U8: 1 } });
  assert.deepEqual(parseAttrs(Buffer.alloc(0), TABLE), { ok: true, value: {} });
  // The last attribute may come without its padding.
  assert.deepEqual(parseAttrs(encodeAttrU8(3, 9).subarray(0, 5), TABLE), { ok: true, value: { T_U8: 9 } });
});

// ---------------------------------------------------------------------------------------
// Splitting datagrams

test('splitMessages: a real multi-part dump datagram', () => {
  const s = splitMessages(hex(F.ADDR_DUMP));
  assert.ok(s.ok);
  assert.equal(s.value.length, 6);
  for (const m of s.value) {
    assert.equal(m.header.type, 20); // RTM_NEWADDR
    assert.ok(m.header.flags & NLM_F_MULTI);
    assert.equal(m.payload.length, m.header.len - 16);
  }
  assert.equal(new Set(s.value.map((m) => m.header.seq)).size, 1);
});

test('splitMessages: two messages built here, and an empty datagram', () => {
  const a = encodeNlMsg({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 1 }, Buffer.alloc(4));
  const b = encodeNlMsg({ type: 0x20, flags: 0, seq: 2 }, Buffer.of(1, 2, 3));
  const s = splitMessages(Buffer.concat([a, b]));
  assert.ok(s.ok);
  assert.deepEqual(
    s.value.map((m) => [m.header.type, m.header.seq, m.payload.length]),
    [
      [NLMSG_DONE, 1, 4],
      [0x20, 2, 4],
    ],
  );
  assert.deepEqual(splitMessages(Buffer.alloc(0)), { ok: true, value: [] });
});

test('splitMessages rejects a header that does not fit and lengths below 16 or beyond the datagram', () => {
  assert.equal((splitMessages(Buffer.alloc(15)) as { reason: string }).reason, 'short_header');
  const m = encodeNlMsg({ type: 0x20, flags: 0, seq: 1 }, Buffer.alloc(8));
  const low = Buffer.from(m);
  low.writeUInt32LE(15, 0);
  assert.equal((splitMessages(low) as { reason: string }).reason, 'bad_message_length');
  const zero = Buffer.from(m);
  zero.writeUInt32LE(0, 0); // would loop forever if accepted
  assert.equal((splitMessages(zero) as { reason: string }).reason, 'bad_message_length');
  const high = Buffer.from(m);
  high.writeUInt32LE(m.length + 1, 0);
  assert.equal((splitMessages(high) as { reason: string }).reason, 'bad_message_length');
  const huge = Buffer.from(m);
  huge.writeUInt32LE(0xffffffff, 0);
  assert.equal((splitMessages(huge) as { reason: string }).reason, 'bad_message_length');
  // A partial second header.
  assert.equal((splitMessages(Buffer.concat([m, Buffer.alloc(8)])) as { reason: string }).reason, 'short_header');
});

// ---------------------------------------------------------------------------------------
// NLMSG_ERROR / NLMSG_DONE, from the kernel

test('ACK: NLMSG_ERROR 0, capped, with the request header', () => {
  const m = only(hex(F.NEWADDR_ACK));
  assert.equal(m.header.type, NLMSG_ERROR);
  assert.ok(m.header.flags & NLM_F_CAPPED);
  const e = decodeNlError(m);
  assert.ok(e.ok);
  assert.equal(e.value.errno, 0);
  assert.equal(e.value.errnoName, 'OK');
  assert.equal(e.value.request.type, 20); // RTM_NEWADDR
  assert.equal(e.value.request.seq, m.header.seq);
  assert.equal(e.value.request.flags, 0x605); // REQUEST|ACK|EXCL|CREATE
  assert.equal(e.value.extack, undefined);
});

test('EEXIST and EADDRNOTAVAIL with the kernel message; ENODEV without', () => {
  const eexist = decodeNlError(only(hex(F.NEWADDR_EEXIST)));
  assert.ok(eexist.ok);
  assert.equal(eexist.value.errno, 17);
  assert.equal(eexist.value.errnoName, 'EEXIST');
  assert.deepEqual(eexist.value.extack, { msg: 'ipv4: Address already assigned' });
  const m = only(hex(F.NEWADDR_EEXIST));
  assert.equal(m.header.flags, NLM_F_CAPPED | NLM_F_ACK_TLVS);

  const notavail = decodeNlError(only(hex(F.DELADDR_EADDRNOTAVAIL)));
  assert.ok(notavail.ok);
  assert.equal(notavail.value.errnoName, 'EADDRNOTAVAIL');
  assert.equal(notavail.value.request.type, 21); // RTM_DELADDR
  assert.deepEqual(notavail.value.extack, { msg: 'ipv4: Address not found' });

  const nodev = decodeNlError(only(hex(F.GETLINK_ENODEV)));
  assert.ok(nodev.ok);
  assert.equal(nodev.value.errnoName, 'ENODEV');
  assert.equal(nodev.value.extack, undefined);
});

test('an uncapped error echoes the whole request before its TLVs', () => {
  const req = encodeNlMsg({ type: 20, flags: 0x605, seq: 9, pid: 0 }, Buffer.alloc(8), encodeAttrU32(2, 1));
  const payload = Buffer.alloc(4);
  payload.writeInt32LE(-22, 0);
  const tlvs = Buffer.concat([encodeAttrString(1, 'bad thing'), encodeAttrU32(2, 24)]);
  const msg = encodeNlMsg({ type: NLMSG_ERROR, flags: NLM_F_ACK_TLVS, seq: 9 }, payload, req, tlvs);
  const e = decodeNlError(only(msg));
  assert.ok(e.ok);
  assert.equal(e.value.errnoName, 'EINVAL');
  assert.deepEqual(e.value.extack, { msg: 'bad thing', offset: 24 });
  assert.equal(e.value.request.len, req.length);
  // The echoed request claims more than there is.
  const lying = Buffer.from(msg);
  lying.writeUInt32LE(0xffff, 16 + 4);
  assert.equal((decodeNlError(only(lying)) as { reason: string }).reason, 'short_payload');
});

test('NLMSG_ERROR / NLMSG_DONE: short payloads, wrong types', () => {
  const short = encodeNlMsg({ type: NLMSG_ERROR, flags: 0, seq: 1 }, Buffer.alloc(16));
  assert.equal((decodeNlError(only(short)) as { reason: string }).reason, 'short_payload');
  const done = only(hex(F.ADDR_DUMP_DONE));
  assert.equal((decodeNlError(done) as { reason: string }).reason, 'unexpected_type');
  assert.deepEqual(decodeNlDone(done), { ok: true, value: { errno: 0, errnoName: 'OK' } });
  assert.ok(done.header.flags & NLM_F_MULTI);
  const failed = Buffer.alloc(4);
  failed.writeInt32LE(-4, 0);
  assert.deepEqual(decodeNlDone(only(encodeNlMsg({ type: NLMSG_DONE, flags: 2, seq: 1 }, failed))), {
    ok: true,
    value: { errno: 4, errnoName: 'EINTR' },
  });
  assert.deepEqual(decodeNlDone(only(encodeNlMsg({ type: NLMSG_DONE, flags: 2, seq: 1 }))), { ok: true, value: { errno: 0, errnoName: 'OK' } });
  assert.equal((decodeNlDone(only(encodeNlMsg({ type: NLMSG_ERROR, flags: 2, seq: 1 }))) as { reason: string }).reason, 'unexpected_type');
});

// ---------------------------------------------------------------------------------------
// errno names

test('errnoName agrees with Node (libuv) on every Linux errno Node knows', () => {
  const known = osConstants.errno as Record<string, number>;
  let checked = 0;
  for (const [name, n] of Object.entries(known)) {
    // Aliases: the table keeps the kernel's first name (EAGAIN, EDEADLK, EOPNOTSUPP).
    if (name === 'EWOULDBLOCK' || name === 'EDEADLOCK' || name === 'ENOTSUP') continue;
    assert.equal(errnoName(n), name, `errno ${n}`);
    checked++;
  }
  assert.ok(checked > 70);
  assert.equal(errnoName(17), 'EEXIST');
  assert.equal(errnoName(99), 'EADDRNOTAVAIL');
  assert.equal(errnoName(19), 'ENODEV');
  assert.equal(errnoName(524), 'ENOTSUPP');
  assert.equal(errnoName(9999), 'E9999');
  assert.equal(errnoNumber('EEXIST'), 17);
  assert.equal(errnoNumber('NOPE'), undefined);
});

// ---------------------------------------------------------------------------------------
// Never throw

test('every fixture truncated at every length: decoders answer, never throw', () => {
  for (const [name, h] of ALL_FIXTURES) {
    const full = hex(h);
    for (let n = 0; n <= full.length; n++) {
      const cut = full.subarray(0, n);
      assert.doesNotThrow(() => decodeEverything(cut), `${name} cut at ${n}`);
      const s = splitMessages(cut);
      // A cut inside the first message is always noticed.
      if (n > 0 && n < (full.readUInt32LE(0) >>> 0) && n < full.length) assert.equal(s.ok, false, `${name} cut at ${n}`);
    }
    // And the payload of each message cut short: the message-level decoders on their own.
    const s = splitMessages(full);
    assert.ok(s.ok, name);
    for (const m of s.value) {
      for (let n = 0; n <= m.payload.length; n++) {
        const mm: NlMessage = { header: m.header, payload: m.payload.subarray(0, n) };
        assert.doesNotThrow(() => {
          decodeNlError(mm);
          decodeNlDone(mm);
          decodeRtMessage(mm);
        }, `${name} payload cut at ${n}`);
      }
    }
  }
});

test('property: random bytes never make a decoder throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      decodeEverything(Buffer.from(bytes));
    }),
    { numRuns: 3000 },
  );
});

test('property: random bytes behind a plausible header never make a decoder throw', () => {
  const types = fc.constantFrom(1, 2, 3, 4, 16, 17, 20, 21, 0x30);
  fc.assert(
    fc.property(types, fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 400 }), (type, flags, body) => {
      decodeEverything(encodeNlMsg({ type, flags, seq: 1 }, body));
    }),
    { numRuns: 3000 },
  );
});

test('property: mutated real fixtures never make a decoder throw', () => {
  const fixtures = ALL_FIXTURES.map(([, h]) => hex(h));
  const mutation = fc.record({
    which: fc.nat(fixtures.length - 1),
    flips: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }),
    cut: fc.option(fc.nat()),
  });
  fc.assert(
    fc.property(mutation, ({ which, flips, cut }) => {
      const b = Buffer.from(fixtures[which] as Buffer);
      for (const f of flips) b[f.at % b.length] = f.value;
      const m = cut === null ? b : b.subarray(0, cut % (b.length + 1));
      decodeEverything(m);
    }),
    { numRuns: 5000 },
  );
});

test('NlWriter writes what encodeNlMsg and encodeAttr write, growing as it goes', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 0x3fff }), fc.uint8Array({ maxLength: 40 })), { maxLength: 30 }), fc.integer({ min: 1, max: 64 }), (attrs, start) => {
      const w = new NlWriter(start).header({ type: 0x100, flags: 5, seq: 77 });
      const nest = w.begin(9);
      for (const [t, d] of attrs) w.attr(t, d);
      w.end(nest).be16(3, 0xabcd).be32(4, 0xdeadbeef).u8(5, 7);
      const expected = encodeNlMsg(
        { type: 0x100, flags: 5, seq: 77 },
        encodeAttr(9 | NLA_F_NESTED, Buffer.concat(attrs.map(([t, d]) => encodeAttr(t, d)))),
        encodeAttr(3, Buffer.from([0xab, 0xcd])),
        encodeAttr(4, Buffer.from([0xde, 0xad, 0xbe, 0xef])),
        encodeAttr(5, Buffer.from([7])),
      );
      assert.deepEqual(w.finish(), expected);
    }),
  );
});
