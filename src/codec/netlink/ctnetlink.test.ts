import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIp, parseIp } from './address.js';
import * as F from './ctnetlink-fixtures.js';
import {
  type ConntrackEntry,
  CT_DELETE,
  CT_GET,
  CT_NEW,
  CTA_FILTER,
  CTA_ID,
  CTA_MARK,
  CTA_MARK_MASK,
  CTA_NAT_DST,
  CTA_NAT_PROTO,
  CTA_NAT_SRC,
  CTA_NAT_V4_MAXIP,
  CTA_NAT_V4_MINIP,
  CTA_PROTOINFO,
  CTA_PROTOINFO_TCP,
  CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
  CTA_PROTOINFO_TCP_FLAGS_REPLY,
  CTA_PROTOINFO_TCP_STATE,
  CTA_PROTOINFO_TCP_WSCALE_ORIGINAL,
  CTA_PROTOINFO_TCP_WSCALE_REPLY,
  CTA_PROTO_DST_PORT,
  CTA_PROTO_ICMP_CODE,
  CTA_PROTO_ICMP_ID,
  CTA_PROTO_ICMP_TYPE,
  CTA_PROTO_ICMPV6_CODE,
  CTA_PROTO_ICMPV6_ID,
  CTA_PROTO_ICMPV6_TYPE,
  CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT,
  CTA_PROTONAT_PORT_MAX,
  CTA_PROTONAT_PORT_MIN,
  CTA_STATUS,
  CTA_TIMEOUT,
  CTA_TUPLE_IP,
  CTA_TUPLE_ORIG,
  CTA_TUPLE_PROTO,
  CTA_TUPLE_REPLY,
  CTA_USE,
  CTA_ZONE,
  CTA_FILTER_ORIG_FLAGS,
  CTA_FILTER_F_CTA_IP_DST,
  CTA_FILTER_F_CTA_PROTO_DST_PORT,
  CTA_FILTER_F_CTA_PROTO_NUM,
  CTA_IP_V4_DST,
  CTA_IP_V4_SRC,
  CTA_IP_V6_DST,
  CTA_IP_V6_SRC,
  type CtTuple,
  decodeConntrack,
  decodeConntrackEvent,
  encodeCreate,
  encodeDelete,
  encodeDumpRequest,
  encodeGet,
  formatTuple,
  hasPorts,
  hasStatus,
  invertTuple,
  IP_CT_TCP_FLAG_BE_LIBERAL,
  IP_CT_TCP_FLAG_SACK_PERM,
  IP_CT_TCP_FLAG_WINDOW_SCALE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPS_ASSURED,
  IPS_CONFIRMED,
  IPS_DST_NAT,
  IPS_DYING,
  IPS_EXPECTED,
  IPS_SEEN_REPLY,
  matchesFilter,
  natOf,
  NFGENMSG_LEN,
  NFNLGRP_CONNTRACK_DESTROY,
  NFNLGRP_CONNTRACK_NEW,
  NFNLGRP_CONNTRACK_UPDATE,
  statusBits,
  statusNames,
  TCP_CT_STATES,
} from './ctnetlink.js';
import {
  decodeNlDone,
  decodeNlError,
  encodeAttr,
  encodeNlMsg,
  NETLINK_DECODE_REASONS,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  type NlMessage,
  splitAttrs,
  splitMessages,
} from './nlmsg.js';

const hex = (s: string) => Buffer.from(s, 'hex');
function messages(h: string | Buffer): NlMessage[] {
  const s = splitMessages(typeof h === 'string' ? hex(h) : h);
  assert.ok(s.ok, s.ok ? '' : s.reason);
  return s.value;
}
function one<T>(r: { ok: true; value: T } | { ok: false; reason: string; detail?: string }): T {
  assert.ok(r.ok, r.ok ? '' : `${r.reason} ${r.detail ?? ''}`);
  return r.value;
}
function entryOf(h: string, i = 0): ConntrackEntry {
  return one(decodeConntrack(messages(h)[i] as NlMessage));
}
/** Raw attributes of a run, by type (the last of a type wins), NLA_F_NESTED masked off. */
function attrs(b: Buffer): Map<number, Buffer> {
  const s = splitAttrs(b);
  assert.ok(s.ok);
  return new Map(s.value.map((a) => [a.type, a.data]));
}
function attrOf(b: Buffer, ...path: number[]): Buffer {
  let cur = b;
  for (const t of path) {
    const a = attrs(cur).get(t);
    assert.ok(a, `attribute ${path.join('/')}`);
    cur = a;
  }
  return cur;
}

// ---------------------------------------------------------------------------------------
// Constants that other code relies on

