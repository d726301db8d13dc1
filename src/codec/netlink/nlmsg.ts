/**
 * Netlink framing (linux/netlink.h): the message header (struct nlmsghdr), attributes
 * (struct nlattr, the same layout as rtnetlink's struct rtattr), splitting a datagram into
 * messages, and the control messages NLMSG_ERROR / NLMSG_DONE.
 *
 * Pure: bytes in, values out. Decoders never throw on any bytes; they return
 * `{ok:true, value}` or `{ok:false, reason}` with a reason from a closed set
 * (NETLINK_DECODE_REASONS) and, for people, an optional detail. Encoders take values the
 * caller controls and return Buffers. All integers are host order, which the kernel uses on
 * netlink: little-endian on every machine this runs on (x86_64, aarch64).
 */
import { errnoName } from './errno.js';

// ---------------------------------------------------------------------------------------
// Constants (linux/netlink.h unless noted)

export const NETLINK_ROUTE = 0; // linux/netlink.h: routing/device hook

export const NLMSG_ALIGNTO = 4; // linux/netlink.h: NLMSG_ALIGNTO 4U
export const NLMSG_HDRLEN = 16; // linux/netlink.h: NLMSG_ALIGN(sizeof(struct nlmsghdr))
export const NLA_ALIGNTO = 4; // linux/netlink.h: NLA_ALIGNTO 4
export const NLA_HDRLEN = 4; // linux/netlink.h: NLA_ALIGN(sizeof(struct nlattr))

// Message types below NLMSG_MIN_TYPE are control messages.
export const NLMSG_NOOP = 0x1; // linux/netlink.h: nothing
export const NLMSG_ERROR = 0x2; // linux/netlink.h: error (or ACK when error == 0)
export const NLMSG_DONE = 0x3; // linux/netlink.h: end of a dump
export const NLMSG_OVERRUN = 0x4; // linux/netlink.h: data lost
export const NLMSG_MIN_TYPE = 0x10; // linux/netlink.h: < 0x10: reserved control messages

// nlmsg_flags
export const NLM_F_REQUEST = 0x01; // linux/netlink.h: it is a request message
export const NLM_F_MULTI = 0x02; // linux/netlink.h: multipart message, terminated by NLMSG_DONE
export const NLM_F_ACK = 0x04; // linux/netlink.h: reply with ack, with zero or error code
export const NLM_F_ECHO = 0x08; // linux/netlink.h: receive resulting notifications
export const NLM_F_DUMP_INTR = 0x10; // linux/netlink.h: dump was inconsistent due to sequence change
export const NLM_F_DUMP_FILTERED = 0x20; // linux/netlink.h: dump was filtered as requested
// Modifiers to GET requests
export const NLM_F_ROOT = 0x100; // linux/netlink.h: specify tree root
export const NLM_F_MATCH = 0x200; // linux/netlink.h: return all matching
export const NLM_F_ATOMIC = 0x400; // linux/netlink.h: atomic GET
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH; // linux/netlink.h
// Modifiers to NEW requests
export const NLM_F_REPLACE = 0x100; // linux/netlink.h: override existing
export const NLM_F_EXCL = 0x200; // linux/netlink.h: do not touch, if it exists
export const NLM_F_CREATE = 0x400; // linux/netlink.h: create, if it does not exist
export const NLM_F_APPEND = 0x800; // linux/netlink.h: add to end of list
// Flags for ACK messages
export const NLM_F_CAPPED = 0x100; // linux/netlink.h: request was capped
export const NLM_F_ACK_TLVS = 0x200; // linux/netlink.h: extended ACK TLVs were included

