import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bodyToEntryV2, bodyToRawV2, entryToBodyV2, ENTRY_V2_DECODE_REASONS, ENTRY_V2_FIELDS, rawEntryKey } from './entry-v2.js';
import { encodeCreate, encodeCreateRaw, TCP_CT_STATES, type ConntrackEntry, type RawCtEntry } from '../netlink/ctnetlink.js';
import { CREATE_ENTRY_TCP, CREATE_ENTRY_V6 } from '../netlink/ctnetlink-fixtures.js';

/** An entry as the kernel gave it (real bytes, in the ctnetlink fixtures): DNAT to a backend. */
const natTcp: ConntrackEntry = CREATE_ENTRY_TCP;

test('a typical IPv4 TCP entry with NAT round-trips in under 100 bytes (the JSON of version 1: about 330)', () => {
  const b = entryToBodyV2(natTcp);
  assert.ok(b.length < 100, `${b.length} bytes`);
  assert.equal(b.length, 59);
  const r = bodyToEntryV2(b);
  assert.ok(r.ok);
  assert.deepEqual(r.value, natTcp);
});

test('ICMP, IPv6, other protocols, zones and unknown TCP wscale round-trip', () => {
  const cases: ConntrackEntry[] = [
    CREATE_ENTRY_V6,
    { family: 4, orig: { src: '198.18.0.10', dst: '198.18.1.11', proto: 1, icmpId: 99, icmpType: 8, icmpCode: 0 }, reply: { src: '198.18.1.11', dst: '198.18.0.10', proto: 1, icmpId: 99, icmpType: 0, icmpCode: 0 } },
    { family: 6, orig: { src: '2001:2::10', dst: '2001:2::1', proto: 17, srcPort: 5353, dstPort: 53 }, reply: { src: '2001:2::1', dst: '2001:2::10', proto: 17, srcPort: 53, dstPort: 5353 }, zone: 3 },
    { family: 4, orig: { src: '198.18.0.10', dst: '198.18.1.11', proto: 47, zone: 1 }, reply: { src: '198.18.1.11', dst: '198.18.0.10', proto: 47, zone: 2 }, tcp: { state: 'SYN_SENT' } },
  ];
  for (const e of cases) {
    const r = bodyToEntryV2(entryToBodyV2(e));
    assert.ok(r.ok, JSON.stringify(e));
    assert.deepEqual(r.value, e);
  }
});

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const entryArb = fc.record({
  proto: fc.constantFrom(6, 17, 1, 47, 132),
  a: v4, b: v4, c: v4,
  sp: fc.nat(65535), dp: fc.nat(65535),
  status: fc.option(fc.nat(0xffffffff), { nil: undefined }),
  timeout: fc.option(fc.nat(0xffffffff), { nil: undefined }),
  mark: fc.option(fc.nat(0xffffffff), { nil: undefined }),
  zone: fc.option(fc.nat(65535), { nil: undefined }),
  tcp: fc.option(fc.record({ state: fc.constantFrom(...TCP_CT_STATES), wscaleOrig: fc.nat(14), wscaleReply: fc.nat(14), flagsOrig: fc.integer({ min: 1, max: 255 }), flagsReply: fc.integer({ min: 1, max: 255 }) }), { nil: undefined }),
}).map((x): ConntrackEntry => {
  const ports = (s: number, d: number) => (x.proto === 1 ? { icmpId: s, icmpType: d & 0xff, icmpCode: (d >> 8) & 0xff } : x.proto === 47 ? {} : { srcPort: s, dstPort: d });
  const e: ConntrackEntry = { family: 4, orig: { src: x.a, dst: x.b, proto: x.proto, ...ports(x.sp, x.dp) }, reply: { src: x.c, dst: x.a, proto: x.proto, ...ports(x.dp, x.sp) } };
  if (x.status !== undefined) e.status = x.status;
  if (x.timeout !== undefined) e.timeout = x.timeout;
  if (x.mark !== undefined) e.mark = x.mark;
  if (x.zone !== undefined) e.zone = x.zone;
  if (x.tcp) e.tcp = x.tcp;
  return e;
});

test('property: every entry round-trips exactly', () => {
  fc.assert(fc.property(entryArb, (e) => {
    const r = bodyToEntryV2(entryToBodyV2(e));
    return r.ok && JSON.stringify(r.value) === JSON.stringify(e);
  }), { numRuns: 500 });
});