test('message types and groups have the kernel numbers', () => {
  assert.equal(CT_NEW, 0x100);
  assert.equal(CT_GET, 0x101);
  assert.equal(CT_DELETE, 0x102);
  assert.deepEqual([NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY], [1, 2, 3]);
  assert.equal(TCP_CT_STATES[3], 'ESTABLISHED');
  assert.deepEqual(statusNames(430), ['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'DST_NAT', 'SRC_NAT_DONE', 'DST_NAT_DONE']);
  assert.equal(statusBits(['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'DST_NAT', 'SRC_NAT_DONE', 'DST_NAT_DONE']), 430);
  assert.equal(statusBits([]), 0);
});

// ---------------------------------------------------------------------------------------
// Real kernel bytes

test('a dump reply from the kernel: ICMP, TCP through DNAT, UDP through DNAT with a mark', () => {
  const ms = messages(F.DUMP_REPLY);
  assert.equal(ms.length, 3);
  for (const m of ms) {
    assert.equal(m.header.type, CT_NEW);
    assert.ok(m.header.flags & NLM_F_MULTI);
    assert.equal(m.header.seq, 4242);
  }
  const [icmp, tcp, udp] = ms.map((m) => one(decodeConntrack(m)));
  assert.ok(icmp && tcp && udp);

  assert.deepEqual(icmp.orig, { src: '198.18.10.2', dst: '198.18.11.2', proto: IPPROTO_ICMP, icmpId: 0x1234, icmpType: 8, icmpCode: 0 });
  assert.deepEqual(icmp.reply, { src: '198.18.11.2', dst: '198.18.10.2', proto: IPPROTO_ICMP, icmpId: 0x1234, icmpType: 0, icmpCode: 0 });
  assert.deepEqual(invertTuple(icmp.orig), icmp.reply, 'an echo request inverts into its reply');
  assert.deepEqual(natOf(icmp), {});
  assert.equal(formatTuple(icmp.orig), 'icmp 198.18.10.2 -> 198.18.11.2 type 8 code 0 id 4660');

  assert.equal(tcp.family, 4);
  assert.deepEqual(tcp.orig, { src: '198.18.10.2', dst: '198.18.12.100', proto: IPPROTO_TCP, srcPort: 40021, dstPort: 80 });
  assert.deepEqual(tcp.reply, { src: '198.18.11.2', dst: '198.18.10.2', proto: IPPROTO_TCP, srcPort: 8080, dstPort: 40021 });
  assert.deepEqual(natOf(tcp), { dnat: { address: '198.18.11.2', port: 8080 } });
  assert.deepEqual(statusNames(tcp.status ?? 0), ['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'DST_NAT', 'SRC_NAT_DONE', 'DST_NAT_DONE']);
  assert.ok(hasStatus(tcp, 'ASSURED') && hasStatus(tcp, 'DST_NAT') && !hasStatus(tcp, 'SRC_NAT'));
  assert.equal(tcp.tcp?.state, 'ESTABLISHED');
  assert.equal(tcp.tcp?.wscaleOrig, 10);
  assert.equal(tcp.tcp?.wscaleReply, 10);
  assert.equal(tcp.tcp?.flagsOrig, 0x23); // WINDOW_SCALE | SACK_PERM | MAXACK_SET
  assert.ok((tcp.timeout ?? 0) > 431000, 'established: five days');
  assert.equal(tcp.mark, 0);
  assert.equal(tcp.use, 1);
  assert.equal(typeof tcp.id, 'number');
  assert.equal(formatTuple(tcp.orig), 'tcp 198.18.10.2:40021 -> 198.18.12.100:80');

  assert.deepEqual(udp.orig, { src: '198.18.10.2', dst: '198.18.12.100', proto: IPPROTO_UDP, srcPort: 40022, dstPort: 53 });
  assert.deepEqual(natOf(udp), { dnat: { address: '198.18.11.2', port: 5353 } });
  assert.equal(udp.mark, 42);
  assert.equal(udp.tcp, undefined);
  assert.ok(hasStatus(udp, 'SEEN_REPLY') && !hasStatus(udp, 'ASSURED'));

  const done = one(decodeNlDone(messages(F.DUMP_DONE)[0] as NlMessage));
  assert.equal(done.errno, 0);
});

test('get: the entry, then the ACK', () => {
  const [m] = messages(F.GET_REPLY);
  assert.ok(m);
  const e = one(decodeConntrack(m));
  assert.equal(e.orig.srcPort, 40021);
  assert.equal(e.use, 2);
  const ack = one(decodeNlError(messages(F.GET_ACK)[0] as NlMessage));
  assert.equal(ack.errno, 0);
  assert.equal(ack.request.type, CT_GET);
});

test('errors: ENOENT on delete, EEXIST and EBUSY on create', () => {
  const enoent = one(decodeNlError(messages(F.DELETE_ENOENT)[0] as NlMessage));
  assert.equal(enoent.errnoName, 'ENOENT');
  assert.equal(enoent.request.type, CT_DELETE);
  assert.equal(one(decodeNlError(messages(F.DELETE_ACK)[0] as NlMessage)).errno, 0);
  assert.equal(one(decodeNlError(messages(F.CREATE_ACK)[0] as NlMessage)).errno, 0);
  const eexist = one(decodeNlError(messages(F.CREATE_EEXIST)[0] as NlMessage));
  assert.equal(eexist.errnoName, 'EEXIST');
  assert.equal(eexist.request.type, CT_NEW);
  assert.equal(eexist.request.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  assert.equal(one(decodeNlError(messages(F.CREATE_EBUSY)[0] as NlMessage)).errnoName, 'EBUSY');
  // An error is not a conntrack message.
  const r = decodeConntrack(messages(F.DELETE_ENOENT)[0] as NlMessage);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'unexpected_type');
});

test('events: new / update / destroy, in the order the kernel sent them', () => {
  const names = [
    'EVENT_NEW_UDP',
    'EVENT_UPDATE_UDP_SEEN_REPLY',
    'EVENT_NEW_TCP_SYN_SENT',
    'EVENT_UPDATE_TCP_SYN_RECV',
    'EVENT_UPDATE_TCP_ESTABLISHED',
    'EVENT_NEW_ICMP',
    'EVENT_UPDATE_ICMP',
    'EVENT_UPDATE_TCP_FIN_WAIT',
    'EVENT_UPDATE_TCP_LAST_ACK',
    'EVENT_UPDATE_TCP_TIME_WAIT',
    'EVENT_DESTROY_UDP',
  ] as const;
  const evs = names.map((n) => {
    const [m] = messages(F[n]);
    assert.ok(m);
    return { m, ev: one(decodeConntrackEvent(m)) };
  });
  assert.deepEqual(
    evs.map((x) => x.ev.kind),
    ['new', 'update', 'new', 'update', 'update', 'new', 'update', 'update', 'update', 'update', 'destroy'],
  );
  assert.deepEqual(
    evs.filter((x) => x.ev.entry.orig.proto === IPPROTO_TCP).map((x) => x.ev.entry.tcp?.state),
    ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'LAST_ACK', 'TIME_WAIT'],
  );
  const newUdp = evs[0]?.ev.entry;
  assert.equal(newUdp?.mark, 42);
  assert.ok(newUdp && !hasStatus(newUdp, 'SEEN_REPLY'));
  assert.ok(evs[1] && hasStatus(evs[1].ev.entry, 'SEEN_REPLY'));
  // Kernel-caused events have port id 0; our delete's destroy event carries the deleter's.
  assert.equal(evs[0]?.m.header.pid, 0);
  const destroy = evs[10];
  assert.ok(destroy);
  assert.notEqual(destroy.m.header.pid, 0);
  assert.ok(hasStatus(destroy.ev.entry, 'DYING'));
  assert.deepEqual(destroy.ev.entry.orig, newUdp?.orig);
  assert.equal(destroy.ev.entry.id, newUdp?.id, 'the id is stable over the entry\'s life');
});

test('the backup namespace after our creates: what the kernel made of them', () => {
  const tcp = entryOf(F.BACKUP_DUMP, 0);
  const v6 = entryOf(F.BACKUP_DUMP, 1);
  // Same tuples (the kernel NATed the reply tuple itself), NAT bits set by the NAT core.
  assert.deepEqual(tcp.orig, F.CREATE_ENTRY_TCP.orig);
  assert.deepEqual(tcp.reply, F.CREATE_ENTRY_TCP.reply);
  assert.deepEqual(natOf(tcp), natOf(F.CREATE_ENTRY_TCP));
  assert.equal(tcp.status, F.CREATE_ENTRY_TCP.status);
  assert.equal(tcp.mark, 7);
  assert.equal(tcp.tcp?.state, 'ESTABLISHED');
  assert.equal(tcp.tcp?.wscaleOrig, 7);
  assert.equal(tcp.tcp?.wscaleReply, 9);
  assert.equal(tcp.tcp?.flagsOrig, IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL);
  assert.equal(tcp.tcp?.flagsReply, IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL);
  assert.equal(v6.family, 6);
  assert.deepEqual(v6.orig, F.CREATE_ENTRY_V6.orig);
  assert.deepEqual(v6.reply, F.CREATE_ENTRY_V6.reply);
  assert.deepEqual(natOf(v6), { dnat: { address: '2001:db8:2::2', port: 5353 } });
  assert.ok(hasStatus(v6, 'DST_NAT') && hasStatus(v6, 'ASSURED'));
  assert.equal(v6.mark, 3);
});

test('encoders write what the kernel accepted (pinned against captured requests)', () => {
  assert.equal(encodeDumpRequest(4242).toString('hex'), F.DUMP_REQUEST);
  const tcp = { src: '198.18.10.2', dst: '198.18.12.100', proto: IPPROTO_TCP, srcPort: 40021, dstPort: 80 };
  assert.equal(encodeGet(4242, { family: 4, orig: tcp }).toString('hex'), F.GET_REQUEST);
  assert.equal(encodeDelete(4242, { family: 4, orig: { ...tcp, srcPort: 40999 } }).toString('hex'), F.DELETE_REQUEST_ENOENT);
  const udp = { src: '198.18.10.2', dst: '198.18.12.100', proto: IPPROTO_UDP, srcPort: 40022, dstPort: 53 };
  assert.equal(encodeDelete(4242, { family: 4, orig: udp }).toString('hex'), F.DELETE_REQUEST_UDP);
  assert.equal(encodeCreate(4242, F.CREATE_ENTRY_TCP).toString('hex'), F.CREATE_REQUEST_TCP);
  assert.equal(encodeCreate(4242, F.CREATE_ENTRY_V6).toString('hex'), F.CREATE_REQUEST_V6);
});

// ---------------------------------------------------------------------------------------
// Encoders in detail

test('create: reply tuple without NAT, CTA_NAT_DST / CTA_NAT_SRC from the NATed reply tuple', () => {
  const e: ConntrackEntry = {
    family: 4,
    // full NAT: DNAT to the backend and SNAT of the client to the firewall's inside address
    orig: { src: '198.18.0.7', dst: '198.18.0.100', proto: IPPROTO_TCP, srcPort: 50000, dstPort: 80 },
    reply: { src: '198.18.1.11', dst: '198.18.1.1', proto: IPPROTO_TCP, srcPort: 8080, dstPort: 61000 },
    status: IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED | IPS_DST_NAT | IPS_EXPECTED | IPS_DYING,
    timeout: 300,
    tcp: { state: 'ESTABLISHED' },
  };
  assert.deepEqual(natOf(e), { dnat: { address: '198.18.1.11', port: 8080 }, snat: { address: '198.18.1.1', port: 61000 } });
  const [m] = messages(encodeCreate(1, e));
  assert.ok(m);
  assert.equal(m.header.type, CT_NEW);
  assert.equal(m.header.flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  const body = m.payload.subarray(NFGENMSG_LEN);
  // The reply tuple sent is the inverse of the original; the kernel's NAT core NATs it.
  const sent = one(decodeConntrack(m));
  assert.deepEqual(sent.reply, invertTuple(e.orig));
  const ip4 = (b: Buffer) => formatIp(4, b);
  assert.equal(ip4(attrOf(body, CTA_NAT_DST, CTA_NAT_V4_MINIP)), '198.18.1.11');
  assert.equal(ip4(attrOf(body, CTA_NAT_DST, CTA_NAT_V4_MAXIP)), '198.18.1.11');
  assert.equal(attrOf(body, CTA_NAT_DST, CTA_NAT_PROTO, CTA_PROTONAT_PORT_MIN).readUInt16BE(0), 8080);
  assert.equal(attrOf(body, CTA_NAT_DST, CTA_NAT_PROTO, CTA_PROTONAT_PORT_MAX).readUInt16BE(0), 8080);
  assert.equal(ip4(attrOf(body, CTA_NAT_SRC, CTA_NAT_V4_MINIP)), '198.18.1.1');
  assert.equal(attrOf(body, CTA_NAT_SRC, CTA_NAT_PROTO, CTA_PROTONAT_PORT_MIN).readUInt16BE(0), 61000);
  // Status: EXPECTED and DYING stripped (EBUSY otherwise), CONFIRMED kept by default.
  assert.equal(attrOf(body, CTA_STATUS).readUInt32BE(0), IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED | IPS_DST_NAT);
  const noConfirmed = messages(encodeCreate(1, e, { keepConfirmed: false }))[0] as NlMessage;
  assert.equal(attrOf(noConfirmed.payload.subarray(NFGENMSG_LEN), CTA_STATUS).readUInt32BE(0), IPS_SEEN_REPLY | IPS_ASSURED | IPS_DST_NAT);
  assert.equal(attrOf(body, CTA_TIMEOUT).readUInt32BE(0), 300);
  // TCP: state, be-liberal both ways with a mask that only touches the flags we manage.
  assert.equal(attrOf(body, CTA_PROTOINFO, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE).readUInt8(0), 3);
  const fo = attrOf(body, CTA_PROTOINFO, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL);
  assert.deepEqual([...fo], [IP_CT_TCP_FLAG_BE_LIBERAL, 0x0f]);
  assert.deepEqual([...attrOf(body, CTA_PROTOINFO, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_FLAGS_REPLY)], [IP_CT_TCP_FLAG_BE_LIBERAL, 0x0f]);
  // Window scales are sent only as a pair.
  assert.equal(attrs(attrOf(body, CTA_PROTOINFO, CTA_PROTOINFO_TCP)).has(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL), false);
  // Strict mode: no be-liberal.
  const strict = messages(encodeCreate(1, e, { beLiberal: false, timeout: 9 }))[0] as NlMessage;
  const sb = strict.payload.subarray(NFGENMSG_LEN);
  assert.deepEqual([...attrOf(sb, CTA_PROTOINFO, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL)], [0, 0x0f]);
  assert.equal(attrOf(sb, CTA_TIMEOUT).readUInt32BE(0), 9);
});

test('create without NAT sends the reply tuple as it is and no CTA_NAT_*; UDP has no protoinfo', () => {
  const e: ConntrackEntry = {
    family: 4,
    orig: { src: '198.18.0.7', dst: '198.18.1.11', proto: IPPROTO_UDP, srcPort: 5000, dstPort: 53 },
    reply: { src: '198.18.1.11', dst: '198.18.0.7', proto: IPPROTO_UDP, srcPort: 53, dstPort: 5000 },
    mark: 0x2a,
    zone: 3,
  };
  const [m] = messages(encodeCreate(7, e));
  assert.ok(m);
  const body = attrs(m.payload.subarray(NFGENMSG_LEN));
  assert.equal(body.has(CTA_NAT_DST) || body.has(CTA_NAT_SRC) || body.has(CTA_PROTOINFO) || body.has(CTA_STATUS), false);
  assert.equal(body.get(CTA_TIMEOUT)?.readUInt32BE(0), 120, 'default timeout');
  assert.equal(body.get(CTA_MARK)?.readUInt32BE(0), 0x2a);
  assert.equal(body.get(CTA_ZONE)?.readUInt16BE(0), 3);
  const back = one(decodeConntrack(m));
  assert.deepEqual(back.orig, e.orig);
  assert.deepEqual(back.reply, e.reply);
});

test('dump request filters: family, mark, original tuple (CTA_FILTER)', () => {
  const [m] = messages(
    encodeDumpRequest(3, { family: 4, mark: { value: 0x2a }, orig: { proto: IPPROTO_TCP, dst: '198.18.12.100', dstPort: 80 } }),
  );
  assert.ok(m);
  assert.equal(m.header.type, CT_GET);
  assert.equal(m.header.flags, NLM_F_REQUEST | NLM_F_DUMP);
  assert.equal(m.payload.readUInt8(0), 2, 'AF_INET');
  const body = m.payload.subarray(NFGENMSG_LEN);
  assert.equal(attrOf(body, CTA_MARK).readUInt32BE(0), 0x2a);
  assert.equal(attrOf(body, CTA_MARK_MASK).readUInt32BE(0), 0xffffffff);
  assert.equal(formatIp(4, attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V4_DST)), '198.18.12.100');
  assert.equal(attrs(attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_IP)).has(CTA_IP_V4_SRC), false);
  assert.equal(attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_NUM).readUInt8(0), IPPROTO_TCP);
  assert.equal(attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_DST_PORT).readUInt16BE(0), 80);
  assert.equal(
    attrOf(body, CTA_FILTER, CTA_FILTER_ORIG_FLAGS).readUInt32LE(0),
    CTA_FILTER_F_CTA_IP_DST | CTA_FILTER_F_CTA_PROTO_NUM | CTA_FILTER_F_CTA_PROTO_DST_PORT,
  );
  // Nested attributes carry NLA_F_NESTED.
  const origRaw = splitAttrsOf(body).find((a) => a.type === CTA_TUPLE_ORIG)?.raw;
  assert.ok(origRaw && (origRaw.readUInt16LE(2) & NLA_F_NESTED) !== 0);
  assert.throws(() => encodeDumpRequest(1, { orig: { dst: '198.18.0.1' } }), RangeError, 'a tuple filter needs the family');
  assert.throws(() => encodeDumpRequest(1, { family: 4, orig: { dstPort: 80 } }), RangeError, 'a port needs a protocol');
  assert.throws(() => encodeDumpRequest(1, { family: 6, orig: { dst: '198.18.0.1' } }), RangeError);
  const [v6] = messages(encodeDumpRequest(1, { family: 6 }));
  assert.equal(v6?.payload.readUInt8(0), 10);
  assert.equal(v6?.payload.length, NFGENMSG_LEN);
});

test('matchesFilter agrees with what the kernel filter means', () => {
  const [, tcp, udp] = messages(F.DUMP_REPLY).map((m) => one(decodeConntrack(m)));
  assert.ok(tcp && udp);
  const svc = { family: 4 as const, orig: { proto: IPPROTO_TCP, dst: '198.18.12.100', dstPort: 80 } };
  assert.equal(matchesFilter(tcp, svc), true);
  assert.equal(matchesFilter(udp, svc), false);
  assert.equal(matchesFilter(tcp, { family: 6 }), false);
  assert.equal(matchesFilter(udp, { mark: { value: 42 } }), true);
  assert.equal(matchesFilter(tcp, { mark: { value: 42 } }), false);
  assert.equal(matchesFilter(udp, { mark: { value: 0x2, mask: 0x2 } }), true);
  assert.equal(matchesFilter(tcp, { family: 4, orig: { src: '198.18.10.2', srcPort: 40021, proto: 6 } }), true);
});

test('get and delete carry the tuple, zone and id; bad input throws before anything is sent', () => {
  const t: CtTuple = { src: '2001:db8::1', dst: '2001:db8::2', proto: IPPROTO_ICMPV6, icmpId: 7, icmpType: 128, icmpCode: 0 };
  const [m] = messages(encodeDelete(9, { family: 6, orig: t, zone: 5, id: 0xdeadbeef }));
  assert.ok(m);
  assert.equal(m.header.type, CT_DELETE);
  const body = m.payload.subarray(NFGENMSG_LEN);
  assert.equal(attrOf(body, CTA_ID).readUInt32BE(0), 0xdeadbeef);
  assert.equal(attrOf(body, CTA_ZONE).readUInt16BE(0), 5);
  assert.equal(formatIp(6, attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V6_SRC)), '2001:db8::1');
  assert.equal(formatIp(6, attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V6_DST)), '2001:db8::2');
  assert.equal(attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMPV6_ID).readUInt16BE(0), 7);
  assert.equal(attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMPV6_TYPE).readUInt8(0), 128);
  assert.equal(attrOf(body, CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMPV6_CODE).readUInt8(0), 0);
  const tcp: CtTuple = { src: '198.18.0.1', dst: '198.18.0.2', proto: IPPROTO_TCP, srcPort: 1, dstPort: 2 };
  assert.throws(() => encodeDelete(1, { family: 6, orig: tcp }), RangeError, 'family mismatch');
  assert.throws(() => encodeDelete(1, { family: 4 } as unknown as Parameters<typeof encodeDelete>[1]), /flush/, 'never a delete without a tuple');
  assert.throws(() => encodeDelete(1, { family: 4, orig: { ...tcp, srcPort: 70000 } }), RangeError);
  assert.throws(() => encodeDelete(1, { family: 4, orig: { src: '198.18.0.1', dst: '198.18.0.2', proto: IPPROTO_TCP } }), RangeError, 'TCP needs ports');
  assert.throws(() => encodeGet(1, { family: 4, orig: { ...tcp, src: 'nope' } }), RangeError);
  assert.throws(() => encodeGet(1, { family: 4, orig: { src: '198.18.0.1', dst: '198.18.0.2', proto: IPPROTO_ICMP } }), RangeError, 'ICMP needs id/type/code');
  assert.throws(() => encodeCreate(1, { family: 4, orig: tcp, reply: { ...invertTuple(tcp), proto: IPPROTO_UDP } }), RangeError);
  assert.throws(() => encodeCreate(1, { family: 4, orig: tcp, reply: invertTuple(tcp), tcp: { state: 'BOGUS' as 'NONE' } }), RangeError);
});

