/**
 * Conntrack entries in sync records (the two pure converters, like conntrack-tools'
 * ct2msg / msg2ct), encoding version 2 (sync wire version 2): binary type-length-value
 * fields. A typical IPv4 TCP entry with NAT takes 59 bytes (version 1's JSON: about 330). A tuple's addresses are of the FAMILY by their length.
 *
 *   body   := 0x02 field*
 *   field  := type:u8 length:u8 value[length]
 *
 *   type  name         value
 *   1     FAMILY       u8: 4 or 6                                        required
 *   2     ORIG         tuple (original direction)                         required
 *   3     REPLY        tuple (reply direction: the NAT is here)           required
 *   4     STATUS       u32, IPS_* bits
 *   5     TIMEOUT      u32, seconds left
 *   6     MARK         u32
 *   7     ZONE         u16
 *   8     TCP          state:u8 (TCP_CONNTRACK_*), wscale orig:u8, wscale reply:u8,
 *                      flags orig:u8, flags reply:u8 (0xff: a wscale not known)
 *   9     ORIG_ZONE    u16 (a zone for the original direction only; rare)
 *   10    REPLY_ZONE   u16
 *
 *   tuple  := src[4|16] dst[4|16] proto:u8 ports
 *   ports  := tcp, udp, udplite, sctp, dccp: sport:u16 dport:u16
 *             icmp, icmpv6: id:u16 type:u8 code:u8
 *             any other protocol: nothing
 *
 * All integers big-endian. The fields may come in any order; one that appears twice is
 * refused; an unknown type is skipped (a newer peer's addition), so fields can be added
 * without a new version. Every problem has its own closed reason; the decoder never throws.
 */
import type { ConntrackEntry, CtTcpInfo, CtTuple, RawCtEntry, RawCtTuple } from '../netlink/ctnetlink.js';
import { TCP_CT_STATES } from '../netlink/ctnetlink.js';
import { formatIPv4, formatIPv6, parseAddress } from '../../lib/ip-bytes.js';

export const ENTRY_ENCODING_V2 = 2;

export const ENTRY_V2_FIELDS = { FAMILY: 1, ORIG: 2, REPLY: 3, STATUS: 4, TIMEOUT: 5, MARK: 6, ZONE: 7, TCP: 8, ORIG_ZONE: 9, REPLY_ZONE: 10 } as const;
const F = ENTRY_V2_FIELDS;

export const ENTRY_V2_DECODE_REASONS = [
  'empty', // no bytes, or the version byte alone
  'bad_version', // not version 2
  'truncated', // a field runs past the end of the body
  'bad_length', // a field's length does not suit its type
  'duplicate_field', // a field appears twice
  'missing_field', // family, orig or reply absent
  'bad_family', // neither 4 nor 6
  'bad_proto_fields', // the tuple's bytes after the protocol do not fit it
  'bad_tcp_state', // a TCP state the kernel does not have
] as const;
export type EntryV2DecodeReason = (typeof ENTRY_V2_DECODE_REASONS)[number];

/** Protocols whose tuples carry two ports. */
const PORT_PROTOS = new Set([6, 17, 33, 132, 136]);
const ICMP_PROTOS = new Set([1, 58]);
const NO_WSCALE = 0xff;

/** Bytes of a tuple's value. */
function tupleLen(t: CtTuple, family: 4 | 6): number {
  return 2 * (family === 4 ? 4 : 16) + 1 + (PORT_PROTOS.has(t.proto) || ICMP_PROTOS.has(t.proto) ? 4 : 0);
}

/** Writes a tuple field (type, length, value) at `o`; returns the offset after it. */
function putTuple(b: Buffer, o: number, type: number, t: CtTuple, family: 4 | 6): number {
  const alen = family === 4 ? 4 : 16;
  const src = parseAddress(t.src, family);
  const dst = parseAddress(t.dst, family);
  if (!src || !dst) throw new RangeError(`tuple address is not IPv${family}: ${t.src} -> ${t.dst}`);
  b[o] = type;
  b[o + 1] = tupleLen(t, family);
  o += 2;
  b.set(src, o);
  b.set(dst, o + alen);
  o += 2 * alen;
  b[o++] = t.proto;
  if (PORT_PROTOS.has(t.proto)) {
    b.writeUInt16BE(t.srcPort ?? 0, o);
    b.writeUInt16BE(t.dstPort ?? 0, o + 2);
    o += 4;
  } else if (ICMP_PROTOS.has(t.proto)) {
    b.writeUInt16BE(t.icmpId ?? 0, o);
    b[o + 2] = t.icmpType ?? 0;
    b[o + 3] = t.icmpCode ?? 0;
    o += 4;
  }
  return o;
}

function putU32(b: Buffer, o: number, type: number, n: number): number {
  b[o] = type;
  b[o + 1] = 4;
  b.writeUInt32BE(n >>> 0, o + 2);
  return o + 6;
}