test('property: any bytes decode to an entry or a closed reason, never a throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
    const r = bodyToEntryV2(b);
    return r.ok || (ENTRY_V2_DECODE_REASONS as readonly string[]).includes(r.reason);
  }), { numRuns: 3000 });
  // Mutations of a valid body: a flipped byte or a cut anywhere.
  const good = entryToBodyV2(natTcp);
  fc.assert(fc.property(fc.nat(good.length - 1), fc.nat(255), (i, v) => {
    const b = Buffer.from(good);
    b[i] = v;
    const r = bodyToEntryV2(b);
    const cut = bodyToEntryV2(good.subarray(0, i + 1));
    return (r.ok || ENTRY_V2_DECODE_REASONS.includes(r.reason)) && (cut.ok || ENTRY_V2_DECODE_REASONS.includes(cut.reason));
  }));
});

test('each problem has its own reason; an unknown field is skipped', () => {
  const good = Buffer.from(entryToBodyV2(natTcp));
  const reason = (b: Uint8Array) => {
    const r = bodyToEntryV2(b);
    return r.ok ? 'ok' : r.reason;
  };
  assert.equal(reason(Buffer.from([2])), 'empty');
  assert.equal(reason(Buffer.from([1, 2, 3])), 'bad_version');
  assert.equal(reason(good.subarray(0, good.length - 2)), 'truncated');
  assert.equal(reason(Buffer.concat([good, Buffer.from([ENTRY_V2_FIELDS.MARK, 4, 0, 0, 0, 1])])), 'duplicate_field');
  assert.equal(reason(Buffer.concat([good, Buffer.from([200, 3, 1, 2, 3])])), 'ok', 'a newer peer\'s field');
  assert.equal(reason(Buffer.from([2, ENTRY_V2_FIELDS.FAMILY, 1, 4])), 'missing_field');
  const fam = Buffer.from(good);
  fam[3] = 5; // FAMILY's value
  assert.equal(reason(fam), 'bad_family');
  assert.equal(reason(Buffer.from([2, ENTRY_V2_FIELDS.FAMILY, 1, 4, ENTRY_V2_FIELDS.ORIG, 3, 1, 2, 3, ENTRY_V2_FIELDS.REPLY, 3, 1, 2, 3])), 'bad_length');
  const noPorts = entryToBodyV2({ ...natTcp, orig: { ...natTcp.orig, proto: 47 }, tcp: undefined });
  const withTcp = Buffer.from(noPorts);
  withTcp[1 + 3 + 2 + 8] = 6; // ORIG's protocol byte (after version, FAMILY, ORIG's header, two addresses) says TCP: no ports follow
  assert.equal(reason(withTcp), 'bad_proto_fields');
  const st = Buffer.from(good);
  st[st.indexOf(Buffer.from([ENTRY_V2_FIELDS.TCP, 5])) + 2] = 42;
  assert.equal(reason(st), 'bad_tcp_state');
  const mark = Buffer.from(good);
  const at = mark.indexOf(Buffer.from([ENTRY_V2_FIELDS.MARK, 4]));
  mark[at + 1] = 3;
  assert.equal(reason(mark), 'bad_length');
});

test('property: a received record goes to the kernel as the same create message as its entry would (bytes path = text path)', () => {
  fc.assert(fc.property(entryArb, fc.boolean(), (e, liberal) => {
    const body = entryToBodyV2(e);
    const raw = bodyToRawV2(body);
    assert.ok(raw.ok);
    const text = bodyToEntryV2(body);
    assert.ok(text.ok);
    assert.deepEqual(encodeCreateRaw(7, raw.value, { beLiberal: liberal, ack: false }), encodeCreate(7, text.value, { beLiberal: liberal, ack: false }));
    // Two records of one entry share a key; another entry has its own.
    assert.equal(rawEntryKey(raw.value), rawEntryKey((bodyToRawV2(entryToBodyV2({ ...e, timeout: 1 })) as { value: RawCtEntry }).value));
  }), { numRuns: 300 });
  for (const e of [CREATE_ENTRY_TCP, CREATE_ENTRY_V6]) {
    const raw = bodyToRawV2(entryToBodyV2(e));
    assert.ok(raw.ok);
    assert.deepEqual(encodeCreateRaw(1, raw.value), encodeCreate(1, e));
  }
});