test('natOf: no NAT, DNAT, SNAT (masquerade), both; addresses compared by value', () => {
  const o: CtTuple = { src: '198.18.0.7', dst: '198.18.0.100', proto: IPPROTO_UDP, srcPort: 5, dstPort: 53 };
  assert.deepEqual(natOf({ orig: o, reply: invertTuple(o) }), {});
  assert.deepEqual(natOf({ orig: o, reply: { ...invertTuple(o), srcPort: 5353 } }), { dnat: { address: '198.18.0.100', port: 5353 } });
  assert.deepEqual(natOf({ orig: o, reply: { ...invertTuple(o), dst: '198.18.2.1', dstPort: 1024 } }), { snat: { address: '198.18.2.1', port: 1024 } });
  const v6: CtTuple = { src: '2001:db8::7', dst: '2001:db8::100', proto: IPPROTO_TCP, srcPort: 5, dstPort: 80 };
  assert.deepEqual(natOf({ orig: v6, reply: { ...invertTuple(v6), dst: '2001:DB8:0::7' } }), {});
  const ping: CtTuple = { src: '198.18.0.7', dst: '198.18.0.1', proto: IPPROTO_ICMP, icmpId: 9, icmpType: 8, icmpCode: 0 };
  assert.deepEqual(natOf({ orig: ping, reply: { ...invertTuple(ping), dst: '198.18.2.1', icmpId: 77 } }), { snat: { address: '198.18.2.1', port: 77 } });
});

