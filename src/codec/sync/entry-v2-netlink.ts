/**
 * A ctnetlink conntrack message straight to its sync record body (entry-v2.ts), in one pass
 * over the bytes (issue 25): no entry object, no address text, one allocation (the body).
 * The master's intake ran every event through decodeConntrack (an object per nest, four
 * address strings) and entryToBodyV2 (the strings parsed back to bytes); this gives the same
 * bytes as entryToBodyV2(decodeConntrack(m)) for every message decodeConntrack reads
 * (property-tested). It reads only what a record carries and checks those attributes as
 * decodeConntrack does (lengths, nesting, a known TCP state, both addresses of the entry's
 * family); attributes a record does not carry (counters, helper, sequence adjustment, the
 * master tuple) are skipped unread, so a message whose counters are damaged still gives its
 * record. The decoder never throws: bad bytes give a closed reason and a detail.
 */
import { AF_INET, AF_INET6 } from '../netlink/address.js';
import {
  CTA_ID,
  CTA_IP_V4_DST,
  CTA_IP_V4_SRC,
  CTA_IP_V6_DST,
  CTA_IP_V6_SRC,
  CTA_MARK,
  CTA_PROTO_DST_PORT,
  CTA_PROTO_ICMP_CODE,
  CTA_PROTO_ICMP_ID,
  CTA_PROTO_ICMP_TYPE,
  CTA_PROTO_ICMPV6_CODE,
  CTA_PROTO_ICMPV6_ID,
  CTA_PROTO_ICMPV6_TYPE,
  CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT,
  CTA_PROTOINFO,
  CTA_PROTOINFO_TCP,
  CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
  CTA_PROTOINFO_TCP_FLAGS_REPLY,
  CTA_PROTOINFO_TCP_STATE,
  CTA_PROTOINFO_TCP_WSCALE_ORIGINAL,
  CTA_PROTOINFO_TCP_WSCALE_REPLY,
  CTA_STATUS,
  CTA_TIMEOUT,
  CTA_TUPLE_IP,
  CTA_TUPLE_ORIG,
  CTA_TUPLE_PROTO,
  CTA_TUPLE_REPLY,
  CTA_TUPLE_ZONE,
  CTA_USE,
  CTA_ZONE,
  NFGENMSG_LEN,
  NFNETLINK_V0,
  TCP_CT_STATES,
} from '../netlink/ctnetlink.js';
import { NLA_ALIGN, NLA_HDRLEN, NLA_TYPE_MASK, type NetlinkDecodeReason } from '../netlink/nlmsg.js';
import { ENTRY_ENCODING_V2, ENTRY_V2_FIELDS as F } from './entry-v2.js';

export type CtBodyResult =
  /** `mark`: CTA_MARK (sharing's bucket owner is read from it), undefined when absent. */
  | { ok: true; body: Uint8Array; mark: number | undefined }
  | { ok: false; reason: NetlinkDecodeReason; detail: string };

/** A tuple read in place: the offsets of its addresses in the payload and its protocol fields; -1 where absent. */
interface TupleAt {
  src: number;
  dst: number;
  /** An address of the other family was there (decodeConntrack's wording for a missing address). */
  other: boolean;
  hasIp: boolean;
  proto: number;
  sport: number;
  dport: number;
  icmpId: number;
  icmp6Id: number;
  icmpType: number;
  icmp6Type: number;
  icmpCode: number;
  icmp6Code: number;
  zone: number;
}
const tupleAt = (): TupleAt => ({ src: -1, dst: -1, other: false, hasIp: false, proto: -1, sport: -1, dport: -1, icmpId: -1, icmp6Id: -1, icmpType: -1, icmp6Type: -1, icmpCode: -1, icmp6Code: -1, zone: -1 });
/** Scratch, reused by every call (the transcoder runs synchronously to the end). */
const ORIG = tupleAt();
const REPLY = tupleAt();
const TCP = { present: false, state: 0, wscaleOrig: -1, wscaleReply: -1, flagsOrig: -1, flagsReply: -1 };

/** Why the last reader failed (set with the return of false). */
let why: { reason: NetlinkDecodeReason; detail: string } = { reason: 'bad_attribute_length', detail: '' };
const bad = (reason: NetlinkDecodeReason, detail: string): false => {
  why = { reason, detail };
  return false;
};

/** Walks the attributes in b[start, end): `each(type, valueAt, valueLen)` returns false to stop with `why`. */
function walk(b: Uint8Array, start: number, end: number, where: string, each: (type: number, at: number, n: number) => boolean): boolean {
  let off = start;
  while (end - off >= NLA_HDRLEN) {
    const len = b[off]! | (b[off + 1]! << 8);
    const type = (b[off + 2]! | (b[off + 3]! << 8)) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || len > end - off) return bad('bad_attribute_length', `${where}: nla_len ${len} of type ${type} at offset ${off - start}`);
    if (!each(type, off + NLA_HDRLEN, len - NLA_HDRLEN)) return false;
    off += NLA_ALIGN(len);
  }
  return true;
}