function putU16(b: Buffer, o: number, type: number, n: number): number {
  b[o] = type;
  b[o + 1] = 2;
  b.writeUInt16BE(n & 0xffff, o + 2);
  return o + 4;
}

/**
 * Our own entries only (from the kernel): a tuple of the wrong family is a bug, and throws.
 * One allocation per record: the encoder runs for every entry of a million-entry bulk sync.
 */
export function entryToBodyV2(e: ConntrackEntry): Uint8Array {
  const family = e.family === 6 ? 6 : 4;
  let n = 1 + 3 + 2 + tupleLen(e.orig, family) + 2 + tupleLen(e.reply, family);
  if (e.status !== undefined) n += 6;
  if (e.timeout !== undefined) n += 6;
  if (e.mark !== undefined) n += 6;
  if (e.zone !== undefined) n += 4;
  if (e.tcp) n += 7;
  if (e.orig.zone !== undefined) n += 4;
  if (e.reply.zone !== undefined) n += 4;
  const b = Buffer.allocUnsafe(n);
  b[0] = ENTRY_ENCODING_V2;
  b[1] = F.FAMILY;
  b[2] = 1;
  b[3] = family;
  let o = putTuple(b, 4, F.ORIG, e.orig, family);
  o = putTuple(b, o, F.REPLY, e.reply, family);
  if (e.status !== undefined) o = putU32(b, o, F.STATUS, e.status);
  if (e.timeout !== undefined) o = putU32(b, o, F.TIMEOUT, e.timeout);
  if (e.mark !== undefined) o = putU32(b, o, F.MARK, e.mark);
  if (e.zone !== undefined) o = putU16(b, o, F.ZONE, e.zone);
  if (e.tcp) {
    const st = TCP_CT_STATES.indexOf(e.tcp.state);
    b[o] = F.TCP;
    b[o + 1] = 5;
    b[o + 2] = st < 0 ? 0 : st;
    b[o + 3] = e.tcp.wscaleOrig ?? NO_WSCALE;
    b[o + 4] = e.tcp.wscaleReply ?? NO_WSCALE;
    b[o + 5] = e.tcp.flagsOrig ?? 0;
    b[o + 6] = e.tcp.flagsReply ?? 0;
    o += 7;
  }
  if (e.orig.zone !== undefined) o = putU16(b, o, F.ORIG_ZONE, e.orig.zone);
  if (e.reply.zone !== undefined) o = putU16(b, o, F.REPLY_ZONE, e.reply.zone);
  return b;
}

type Decoded<T> = { ok: true; value: T } | { ok: false; reason: EntryV2DecodeReason };

/** The tuple at body[o, o + len): its addresses are views into body (no copy), the rest read out. */
function decodeTuple(v: Uint8Array, o: number, len: number, family: 4 | 6): Decoded<RawCtTuple> {
  const alen = family === 4 ? 4 : 16;
  if (len < 2 * alen + 1) return { ok: false, reason: 'bad_length' };
  const t: RawCtTuple = { src: v.subarray(o, o + alen), dst: v.subarray(o + alen, o + 2 * alen), proto: v[o + 2 * alen]! };
  const rest = len - (2 * alen + 1);
  const p = o + 2 * alen + 1;
  if (PORT_PROTOS.has(t.proto)) {
    if (rest !== 4) return { ok: false, reason: 'bad_proto_fields' };
    t.srcPort = (v[p]! << 8) | v[p + 1]!;
    t.dstPort = (v[p + 2]! << 8) | v[p + 3]!;
  } else if (ICMP_PROTOS.has(t.proto)) {
    if (rest !== 4) return { ok: false, reason: 'bad_proto_fields' };
    t.icmpId = (v[p]! << 8) | v[p + 1]!;
    t.icmpType = v[p + 2]!;
    t.icmpCode = v[p + 3]!;
  } else if (rest !== 0) {
    return { ok: false, reason: 'bad_proto_fields' };
  }
  return { ok: true, value: t };
}

/** Sizes of the fixed-size fields (index: field type). */
const FIXED: readonly (number | undefined)[] = (() => {
  const a: (number | undefined)[] = [];
  a[F.FAMILY] = 1;
  a[F.STATUS] = 4;
  a[F.TIMEOUT] = 4;
  a[F.MARK] = 4;
  a[F.ZONE] = 2;
  a[F.TCP] = 5;
  a[F.ORIG_ZONE] = 2;
  a[F.REPLY_ZONE] = 2;
  return a;
})();
const KNOWN_MAX = F.REPLY_ZONE;

const be32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

/** Per known field type: where its value starts in the body being decoded (-1: absent), and its length. Reused: the decoder runs to its end without yielding. */
const AT = new Int32Array(KNOWN_MAX + 1);
const LEN = new Int32Array(KNOWN_MAX + 1);