// enum nlmsgerr_attrs (extended ACK, with NETLINK_EXT_ACK set on the socket)
export const NLMSGERR_ATTR_MSG = 1; // linux/netlink.h: error message string
export const NLMSGERR_ATTR_OFFS = 2; // linux/netlink.h: offset of the invalid attribute
export const NLMSGERR_ATTR_COOKIE = 3; // linux/netlink.h
export const NLMSGERR_ATTR_POLICY = 4; // linux/netlink.h
export const NLMSGERR_ATTR_MISS_TYPE = 5; // linux/netlink.h
export const NLMSGERR_ATTR_MISS_NEST = 6; // linux/netlink.h

// nla_type bits
export const NLA_F_NESTED = 1 << 15; // linux/netlink.h
export const NLA_F_NET_BYTEORDER = 1 << 14; // linux/netlink.h
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff; // linux/netlink.h

/** NLMSG_ALIGN(len) (linux/netlink.h); NLA_ALIGN and RTA_ALIGN are the same with 4. */
export function NLMSG_ALIGN(len: number): number {
  return (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
}
export function NLA_ALIGN(len: number): number {
  return (len + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);
}

// ---------------------------------------------------------------------------------------
// Results

/** Why a decoder rejected its input; one closed set for every netlink decoder. */
export const NETLINK_DECODE_REASONS = [
  'short_header', // fewer bytes than a struct nlmsghdr (16)
  'bad_message_length', // nlmsg_len below the header or beyond the datagram
  'short_payload', // payload shorter than its fixed header (nlmsgerr, ifinfomsg, ifaddrmsg, ...)
  'bad_header_field', // a fixed header field out of range (ifa_prefixlen beyond the family's bits)
  'bad_attribute_length', // nla_len below 4 or beyond its container
  'bad_attribute_value', // an attribute whose length does not fit its kind (u32 of 3 bytes, ...)
  'missing_attribute', // a required attribute is absent
  'unexpected_type', // a message type this decoder does not read
  'bad_family', // an address family this decoder does not read
] as const;
export type NetlinkDecodeReason = (typeof NETLINK_DECODE_REASONS)[number];

export type DecodeResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: NetlinkDecodeReason; detail?: string };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}
export function fail(reason: NetlinkDecodeReason, detail?: string): { ok: false; reason: NetlinkDecodeReason; detail?: string } {
  return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail };
}

// ---------------------------------------------------------------------------------------
// struct nlmsghdr

/** struct nlmsghdr (linux/netlink.h): 16 bytes, host order. */
export interface NlMsgHdr {
  /** nlmsg_len: length of the message including the header. */
  len: number;
  /** nlmsg_type: NLMSG_* control types or a family's message type (RTM_NEWLINK ...). */
  type: number;
  /** nlmsg_flags: NLM_F_*. */
  flags: number;
  /** nlmsg_seq: sequence number, echoed by the kernel in replies. */
  seq: number;
  /** nlmsg_pid: sending port id (0 = the kernel; in replies and self-caused events: ours). */
  pid: number;
}

/** One message of a datagram: its header and the bytes after it, up to nlmsg_len. */
export interface NlMessage {
  header: NlMsgHdr;
  payload: Buffer;
}

export function decodeNlMsgHdr(buf: Buffer, offset = 0): DecodeResult<NlMsgHdr> {
  if (offset < 0 || buf.length - offset < NLMSG_HDRLEN) return fail('short_header');
  return ok({
    len: buf.readUInt32LE(offset),
    type: buf.readUInt16LE(offset + 4),
    flags: buf.readUInt16LE(offset + 6),
    seq: buf.readUInt32LE(offset + 8),
    pid: buf.readUInt32LE(offset + 12),
  });
}

/**
 * Splits a received datagram into its messages (one, or several for a multi-part dump).
 * Each message starts at the NLMSG_ALIGN'ed end of the previous one; the padding after the
 * last message may be absent. All or nothing: once one length is wrong the rest cannot be
 * found, so the whole datagram is rejected.
 */
