/**
 * nf_tables over netlink, the one read fwlb needs: the named counters of a table (the
 * per-backend "new connections" of `fwlb status`), without spawning nft(8).
 *
 *   nlmsghdr | struct nfgenmsg (4 bytes) | NFTA_OBJ_* attributes
 *   nlmsg_type = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETOBJ
 *
 * A dump request names the table and the object type (the kernel filters on both, Linux
 * 4.10+); each answer is one object: its table, name, type and, nested in NFTA_OBJ_DATA,
 * the counter's bytes and packets (big-endian u64).
 */
import { NFGENMSG_LEN, NFNETLINK_V0 } from './ctnetlink.js';
import { encodeAttrString, encodeNlMsg, fail, NLA_HDRLEN, NLA_TYPE_MASK, NLA_ALIGN, NLM_F_DUMP, NLM_F_REQUEST, ok, type DecodeResult, type NlMessage } from './nlmsg.js';

export const NFNL_SUBSYS_NFTABLES = 10; // linux/netfilter/nfnetlink.h
export const NFT_MSG_NEWOBJ = 18; // linux/netfilter/nf_tables.h: enum nf_tables_msg_types (dump answers)
export const NFT_MSG_GETOBJ = 19; // linux/netfilter/nf_tables.h
export const NFT_OBJECT_COUNTER = 1; // linux/netfilter/nf_tables.h

// enum nft_object_attributes (linux/netfilter/nf_tables.h)
export const NFTA_OBJ_TABLE = 1; // NLA_STRING
export const NFTA_OBJ_NAME = 2; // NLA_STRING
export const NFTA_OBJ_TYPE = 3; // NLA_U32, network byte order
export const NFTA_OBJ_DATA = 4; // NLA_NESTED
// enum nft_counter_attributes
export const NFTA_COUNTER_BYTES = 1; // NLA_U64, network byte order
export const NFTA_COUNTER_PACKETS = 2; // NLA_U64, network byte order

/** NFPROTO_* (linux/netfilter.h) of the table families fwlb uses. */
export const NFPROTO = { inet: 1, ip: 2, netdev: 5, ip6: 10 } as const;
export type NftFamily = keyof typeof NFPROTO;

export const NFT_GETOBJ = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETOBJ;
export const NFT_NEWOBJ = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWOBJ;

/** The dump request for every counter object of one table. */
export function encodeCounterDump(seq: number, family: NftFamily, table: string): Buffer {
  const gen = Buffer.alloc(NFGENMSG_LEN);
  gen.writeUInt8(NFPROTO[family], 0);
  gen.writeUInt8(NFNETLINK_V0, 1);
  const type = Buffer.alloc(8);
  type.writeUInt16LE(8, 0);
  type.writeUInt16LE(NFTA_OBJ_TYPE, 2);
  type.writeUInt32BE(NFT_OBJECT_COUNTER, 4);
  return encodeNlMsg({ type: NFT_GETOBJ, flags: NLM_F_REQUEST | NLM_F_DUMP, seq }, gen, encodeAttrString(NFTA_OBJ_TABLE, table), type);
}

export interface CounterObject {
  table: string;
  name: string;
  packets: number;
  bytes: number;
}

/** Attributes of a nest as [type, start, end] triples; a reason on a bad length. */
function walk(buf: Buffer, from: number, to: number): DecodeResult<Array<[number, number, number]>> {
  const out: Array<[number, number, number]> = [];
  let off = from;
  while (to - off >= NLA_HDRLEN) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || len > to - off) return fail('bad_attribute_length', `nla_len ${len} at offset ${off}`);
    out.push([buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, off + NLA_HDRLEN, off + len]);
    off += NLA_ALIGN(len);
  }
  return ok(out);
}

/** A big-endian u64; NaN when it is not 8 bytes or past 2^53 (a Number would not be exact). */
function u64(buf: Buffer, start: number, end: number): number {
  if (end - start !== 8) return NaN;
  // Counters pass 2^53 after ~285 years at a million packets a second.
  const v = buf.readUInt32BE(start) * 0x1_0000_0000 + buf.readUInt32BE(start + 4);
  return Number.isSafeInteger(v) ? v : NaN;
}

function str(buf: Buffer, start: number, end: number): string {
  const nul = buf.indexOf(0, start);
  return buf.toString('utf8', start, nul < 0 || nul > end ? end : nul);
}

/**
 * One NFT_MSG_NEWOBJ answer -> the counter it carries. Refuses (never throws) anything
 * else: another message type, a short payload, bad attribute lengths, an object that is not
 * a counter, a counter without both values.
 */
export function decodeCounterObject(msg: NlMessage): DecodeResult<CounterObject> {
  if (msg.header.type !== NFT_NEWOBJ) return fail('unexpected_type', `type 0x${msg.header.type.toString(16)}`);
  const p = msg.payload;
  if (p.length < NFGENMSG_LEN) return fail('short_payload', `nfgenmsg needs ${NFGENMSG_LEN} bytes, got ${p.length}`);
  const top = walk(p, NFGENMSG_LEN, p.length);
  if (!top.ok) return top;
  let table: string | undefined;
  let name: string | undefined;
  let type: number | undefined;
  let data: [number, number] | undefined;
  for (const [t, s, e] of top.value) {
    if (t === NFTA_OBJ_TABLE) table = str(p, s, e);
    else if (t === NFTA_OBJ_NAME) name = str(p, s, e);
    else if (t === NFTA_OBJ_TYPE) {
      if (e - s !== 4) return fail('bad_attribute_value', `NFTA_OBJ_TYPE of ${e - s} bytes`);
      type = p.readUInt32BE(s);
    } else if (t === NFTA_OBJ_DATA) data = [s, e];
  }
  if (table === undefined || name === undefined) return fail('missing_attribute', 'NFTA_OBJ_TABLE or NFTA_OBJ_NAME');
  if (type !== NFT_OBJECT_COUNTER) return fail('bad_attribute_value', `object ${name} is of type ${type ?? 'none'}, not a counter`);
  if (!data) return fail('missing_attribute', 'NFTA_OBJ_DATA');
  const inner = walk(p, data[0], data[1]);
  if (!inner.ok) return inner;
  let packets: number | undefined;
  let bytes: number | undefined;
  for (const [t, s, e] of inner.value) {
    if (t === NFTA_COUNTER_PACKETS) packets = u64(p, s, e);
    else if (t === NFTA_COUNTER_BYTES) bytes = u64(p, s, e);
  }
  if (packets === undefined || bytes === undefined) return fail('missing_attribute', `counter ${name}: NFTA_COUNTER_PACKETS and NFTA_COUNTER_BYTES`);
  if (Number.isNaN(packets) || Number.isNaN(bytes)) return fail('bad_attribute_value', `counter ${name}: a value that is not a u64 below 2^53`);
  return ok({ table, name, packets, bytes });
}