/**
 * A record's entry with its addresses as bytes (views into `body`): what a receiving node
 * writes into its kernel without ever spelling an address. Validates everything
 * `bodyToEntryV2` does. The fields are found by offset, without a view each (issue 25: a
 * Buffer view costs more than the field's decoding; only the four addresses get one, of a
 * plain Uint8Array).
 */
export function bodyToRawV2(body: Uint8Array): Decoded<RawCtEntry> {
  if (body.length < 2) return { ok: false, reason: 'empty' };
  if (body[0] !== ENTRY_ENCODING_V2) return { ok: false, reason: 'bad_version' };
  AT.fill(-1);
  let i = 1;
  while (i < body.length) {
    if (i + 2 > body.length) return { ok: false, reason: 'truncated' };
    const type = body[i]!;
    const len = body[i + 1]!;
    if (i + 2 + len > body.length) return { ok: false, reason: 'truncated' };
    const at = i + 2;
    i = at + len;
    if (type > KNOWN_MAX || (FIXED[type] === undefined && type !== F.ORIG && type !== F.REPLY)) continue; // a newer peer's field
    if (AT[type] !== -1) return { ok: false, reason: 'duplicate_field' };
    if (FIXED[type] !== undefined && len !== FIXED[type]) return { ok: false, reason: 'bad_length' };
    AT[type] = at;
    LEN[type] = len;
  }
  if (AT[F.FAMILY]! < 0 || AT[F.ORIG]! < 0 || AT[F.REPLY]! < 0) return { ok: false, reason: 'missing_field' };
  const family = body[AT[F.FAMILY]!];
  if (family !== 4 && family !== 6) return { ok: false, reason: 'bad_family' };
  // Views of a plain Uint8Array: a Buffer's subarray makes a Buffer, several times dearer.
  const v = Object.getPrototypeOf(body) === Uint8Array.prototype ? body : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  const orig = decodeTuple(v, AT[F.ORIG]!, LEN[F.ORIG]!, family);
  if (!orig.ok) return orig;
  const reply = decodeTuple(v, AT[F.REPLY]!, LEN[F.REPLY]!, family);
  if (!reply.ok) return reply;
  const e: RawCtEntry = { family, orig: orig.value, reply: reply.value };
  if (AT[F.STATUS]! >= 0) e.status = be32(v, AT[F.STATUS]!);
  if (AT[F.TIMEOUT]! >= 0) e.timeout = be32(v, AT[F.TIMEOUT]!);
  if (AT[F.MARK]! >= 0) e.mark = be32(v, AT[F.MARK]!);
  if (AT[F.ZONE]! >= 0) e.zone = be16(v, AT[F.ZONE]!);
  if (AT[F.ORIG_ZONE]! >= 0) e.orig.zone = be16(v, AT[F.ORIG_ZONE]!);
  if (AT[F.REPLY_ZONE]! >= 0) e.reply.zone = be16(v, AT[F.REPLY_ZONE]!);
  const tp = AT[F.TCP]!;
  if (tp >= 0) {
    const state = TCP_CT_STATES[v[tp]!];
    if (!state) return { ok: false, reason: 'bad_tcp_state' };
    const t: CtTcpInfo = { state };
    if (v[tp + 1] !== NO_WSCALE) t.wscaleOrig = v[tp + 1]!;
    if (v[tp + 2] !== NO_WSCALE) t.wscaleReply = v[tp + 2]!;
    if (v[tp + 3]) t.flagsOrig = v[tp + 3]!;
    if (v[tp + 4]) t.flagsReply = v[tp + 4]!;
    e.tcp = t;
  }
  return { ok: true, value: e };
}

/** The entry with its addresses spelled out. */
export function rawToEntry(r: RawCtEntry): ConntrackEntry {
  const fmt = r.family === 4 ? formatIPv4 : formatIPv6;
  const tuple = (t: RawCtTuple): CtTuple => ({ ...t, src: fmt(t.src, 0), dst: fmt(t.dst, 0) });
  const e: ConntrackEntry = { ...r, orig: tuple(r.orig), reply: tuple(r.reply) };
  return e;
}

export function bodyToEntryV2(body: Uint8Array): Decoded<ConntrackEntry> {
  const r = bodyToRawV2(body);
  return r.ok ? { ok: true, value: rawToEntry(r.value) } : r;
}

/**
 * A key naming the entry (its original tuple and zone) for ordering writes: the bytes as a
 * string, no address text.
 */
export function rawEntryKey(e: RawCtEntry): string {
  const o = e.orig;
  const bytes = (b: Uint8Array) => String.fromCharCode.apply(null, b as unknown as number[]);
  return `${bytes(o.src)}${bytes(o.dst)}|${o.proto}|${o.srcPort ?? o.icmpId ?? ''}|${o.dstPort ?? o.icmpType ?? ''}|${o.zone ?? ''}|${e.zone ?? ''}`;
}