const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const be32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const sized = (n: number, want: number, name: string): boolean => n === want || bad('bad_attribute_value', `${name} of ${n} bytes`);

function readIp(b: Uint8Array, at: number, n: number, family: 4 | 6, t: TupleAt, name: string): boolean {
  t.src = -1;
  t.dst = -1;
  t.other = false;
  const ok = walk(b, at, at + n, `${name}/CTA_TUPLE_IP`, (type, v, len) => {
    if (type === CTA_IP_V4_SRC || type === CTA_IP_V4_DST) {
      if (!sized(len, 4, type === CTA_IP_V4_SRC ? 'CTA_IP_V4_SRC' : 'CTA_IP_V4_DST')) return false;
      if (family !== 4) t.other = true;
      else if (type === CTA_IP_V4_SRC) t.src = v;
      else t.dst = v;
    } else if (type === CTA_IP_V6_SRC || type === CTA_IP_V6_DST) {
      if (!sized(len, 16, type === CTA_IP_V6_SRC ? 'CTA_IP_V6_SRC' : 'CTA_IP_V6_DST')) return false;
      if (family !== 6) t.other = true;
      else if (type === CTA_IP_V6_SRC) t.src = v;
      else t.dst = v;
    }
    return true;
  });
  if (!ok) return false;
  if (t.src >= 0 && t.dst >= 0) return true;
  if (t.other) return bad('bad_attribute_value', `${name}: IPv${family === 4 ? 6 : 4} address in an IPv${family} entry`);
  return bad('missing_attribute', `${name}: source or destination address`);
}

/** An attribute table: each type's length and name (index: type). */
function specs(list: readonly (readonly [type: number, len: number, name: string])[]): readonly (readonly [number, string] | undefined)[] {
  const a: (readonly [number, string] | undefined)[] = [];
  for (const [type, len, name] of list) a[type] = [len, name];
  return a;
}

/** Lengths and names of the CTA_PROTO_* attributes. */
const PROTO_ATTRS = specs([
  [CTA_PROTO_NUM, 1, 'CTA_PROTO_NUM'],
  [CTA_PROTO_SRC_PORT, 2, 'CTA_PROTO_SRC_PORT'],
  [CTA_PROTO_DST_PORT, 2, 'CTA_PROTO_DST_PORT'],
  [CTA_PROTO_ICMP_ID, 2, 'CTA_PROTO_ICMP_ID'],
  [CTA_PROTO_ICMP_TYPE, 1, 'CTA_PROTO_ICMP_TYPE'],
  [CTA_PROTO_ICMP_CODE, 1, 'CTA_PROTO_ICMP_CODE'],
  [CTA_PROTO_ICMPV6_ID, 2, 'CTA_PROTO_ICMPV6_ID'],
  [CTA_PROTO_ICMPV6_TYPE, 1, 'CTA_PROTO_ICMPV6_TYPE'],
  [CTA_PROTO_ICMPV6_CODE, 1, 'CTA_PROTO_ICMPV6_CODE'],
]);

function readProto(b: Uint8Array, at: number, n: number, t: TupleAt, name: string): boolean {
  t.proto = t.sport = t.dport = t.icmpId = t.icmp6Id = t.icmpType = t.icmp6Type = t.icmpCode = t.icmp6Code = -1;
  const ok = walk(b, at, at + n, `${name}/CTA_TUPLE_PROTO`, (type, v, len) => {
    const spec = PROTO_ATTRS[type];
    if (!spec) return true;
    if (!sized(len, spec[0], spec[1])) return false;
    const x = len === 1 ? b[v]! : be16(b, v);
    if (type === CTA_PROTO_NUM) t.proto = x;
    else if (type === CTA_PROTO_SRC_PORT) t.sport = x;
    else if (type === CTA_PROTO_DST_PORT) t.dport = x;
    else if (type === CTA_PROTO_ICMP_ID) t.icmpId = x;
    else if (type === CTA_PROTO_ICMP_TYPE) t.icmpType = x;
    else if (type === CTA_PROTO_ICMP_CODE) t.icmpCode = x;
    else if (type === CTA_PROTO_ICMPV6_ID) t.icmp6Id = x;
    else if (type === CTA_PROTO_ICMPV6_TYPE) t.icmp6Type = x;
    else t.icmp6Code = x;
    return true;
  });
  return ok && (t.proto >= 0 || bad('missing_attribute', `${name}/CTA_PROTO_NUM`));
}

