import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ctPayloadToBodyV2 } from './entry-v2-netlink.js';
import { entryToBodyV2 } from './entry-v2.js';
import { CT_DELETE, CT_NEW, decodeConntrack, encodeCreate, TCP_CT_STATES, type ConntrackEntry } from '../netlink/ctnetlink.js';
import { NETLINK_DECODE_REASONS, splitMessages, type NlMessage } from '../netlink/nlmsg.js';
import * as F from '../netlink/ctnetlink-fixtures.js';

const messages = (datagram: Buffer): NlMessage[] => {
  const s = splitMessages(datagram);
  assert.ok(s.ok);
  return s.value.filter((m) => m.header.type === CT_NEW || m.header.type === CT_DELETE);
};

/** The transcoder against the two-step path: whatever decodeConntrack reads, the same record bytes and mark. */
function agrees(payload: Buffer): boolean {
  const t = ctPayloadToBodyV2(payload);
  if (!t.ok && !(NETLINK_DECODE_REASONS as readonly string[]).includes(t.reason)) return false;
  const d = decodeConntrack({ header: { len: 16 + payload.length, type: CT_NEW, flags: 0, seq: 0, pid: 0 }, payload });
  if (!d.ok) return true; // it may read what the decoder refuses for a part a record does not carry
  if (!t.ok) return false;
  return Buffer.from(t.body).equals(Buffer.from(entryToBodyV2(d.value))) && t.mark === d.value.mark;
}

const fixtures = Object.entries(F).filter(([k, v]) => typeof v === 'string' && /^(EVENT_|DUMP_REPLY|GET_REPLY|BACKUP_DUMP$|CREATE_REQUEST)/.test(k)) as [string, string][];

test('the real kernel messages of the fixtures give the record entryToBodyV2(decodeConntrack(m)) gives', () => {
  let n = 0;
  for (const [name, hex] of fixtures) {
    for (const m of messages(Buffer.from(hex, 'hex'))) {
      const d = decodeConntrack(m);
      assert.ok(d.ok, name);
      const t = ctPayloadToBodyV2(m.payload);
      assert.ok(t.ok, `${name}: ${t.ok ? '' : t.detail}`);
      assert.deepEqual(Buffer.from(t.body), Buffer.from(entryToBodyV2(d.value)), name);
      assert.equal(t.mark, d.value.mark, name);
      n++;
    }
  }
  assert.ok(n >= 15, `${n} messages`);
});

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((w) => w.map((x) => x.toString(16)).join(':'));
const entryArb = fc
  .record({
    family: fc.constantFrom(4, 6),
    proto: fc.constantFrom(6, 17, 1, 58, 47, 132, 33),
    a4: v4, b4: v4, c4: v4, a6: v6, b6: v6, c6: v6,
    sp: fc.nat(65535), dp: fc.nat(65535),
    status: fc.option(fc.nat(0xffffffff), { nil: undefined }),
    timeout: fc.option(fc.nat(0xffffffff), { nil: undefined }),
    mark: fc.option(fc.nat(0xffffffff), { nil: undefined }),
    zone: fc.option(fc.nat(65535), { nil: undefined }),
    origZone: fc.option(fc.nat(65535), { nil: undefined }),
    tcp: fc.option(fc.record({ state: fc.constantFrom(...TCP_CT_STATES), wscaleOrig: fc.option(fc.nat(14), { nil: undefined }), wscaleReply: fc.nat(14), flagsOrig: fc.integer({ min: 1, max: 255 }), flagsReply: fc.integer({ min: 1, max: 255 }) }), { nil: undefined }),
  })
  .map((x): ConntrackEntry => {
    const [a, b, c] = x.family === 4 ? [x.a4, x.b4, x.c4] : [x.a6, x.b6, x.c6];
    const icmp = x.proto === 1 || x.proto === 58;
    const ports = (s: number, d: number) => (icmp ? { icmpId: s, icmpType: d & 0xff, icmpCode: (d >> 8) & 0xff } : x.proto === 47 ? {} : { srcPort: s, dstPort: d });
    const e: ConntrackEntry = { family: x.family as 4 | 6, orig: { src: a, dst: b, proto: x.proto, ...ports(x.sp, x.dp) }, reply: { src: c, dst: a, proto: x.proto, ...ports(x.dp, x.sp) } };
    if (x.origZone !== undefined) e.orig.zone = x.origZone;
    if (x.status !== undefined) e.status = x.status;
    if (x.timeout !== undefined) e.timeout = x.timeout;
    if (x.mark !== undefined) e.mark = x.mark;
    if (x.zone !== undefined) e.zone = x.zone;
    if (x.tcp) {
      const { wscaleOrig, ...rest } = x.tcp;
      e.tcp = wscaleOrig === undefined ? rest : { ...rest, wscaleOrig };
    }
    return e;
  });

test('property: every entry, as the kernel would send it, gives the same record both ways', () => {
  fc.assert(
    fc.property(entryArb, (e) => {
      const [m] = messages(encodeCreate(1, e));
      const t = ctPayloadToBodyV2(m!.payload);
      const d = decodeConntrack(m!);
      return d.ok && t.ok && Buffer.from(t.body).equals(Buffer.from(entryToBodyV2(d.value)));
    }),
    { numRuns: 1000 },
  );
});

test('property: damaged messages and any bytes give a closed reason or the decoder\'s record, never a throw', () => {
  const payloads = fixtures.flatMap(([, hex]) => messages(Buffer.from(hex, 'hex')).map((m) => m.payload));
  fc.assert(
    fc.property(fc.constantFrom(...payloads), fc.nat(), fc.nat(255), fc.nat(), (p, i, v, cut) => {
      const flipped = Buffer.from(p);
      flipped[i % p.length] = v;
      return agrees(flipped) && agrees(p.subarray(0, cut % (p.length + 1)));
    }),
    { numRuns: 5000 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => agrees(Buffer.from(b))), { numRuns: 3000 });
  const bad = ctPayloadToBodyV2(Buffer.from([2, 0, 0, 0]));
  assert.deepEqual(bad, { ok: false, reason: 'missing_attribute', detail: 'CTA_TUPLE_ORIG' });
  assert.equal(ctPayloadToBodyV2(Buffer.from([7, 0, 0, 0])).ok, false);
});