// ---------------------------------------------------------------------------------------
// A fixture builder: a conntrack message laid out as the kernel writes it

function tupleAttrs(family: 4 | 6, t: CtTuple): Buffer {
  const ip = (x: string) => (parseIp(x) as { bytes: Buffer }).bytes;
  const be16 = (type: number, v: number) => encodeAttr(type, Buffer.from([v >> 8, v & 0xff]));
  const proto: Buffer[] = [encodeAttr(CTA_PROTO_NUM, Buffer.of(t.proto))];
  if (t.srcPort !== undefined) proto.push(be16(CTA_PROTO_SRC_PORT, t.srcPort));
  if (t.dstPort !== undefined) proto.push(be16(CTA_PROTO_DST_PORT, t.dstPort));
  const v6 = t.proto === IPPROTO_ICMPV6;
  if (t.icmpId !== undefined) proto.push(be16(v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID, t.icmpId));
  if (t.icmpType !== undefined) proto.push(encodeAttr(v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE, Buffer.of(t.icmpType)));
  if (t.icmpCode !== undefined) proto.push(encodeAttr(v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE, Buffer.of(t.icmpCode)));
  const [s, d] = family === 4 ? [CTA_IP_V4_SRC, CTA_IP_V4_DST] : [CTA_IP_V6_SRC, CTA_IP_V6_DST];
  return Buffer.concat([
    encodeAttr(CTA_TUPLE_IP | NLA_F_NESTED, Buffer.concat([encodeAttr(s, ip(t.src)), encodeAttr(d, ip(t.dst))])),
    encodeAttr(CTA_TUPLE_PROTO | NLA_F_NESTED, Buffer.concat(proto)),
  ]);
}