function readTuple(b: Uint8Array, at: number, n: number, family: 4 | 6, t: TupleAt, name: string): boolean {
  t.hasIp = false;
  t.proto = -1;
  t.zone = -1;
  let hasProto = false;
  const ok = walk(b, at, at + n, name, (type, v, len) => {
    if (type === CTA_TUPLE_IP) return (t.hasIp = readIp(b, v, len, family, t, name));
    if (type === CTA_TUPLE_PROTO) return (hasProto = readProto(b, v, len, t, name));
    if (type === CTA_TUPLE_ZONE) {
      if (!sized(len, 2, 'CTA_TUPLE_ZONE')) return false;
      t.zone = be16(b, v);
    }
    return true;
  });
  if (!ok) return false;
  if (!t.hasIp) return bad('missing_attribute', `${name}/CTA_TUPLE_IP`);
  return hasProto || bad('missing_attribute', `${name}/CTA_TUPLE_PROTO`);
}

const TCP_ATTRS = specs([
  [CTA_PROTOINFO_TCP_STATE, 1, 'CTA_PROTOINFO_TCP_STATE'],
  [CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, 1, 'CTA_PROTOINFO_TCP_WSCALE_ORIGINAL'],
  [CTA_PROTOINFO_TCP_WSCALE_REPLY, 1, 'CTA_PROTOINFO_TCP_WSCALE_REPLY'],
  [CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, 2, 'CTA_PROTOINFO_TCP_FLAGS_ORIGINAL'],
  [CTA_PROTOINFO_TCP_FLAGS_REPLY, 2, 'CTA_PROTOINFO_TCP_FLAGS_REPLY'],
]);

function readProtoinfo(b: Uint8Array, at: number, n: number): boolean {
  TCP.present = false;
  return walk(b, at, at + n, 'CTA_PROTOINFO', (type, v, len) => {
    if (type !== CTA_PROTOINFO_TCP) return true;
    TCP.state = 0; // a protoinfo without a state reads as NONE, as in decodeConntrack
    TCP.wscaleOrig = TCP.wscaleReply = TCP.flagsOrig = TCP.flagsReply = -1;
    const ok = walk(b, v, v + len, 'CTA_PROTOINFO_TCP', (t, w, m) => {
      const spec = TCP_ATTRS[t];
      if (!spec) return true;
      if (!sized(m, spec[0], spec[1])) return false;
      const x = b[w]!;
      if (t === CTA_PROTOINFO_TCP_STATE) {
        if (x >= TCP_CT_STATES.length) return bad('bad_attribute_value', `CTA_PROTOINFO_TCP_STATE of ${m} bytes`);
        TCP.state = x;
      } else if (t === CTA_PROTOINFO_TCP_WSCALE_ORIGINAL) TCP.wscaleOrig = x;
      else if (t === CTA_PROTOINFO_TCP_WSCALE_REPLY) TCP.wscaleReply = x;
      else if (t === CTA_PROTOINFO_TCP_FLAGS_ORIGINAL) TCP.flagsOrig = x;
      else TCP.flagsReply = x;
      return true;
    });
    TCP.present = ok;
    return ok;
  });
}

const isPortProto = (p: number) => p === 6 || p === 17 || p === 33 || p === 132 || p === 136;
const isIcmpProto = (p: number) => p === 1 || p === 58;
const tupleLen = (t: TupleAt, alen: number) => 2 * alen + 1 + (isPortProto(t.proto) || isIcmpProto(t.proto) ? 4 : 0);

function putTuple(out: Buffer, o: number, type: number, b: Uint8Array, t: TupleAt, alen: number): number {
  out[o] = type;
  out[o + 1] = tupleLen(t, alen);
  o += 2;
  for (let i = 0; i < alen; i++) out[o + i] = b[t.src + i]!;
  for (let i = 0; i < alen; i++) out[o + alen + i] = b[t.dst + i]!;
  o += 2 * alen;
  out[o++] = t.proto;
  const pair = (x: number, y: number) => {
    out.writeUInt16BE(x < 0 ? 0 : x, o);
    out.writeUInt16BE(y < 0 ? 0 : y, o + 2);
  };
  if (isPortProto(t.proto)) {
    pair(t.sport, t.dport);
    o += 4;
  } else if (isIcmpProto(t.proto)) {
    const id = t.icmpId >= 0 ? t.icmpId : t.icmp6Id;
    const type = t.icmpType >= 0 ? t.icmpType : t.icmp6Type;
    const code = t.icmpCode >= 0 ? t.icmpCode : t.icmp6Code;
    out.writeUInt16BE(id < 0 ? 0 : id, o);
    out[o + 2] = type < 0 ? 0 : type;
    out[o + 3] = code < 0 ? 0 : code;
    o += 4;
  }
  return o;
}