export function splitMessages(datagram: Buffer): DecodeResult<NlMessage[]> {
  const out: NlMessage[] = [];
  let off = 0;
  while (off < datagram.length) {
    const h = decodeNlMsgHdr(datagram, off);
    if (!h.ok) return fail('short_header', `at offset ${off}`);
    const { len } = h.value;
    if (len < NLMSG_HDRLEN || len > datagram.length - off) {
      return fail('bad_message_length', `nlmsg_len ${len} at offset ${off} of ${datagram.length}`);
    }
    out.push({ header: h.value, payload: datagram.subarray(off + NLMSG_HDRLEN, off + len) });
    off += NLMSG_ALIGN(len);
  }
  return ok(out);
}

/** Encodes a whole message: header (nlmsg_len filled in) followed by the parts, each padded to 4. */
export function encodeNlMsg(
  h: { type: number; flags: number; seq: number; pid?: number },
  ...parts: Uint8Array[]
): Buffer {
  // allocUnsafe (pooled, not zeroed) throughout the encoders: every byte is written or
  // zeroed explicitly. A bulk sync encodes a write per entry, and fresh zeroed
  // ArrayBuffers per attribute were most of its cost.
  let bodyLen = 0;
  for (const p of parts) bodyLen += NLA_ALIGN(p.length);
  const out = Buffer.allocUnsafe(NLMSG_HDRLEN + bodyLen);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(h.type, 4);
  out.writeUInt16LE(h.flags, 6);
  out.writeUInt32LE(h.seq >>> 0, 8);
  out.writeUInt32LE((h.pid ?? 0) >>> 0, 12);
  let at = NLMSG_HDRLEN;
  for (const p of parts) {
    out.set(p, at);
    const end = at + NLA_ALIGN(p.length);
    out.fill(0, at + p.length, end);
    at = end;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Control messages

/** Extended ACK (NETLINK_EXT_ACK): the kernel's message and the offset of the bad attribute. */
export interface ExtAck {
  msg?: string;
  offset?: number;
}

/** NLMSG_ERROR: an ACK (errno 0) or a failure of the request whose header it carries. */
export interface NlErrorMsg {
  /** Positive errno (the wire carries it negated); 0 for an ACK. */
  errno: number;
  /** Its name ('EEXIST', ...), or 'OK' for an ACK. */
  errnoName: string;
  /** The header of the request this answers (nlmsgerr.msg). */
  request: NlMsgHdr;
  extack?: ExtAck;
}

const NLMSGERR_LEN = 4 + NLMSG_HDRLEN; // sizeof(struct nlmsgerr) = 20

const EXTACK_TABLE = {
  [NLMSGERR_ATTR_MSG]: attr('NLMSGERR_ATTR_MSG', nlaString),
  [NLMSGERR_ATTR_OFFS]: attr('NLMSGERR_ATTR_OFFS', nlaU32),
} as const;

/** Decodes an NLMSG_ERROR message (struct nlmsgerr, then with ACK_TLVS the extended ACK). */
export function decodeNlError(msg: NlMessage): DecodeResult<NlErrorMsg> {
  if (msg.header.type !== NLMSG_ERROR) return fail('unexpected_type', `type ${msg.header.type}`);
  const p = msg.payload;
  if (p.length < NLMSGERR_LEN) return fail('short_payload', `nlmsgerr needs ${NLMSGERR_LEN} bytes, got ${p.length}`);
  const error = p.readInt32LE(0);
  const req = decodeNlMsgHdr(p, 4);
  if (!req.ok) return req;
  const errno = error === 0 ? 0 : Math.abs(error);
  const value: NlErrorMsg = { errno, errnoName: errno === 0 ? 'OK' : errnoName(errno), request: req.value };
  if (msg.header.flags & NLM_F_ACK_TLVS) {
    // The original request follows in full unless the ACK is capped or a success.
    let tlvAt = NLMSGERR_LEN;
    if (error !== 0 && !(msg.header.flags & NLM_F_CAPPED)) {
      tlvAt = 4 + NLMSG_ALIGN(req.value.len);
      if (req.value.len < NLMSG_HDRLEN || tlvAt > p.length) return fail('short_payload', 'echoed request beyond the message');
    }
    const tlvs = parseAttrs(p.subarray(tlvAt), EXTACK_TABLE);
    if (!tlvs.ok) return tlvs;
    const ext: ExtAck = {};
    if (tlvs.value.NLMSGERR_ATTR_MSG !== undefined) ext.msg = tlvs.value.NLMSGERR_ATTR_MSG;
    if (tlvs.value.NLMSGERR_ATTR_OFFS !== undefined) ext.offset = tlvs.value.NLMSGERR_ATTR_OFFS;
    if (ext.msg !== undefined || ext.offset !== undefined) value.extack = ext;
  }
  return ok(value);
}

/**
 * NLMSG_DONE: the end of a dump. Its payload is an int: 0, or a negative errno when the dump
 * failed part way. Very old kernels sent no payload; that reads as 0.
 */
export function decodeNlDone(msg: NlMessage): DecodeResult<{ errno: number; errnoName: string }> {
  if (msg.header.type !== NLMSG_DONE) return fail('unexpected_type', `type ${msg.header.type}`);
  const p = msg.payload;
  if (p.length === 0) return ok({ errno: 0, errnoName: 'OK' });
  if (p.length < 4) return fail('short_payload', `NLMSG_DONE payload of ${p.length} bytes`);
  const e = p.readInt32LE(0);
  const errno = Math.abs(e);
  return ok({ errno, errnoName: errno === 0 ? 'OK' : errnoName(errno) });
}

// ---------------------------------------------------------------------------------------
// Attributes (struct nlattr / struct rtattr)

/**
 * How to read one attribute: the kernel's name for it and a parser of its data, which
 * returns undefined when the data does not fit (wrong length for a u32, ...).
 */
export interface AttrSpec<N extends string = string, T = unknown> {
  readonly name: N;
  readonly parse: (data: Buffer) => T | undefined;
}

export function attr<N extends string, T>(name: N, parse: (data: Buffer) => T | undefined): AttrSpec<N, T> {
  return { name, parse };
}

/** A decoder table: attribute type -> spec. Types absent from the table are skipped. */
export type AttrTable = { readonly [type: number]: AttrSpec<string, unknown> };

/** The values a table reads, keyed by the kernel's attribute names; every one optional. */
export type AttrValues<S extends AttrTable> = {
  -readonly [K in keyof S as S[K] extends AttrSpec<infer N, unknown> ? N : never]?: S[K] extends AttrSpec<string, infer T>
    ? T
    : never;
};

/**
 * Reads a run of attributes with a table: rejects a length below the header or beyond the
 * buffer (bad_attribute_length) and data a known attribute's parser refuses
 * (bad_attribute_value); skips types the table does not know. A repeated attribute: the
 * last one wins, as in the kernel's nla_parse. Fewer than NLA_HDRLEN bytes left at the end
 * (padding) are ignored. The NLA_F_NESTED / NLA_F_NET_BYTEORDER bits are masked off.
 */
export function parseAttrs<S extends AttrTable>(buf: Buffer, table: S): DecodeResult<AttrValues<S>> {
  const out: Record<string, unknown> = {};
  let off = 0;
  while (buf.length - off >= NLA_HDRLEN) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || len > buf.length - off) {
      return fail('bad_attribute_length', `nla_len ${len} of type ${type} at offset ${off}`);
    }
    const spec = table[type];
    if (spec) {
      const v = spec.parse(buf.subarray(off + NLA_HDRLEN, off + len));
      if (v === undefined) return fail('bad_attribute_value', `${spec.name} of ${len - NLA_HDRLEN} bytes`);
      out[spec.name] = v;
    }
    off += NLA_ALIGN(len);
  }
  return ok(out as AttrValues<S>);
}