function kernelMessage(e: ConntrackEntry, opts: { type?: number; flags?: number; seq?: number; pid?: number } = {}): Buffer {
  const be32 = (type: number, v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return encodeAttr(type, b);
  };
  const a: Buffer[] = [
    encodeAttr(CTA_TUPLE_ORIG | NLA_F_NESTED, tupleAttrs(e.family, e.orig)),
    encodeAttr(CTA_TUPLE_REPLY | NLA_F_NESTED, tupleAttrs(e.family, e.reply)),
  ];
  if (e.id !== undefined) a.push(be32(CTA_ID, e.id));
  if (e.status !== undefined) a.push(be32(CTA_STATUS, e.status));
  if (e.timeout !== undefined) a.push(be32(CTA_TIMEOUT, e.timeout));
  if (e.mark !== undefined) a.push(be32(CTA_MARK, e.mark));
  if (e.tcp) {
    const t = e.tcp;
    const info = [encodeAttr(CTA_PROTOINFO_TCP_STATE, Buffer.of(TCP_CT_STATES.indexOf(t.state)))];
    if (t.wscaleOrig !== undefined) info.push(encodeAttr(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, Buffer.of(t.wscaleOrig)));
    if (t.wscaleReply !== undefined) info.push(encodeAttr(CTA_PROTOINFO_TCP_WSCALE_REPLY, Buffer.of(t.wscaleReply)));
    if (t.flagsOrig !== undefined) info.push(encodeAttr(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, Buffer.of(t.flagsOrig, 0)));
    if (t.flagsReply !== undefined) info.push(encodeAttr(CTA_PROTOINFO_TCP_FLAGS_REPLY, Buffer.of(t.flagsReply, 0)));
    a.push(encodeAttr(CTA_PROTOINFO | NLA_F_NESTED, encodeAttr(CTA_PROTOINFO_TCP | NLA_F_NESTED, Buffer.concat(info))));
  }
  if (e.use !== undefined) a.push(be32(CTA_USE, e.use));
  if (e.zone !== undefined) a.push(encodeAttr(CTA_ZONE, Buffer.from([e.zone >> 8, e.zone & 0xff])));
  const nfgen = Buffer.from([e.family === 4 ? 2 : 10, 0, 0, 0]);
  return encodeNlMsg({ type: opts.type ?? CT_NEW, flags: opts.flags ?? NLM_F_MULTI, seq: opts.seq ?? 1, pid: opts.pid ?? 0 }, nfgen, ...a);
}