/**
 * The payload of a ctnetlink conntrack message (after the netlink header: struct nfgenmsg and
 * the attributes; an event, a dump reply, a get reply) -> its record body and its mark.
 */
export function ctPayloadToBodyV2(b: Uint8Array): CtBodyResult {
  if (b.length < NFGENMSG_LEN) return { ok: false, reason: 'short_payload', detail: `nfgenmsg needs ${NFGENMSG_LEN} bytes, got ${b.length}` };
  const family = b[0] === AF_INET ? 4 : b[0] === AF_INET6 ? 6 : undefined;
  if (family === undefined) return { ok: false, reason: 'bad_family', detail: `nfgen_family ${b[0]}` };
  if (b[1] !== NFNETLINK_V0) return { ok: false, reason: 'bad_header_field', detail: `nfgenmsg version ${b[1]}` };
  let orig = false;
  let reply = false;
  let status = -1;
  let timeout = -1;
  let mark = -1;
  let zone = -1;
  TCP.present = false;
  const ok = walk(b, NFGENMSG_LEN, b.length, 'conntrack', (type, v, n) => {
    switch (type) {
      case CTA_TUPLE_ORIG:
        return (orig = readTuple(b, v, n, family, ORIG, 'CTA_TUPLE_ORIG'));
      case CTA_TUPLE_REPLY:
        return (reply = readTuple(b, v, n, family, REPLY, 'CTA_TUPLE_REPLY'));
      case CTA_STATUS:
        return sized(n, 4, 'CTA_STATUS') && ((status = be32(b, v)), true);
      case CTA_TIMEOUT:
        return sized(n, 4, 'CTA_TIMEOUT') && ((timeout = be32(b, v)), true);
      case CTA_MARK:
        return sized(n, 4, 'CTA_MARK') && ((mark = be32(b, v)), true);
      case CTA_ZONE:
        return sized(n, 2, 'CTA_ZONE') && ((zone = be16(b, v)), true);
      case CTA_USE:
        return sized(n, 4, 'CTA_USE');
      case CTA_ID:
        return sized(n, 4, 'CTA_ID');
      case CTA_PROTOINFO:
        return readProtoinfo(b, v, n);
      default:
        return true;
    }
  });
  if (!ok) return { ok: false, ...why };
  if (!orig) return { ok: false, reason: 'missing_attribute', detail: 'CTA_TUPLE_ORIG' };
  if (!reply) return { ok: false, reason: 'missing_attribute', detail: 'CTA_TUPLE_REPLY' };
  const alen = family === 4 ? 4 : 16;
  const n =
    4 + 2 + tupleLen(ORIG, alen) + 2 + tupleLen(REPLY, alen) + (status >= 0 ? 6 : 0) + (timeout >= 0 ? 6 : 0) + (mark >= 0 ? 6 : 0) + (zone >= 0 ? 4 : 0) + (TCP.present ? 7 : 0) + (ORIG.zone >= 0 ? 4 : 0) + (REPLY.zone >= 0 ? 4 : 0);
  const out = Buffer.allocUnsafe(n);
  out[0] = ENTRY_ENCODING_V2;
  out[1] = F.FAMILY;
  out[2] = 1;
  out[3] = family;
  let o = putTuple(out, 4, F.ORIG, b, ORIG, alen);
  o = putTuple(out, o, F.REPLY, b, REPLY, alen);
  const u32 = (type: number, x: number) => {
    out[o] = type;
    out[o + 1] = 4;
    out.writeUInt32BE(x, o + 2);
    o += 6;
  };
  const u16 = (type: number, x: number) => {
    out[o] = type;
    out[o + 1] = 2;
    out.writeUInt16BE(x, o + 2);
    o += 4;
  };
  if (status >= 0) u32(F.STATUS, status);
  if (timeout >= 0) u32(F.TIMEOUT, timeout);
  if (mark >= 0) u32(F.MARK, mark);
  if (zone >= 0) u16(F.ZONE, zone);
  if (TCP.present) {
    out[o] = F.TCP;
    out[o + 1] = 5;
    out[o + 2] = TCP.state;
    out[o + 3] = TCP.wscaleOrig < 0 ? 0xff : TCP.wscaleOrig;
    out[o + 4] = TCP.wscaleReply < 0 ? 0xff : TCP.wscaleReply;
    out[o + 5] = TCP.flagsOrig < 0 ? 0 : TCP.flagsOrig;
    out[o + 6] = TCP.flagsReply < 0 ? 0 : TCP.flagsReply;
    o += 7;
  }
  if (ORIG.zone >= 0) u16(F.ORIG_ZONE, ORIG.zone);
  if (REPLY.zone >= 0) u16(F.REPLY_ZONE, REPLY.zone);
  return { ok: true, body: out, mark: mark >= 0 ? mark : undefined };
}