/** Iterates raw attributes (type, data) without a table; stops with a reason on a bad length. */
export function splitAttrs(buf: Buffer): DecodeResult<Array<{ type: number; data: Buffer }>> {
  const out: Array<{ type: number; data: Buffer }> = [];
  let off = 0;
  while (buf.length - off >= NLA_HDRLEN) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || len > buf.length - off) return fail('bad_attribute_length', `nla_len ${len} at offset ${off}`);
    out.push({ type, data: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += NLA_ALIGN(len);
  }
  return ok(out);
}

// Attribute data parsers (the kernel's NLA_U8, NLA_U32, NLA_NUL_STRING, NLA_BINARY ...).
export function nlaU8(d: Buffer): number | undefined {
  return d.length === 1 ? d.readUInt8(0) : undefined;
}
export function nlaU16(d: Buffer): number | undefined {
  return d.length === 2 ? d.readUInt16LE(0) : undefined;
}
export function nlaU32(d: Buffer): number | undefined {
  return d.length === 4 ? d.readUInt32LE(0) : undefined;
}
export function nlaS32(d: Buffer): number | undefined {
  return d.length === 4 ? d.readInt32LE(0) : undefined;
}
/** A string: up to the first NUL (NLA_NUL_STRING) or the end (NLA_STRING). */
export function nlaString(d: Buffer): string | undefined {
  const nul = d.indexOf(0);
  return d.toString('utf8', 0, nul < 0 ? d.length : nul);
}
/** Raw bytes, copied so the value does not pin the datagram. */
export function nlaBinary(d: Buffer): Buffer | undefined {
  return Buffer.from(d);
}
/** A flag attribute (NLA_FLAG): present, no data. */
export function nlaFlag(d: Buffer): true | undefined {
  return d.length === 0 ? true : undefined;
}