const port = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
function addrArb(family: 4 | 6): fc.Arbitrary<string> {
  return fc.uint8Array({ minLength: family === 4 ? 4 : 16, maxLength: family === 4 ? 4 : 16 }).map((b) => formatIp(family, b) as string);
}
function tupleArb(family: 4 | 6, proto: number): fc.Arbitrary<CtTuple> {
  const base = { src: addrArb(family), dst: addrArb(family), proto: fc.constant(proto) };
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
    return fc.record({ ...base, icmpId: port, icmpType: fc.integer({ min: 0, max: 255 }), icmpCode: fc.integer({ min: 0, max: 255 }) });
  }
  if (hasPorts(proto)) return fc.record({ ...base, srcPort: port, dstPort: port });
  return fc.record(base);
}
const entryArb: fc.Arbitrary<ConntrackEntry> = fc
  .record({ family: fc.constantFrom(4 as const, 6 as const), proto: fc.constantFrom(IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, 47, 132) })
  .chain(({ family, proto }) =>
    fc.record(
      {
        family: fc.constant(family),
        orig: tupleArb(family, proto),
        reply: tupleArb(family, proto),
        status: fc.integer({ min: 0, max: 0xffff }),
        timeout: u32,
        mark: u32,
        id: u32,
        use: u32,
        zone: fc.integer({ min: 0, max: 0xffff }),
        tcp:
          proto === IPPROTO_TCP
            ? fc.record(
                {
                  state: fc.constantFrom(...TCP_CT_STATES),
                  wscaleOrig: fc.integer({ min: 0, max: 14 }),
                  wscaleReply: fc.integer({ min: 0, max: 14 }),
                  flagsOrig: fc.integer({ min: 0, max: 255 }),
                  flagsReply: fc.integer({ min: 0, max: 255 }),
                },
                { requiredKeys: ['state'] },
              )
            : fc.constant(undefined),
      },
      { requiredKeys: ['family', 'orig', 'reply'] },
    ),
  )
  // Plain objects (fast-check's records have no prototype), without absent keys.
  .map((e) => JSON.parse(JSON.stringify(e)) as ConntrackEntry);

test('round trip: any entry laid out as the kernel does decodes to itself', () => {
  fc.assert(
    fc.property(entryArb, fc.boolean(), (e, destroy) => {
      const m = messages(kernelMessage(e, destroy ? { type: CT_DELETE, flags: 0 } : { flags: NLM_F_CREATE | NLM_F_EXCL }))[0] as NlMessage;
      const ev = one(decodeConntrackEvent(m));
      assert.equal(ev.kind, destroy ? 'destroy' : 'new');
      assert.deepEqual(ev.entry, e);
    }),
    { numRuns: 500 },
  );
});

test('round trip: create of an entry without NAT decodes back to its tuples, mark, zone, timeout', () => {
  const noNat = entryArb.map((e) => ({ ...e, reply: invertTuple(e.orig) }));
  fc.assert(
    fc.property(noNat, (e) => {
      const back = one(decodeConntrack(messages(encodeCreate(1, e))[0] as NlMessage));
      assert.deepEqual(back.orig, e.orig);
      assert.deepEqual(back.reply, e.reply);
      assert.equal(back.mark, e.mark);
      assert.equal(back.zone, e.zone);
      assert.equal(back.timeout, e.timeout ?? 120);
      if (e.status !== undefined) assert.equal(back.status, ((e.status & ~(IPS_EXPECTED | IPS_DYING | 0xd800)) | IPS_CONFIRMED) >>> 0);
      if (e.orig.proto === IPPROTO_TCP) assert.equal(back.tcp?.state, e.tcp?.state ?? 'ESTABLISHED');
    }),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------
// Hostile bytes

const KERNEL_MESSAGES: Array<[string, NlMessage]> = Object.entries(F)
  .filter((e): e is [string, string] => typeof e[1] === 'string')
  .flatMap(([name, h]) => messages(h).map((m, i): [string, NlMessage] => [`${name}#${i}`, m]));

function decodeAll(m: NlMessage): void {
  for (const r of [decodeConntrack(m), decodeConntrackEvent(m)]) {
    if (!r.ok) assert.ok(NETLINK_DECODE_REASONS.includes(r.reason), r.reason);
    else {
      // Whatever decodes is well formed: addresses of the entry's family.
      const e = 'entry' in r.value ? r.value.entry : r.value;
      for (const t of [e.orig, e.reply]) {
        assert.equal(parseIp(t.src)?.family, e.family);
        assert.equal(parseIp(t.dst)?.family, e.family);
      }
    }
  }
}

test('truncation at every length never throws, and cut attributes are reported as such', () => {
  let checked = 0;
  for (const [name, m] of KERNEL_MESSAGES) {
    if (m.header.type !== CT_NEW && m.header.type !== CT_DELETE) continue; // errors, DONE, our GET requests
    const full = decodeConntrack(m);
    for (let n = 0; n < m.payload.length; n++) {
      const cut: NlMessage = { header: { ...m.header, len: 16 + n }, payload: m.payload.subarray(0, n) };
      const r = decodeConntrack(cut);
      decodeAll(cut);
      if (n < NFGENMSG_LEN) assert.equal(!r.ok && r.reason, 'short_payload', `${name} at ${n}`);
      else if (full.ok && !r.ok) assert.ok(['bad_attribute_length', 'missing_attribute', 'bad_attribute_value'].includes(r.reason), `${name} at ${n}: ${r.reason}`);
      checked++;
    }
    // The whole datagram cut short: splitting fails cleanly.
    const whole = encodeNlMsg({ type: m.header.type, flags: m.header.flags, seq: m.header.seq }, m.payload);
    for (let n = 1; n < whole.length; n++) {
      const s = splitMessages(whole.subarray(0, n));
      assert.equal(s.ok, false, `${name}: ${n} of ${whole.length} bytes split`);
    }
  }
  assert.ok(checked > 2000, `${checked} truncations`);
});

test('random bytes and mutated kernel messages never throw', () => {
  const header = (type: number) => ({ len: 0, type, flags: 0, seq: 0, pid: 0 });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.constantFrom(CT_NEW, CT_DELETE, CT_GET, 0x200), (b, type) => {
      decodeAll({ header: header(type), payload: Buffer.from(b) });
      // A nfgenmsg of a real family in front, so the attribute tables are reached.
      decodeAll({ header: header(type), payload: Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from(b)]) });
    }),
    { numRuns: 2000 },
  );
  const data = KERNEL_MESSAGES.filter(([, m]) => m.header.type === CT_NEW || m.header.type === CT_DELETE);
  fc.assert(
    fc.property(
      fc.constantFrom(...data),
      fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }),
      ([, m], muts) => {
        const p = Buffer.from(m.payload);
        for (const { at, v } of muts) p[at % p.length] = v;
        decodeAll({ header: m.header, payload: p });
      },
    ),
    { numRuns: 3000 },
  );
});