// Attribute encoders.

/** One attribute: header (nla_len = 4 + data length) + data + padding to 4. */
export function encodeAttr(type: number, data: Uint8Array): Buffer {
  const len = NLA_HDRLEN + data.length;
  if (len > 0xffff) throw new RangeError(`netlink attribute ${type} too long (${len} bytes)`);
  const out = Buffer.allocUnsafe(NLA_ALIGN(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  out.set(data, NLA_HDRLEN);
  out.fill(0, len);
  return out;
}
export function encodeAttrU8(type: number, v: number): Buffer {
  return encodeAttr(type, Buffer.of(v & 0xff));
}
export function encodeAttrU32(type: number, v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(v >>> 0, 0);
  return encodeAttr(type, b);
}
/** A NUL-terminated string (NLA_NUL_STRING, what the kernel sends and expects for names). */
export function encodeAttrString(type: number, s: string): Buffer {
  return encodeAttr(type, Buffer.concat([Buffer.from(s, 'utf8'), Buffer.of(0)]));
}

/**
 * Builds netlink bytes in one buffer, front to back: an nlmsghdr (optional), raw bytes,
 * attributes, and nests whose length is filled in when they end. For encoders on a hot path
 * (a bulk sync writes an entry per message): no Buffer per attribute, no concat.
 */
/** Zeroes [from, to): at most 3 bytes of attribute padding. */
function pad(b: Buffer, from: number, to: number): void {
  for (let i = from; i < to; i++) b[i] = 0;
}

export class NlWriter {
  private buf: Buffer;
  private at = 0;
  private hasHeader = false;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  /** Where the message being written starts (several can follow one another). */
  private msgStart = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.at;
  }

  /** Forgets what was written (the buffer is reused). */
  reset(): this {
    this.at = 0;
    this.hasHeader = false;
    return this;
  }

  /** Ends the message begun by `header`: its nlmsg_len. The next `header` begins another. */
  endMessage(): this {
    if (this.hasHeader) this.buf.writeUInt32LE(this.at - this.msgStart, this.msgStart);
    this.hasHeader = false;
    return this;
  }

  /** The nlmsghdr; its length is written by `finish` or `endMessage`. */
  header(h: { type: number; flags: number; seq: number; pid?: number }): this {
    this.endMessage();
    this.msgStart = this.at;
    this.room(NLMSG_HDRLEN);
    this.buf.writeUInt32LE(0, this.at);
    this.buf.writeUInt16LE(h.type, this.at + 4);
    this.buf.writeUInt16LE(h.flags, this.at + 6);
    this.buf.writeUInt32LE(h.seq >>> 0, this.at + 8);
    this.buf.writeUInt32LE((h.pid ?? 0) >>> 0, this.at + 12);
    this.at += NLMSG_HDRLEN;
    this.hasHeader = true;
    return this;
  }

  /** Bytes as they are, padded to 4. */
  raw(data: Uint8Array): this {
    const len = NLA_ALIGN(data.length);
    this.room(len);
    this.buf.set(data, this.at);
    pad(this.buf, this.at + data.length, this.at + len);
    this.at += len;
    return this;
  }

  // The hot path of every netlink write (a sync backup writes tens of thousands of entries a
  // second, about 25 attributes each): bytes set by hand, no Buffer method (their argument
  // checks and, for fill, a call into C++ cost more than the write; issue 25).
  private attrHeader(type: number, valueLen: number): number {
    const len = NLA_HDRLEN + valueLen;
    if (len > 0xffff) throw new RangeError(`netlink attribute ${type} too long (${len} bytes)`);
    if (type >>> 16 !== 0) throw new RangeError(`netlink attribute type ${type} is outside 0..65535`);
    const aligned = NLA_ALIGN(len);
    this.room(aligned);
    const b = this.buf;
    const at = this.at;
    b[at] = len & 0xff;
    b[at + 1] = len >>> 8;
    b[at + 2] = type & 0xff;
    b[at + 3] = (type >>> 8) & 0xff;
    pad(b, at + len, at + aligned);
    this.at = at + aligned;
    return at + NLA_HDRLEN;
  }

  // (The offset first: `this.buf` must be read after attrHeader, which may replace it.)
  attr(type: number, data: Uint8Array): this {
    const at = this.attrHeader(type, data.length);
    this.buf.set(data, at);
    return this;
  }

  u8(type: number, v: number): this {
    const at = this.attrHeader(type, 1);
    this.buf[at] = v & 0xff;
    return this;
  }

  be16(type: number, v: number): this {
    const at = this.attrHeader(type, 2);
    const b = this.buf;
    b[at] = (v >>> 8) & 0xff;
    b[at + 1] = v & 0xff;
    return this;
  }

  be32(type: number, v: number): this {
    const at = this.attrHeader(type, 4);
    const b = this.buf;
    b[at] = (v >>> 24) & 0xff;
    b[at + 1] = (v >>> 16) & 0xff;
    b[at + 2] = (v >>> 8) & 0xff;
    b[at + 3] = v & 0xff;
    return this;
  }

  /** Opens a nest (NLA_F_NESTED set); returns the mark `end` needs. */
  begin(type: number): number {
    this.room(NLA_HDRLEN);
    const mark = this.at;
    if (type >>> 16 !== 0) throw new RangeError(`netlink attribute type ${type} is outside 0..65535`);
    const t = type | NLA_F_NESTED;
    this.buf[mark + 2] = t & 0xff;
    this.buf[mark + 3] = (t >>> 8) & 0xff;
    this.at += NLA_HDRLEN;
    return mark;
  }

  end(mark: number): this {
    const len = this.at - mark;
    if (len > 0xffff) throw new RangeError(`netlink nest too long (${len} bytes)`);
    this.buf[mark] = len & 0xff;
    this.buf[mark + 1] = len >>> 8;
    return this;
  }

  /** The bytes written (the last message's nlmsg_len filled in). */
  finish(): Buffer {
    this.endMessage();
    return this.buf.subarray(0, this.at);
  }

  /** Drops what was written after `length` (a message that threw half way). */
  truncate(length: number): this {
    this.at = Math.min(this.at, length);
    this.hasHeader = false;
    return this;
  }
}