test('bad lengths are rejected, unknown attributes skipped', () => {
  const base = messages(F.DUMP_REPLY)[1] as NlMessage; // TCP
  const nfgen = base.payload.subarray(0, NFGENMSG_LEN);
  const body = base.payload.subarray(NFGENMSG_LEN);
  const msg = (...parts: Buffer[]): NlMessage => ({ header: base.header, payload: Buffer.concat([nfgen, ...parts]) });
  // An unknown top-level attribute (type 200) and an unknown nested one are skipped.
  const unknown = encodeAttr(200, Buffer.from('whatever'));
  assert.deepEqual(one(decodeConntrack(msg(unknown, body))), one(decodeConntrack(base)));
  // CTA_STATUS of 3 bytes: bad_attribute_value, naming it.
  const r1 = decodeConntrack(msg(body, encodeAttr(CTA_STATUS, Buffer.alloc(3))));
  assert.equal(!r1.ok && r1.reason, 'bad_attribute_value');
  assert.match(!r1.ok ? r1.detail ?? '' : '', /CTA_STATUS/);
  // A port of 1 byte deep inside a tuple.
  const badTuple = encodeAttr(
    CTA_TUPLE_ORIG | NLA_F_NESTED,
    Buffer.concat([
      encodeAttr(CTA_TUPLE_IP | NLA_F_NESTED, Buffer.concat([encodeAttr(CTA_IP_V4_SRC, Buffer.alloc(4)), encodeAttr(CTA_IP_V4_DST, Buffer.alloc(4))])),
      encodeAttr(CTA_TUPLE_PROTO | NLA_F_NESTED, Buffer.concat([encodeAttr(CTA_PROTO_NUM, Buffer.of(6)), encodeAttr(CTA_PROTO_SRC_PORT, Buffer.of(1))])),
    ]),
  );
  const r2 = decodeConntrack(msg(body, badTuple));
  assert.equal(!r2.ok && r2.reason, 'bad_attribute_value');
  assert.match(!r2.ok ? r2.detail ?? '' : '', /CTA_PROTO_SRC_PORT/);
  // nla_len beyond the container.
  const over = Buffer.from(encodeAttr(CTA_MARK, Buffer.alloc(4)));
  over.writeUInt16LE(200, 0);
  assert.equal((decodeConntrack(msg(body, over)) as { reason: string }).reason, 'bad_attribute_length');
  // An IPv6 address in an IPv4 entry; a TCP state beyond TCP_CONNTRACK_MAX.
  const v6in4 = encodeAttr(
    CTA_TUPLE_REPLY | NLA_F_NESTED,
    Buffer.concat([
      encodeAttr(CTA_TUPLE_IP | NLA_F_NESTED, Buffer.concat([encodeAttr(CTA_IP_V6_SRC, Buffer.alloc(16)), encodeAttr(CTA_IP_V6_DST, Buffer.alloc(16))])),
      encodeAttr(CTA_TUPLE_PROTO | NLA_F_NESTED, encodeAttr(CTA_PROTO_NUM, Buffer.of(6))),
    ]),
  );
  assert.equal((decodeConntrack(msg(body, v6in4)) as { reason: string }).reason, 'bad_attribute_value');
  const badState = encodeAttr(CTA_PROTOINFO | NLA_F_NESTED, encodeAttr(CTA_PROTOINFO_TCP | NLA_F_NESTED, encodeAttr(CTA_PROTOINFO_TCP_STATE, Buffer.of(10))));
  assert.equal((decodeConntrack(msg(body, badState)) as { reason: string }).reason, 'bad_attribute_value');
  // No reply tuple; a bad family; a bad version; too short.
  const noReply = Buffer.concat(splitAttrsOf(body).filter((a) => a.type !== CTA_TUPLE_REPLY).map((a) => a.raw));
  assert.equal((decodeConntrack(msg(noReply)) as { reason: string }).reason, 'missing_attribute');
  assert.equal((decodeConntrack({ header: base.header, payload: Buffer.concat([Buffer.from([7, 0, 0, 0]), body]) }) as { reason: string }).reason, 'bad_family');
  assert.equal((decodeConntrack({ header: base.header, payload: Buffer.concat([Buffer.from([2, 1, 0, 0]), body]) }) as { reason: string }).reason, 'bad_header_field');
  assert.equal((decodeConntrack({ header: base.header, payload: Buffer.alloc(3) }) as { reason: string }).reason, 'short_payload');
  assert.equal((decodeConntrack({ header: { ...base.header, type: 0x110 }, payload: base.payload }) as { reason: string }).reason, 'unexpected_type');
});

/** Top-level attributes with their raw bytes (header and padding included). */
function splitAttrsOf(b: Buffer): Array<{ type: number; raw: Buffer }> {
  const out: Array<{ type: number; raw: Buffer }> = [];
  let off = 0;
  while (off + 4 <= b.length) {
    const len = b.readUInt16LE(off);
    const type = b.readUInt16LE(off + 2) & 0x3fff;
    const end = Math.min(b.length, off + ((len + 3) & ~3));
    out.push({ type, raw: b.subarray(off, end) });
    off = end;
  }
  return out;
}
