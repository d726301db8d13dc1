/**
 * ctnetlink: the kernel's connection tracking table over netlink (NETLINK_NETFILTER,
 * subsystem NFNL_SUBSYS_CTNETLINK). Dump, get, delete and create entries; decode dump
 * replies and events (new / update / destroy) into one typed value, `ConntrackEntry`.
 *
 *   nlmsghdr | struct nfgenmsg (4 bytes) | CTA_* attributes
 *   nlmsg_type = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_*
 *
 * Unlike rtnetlink, ctnetlink carries its integers in network byte order (nla_put_be32 ...),
 * without setting NLA_F_NET_BYTEORDER; only CTA_FILTER's flags are host order. Nested
 * attributes carry NLA_F_NESTED (the kernel sets it; we set it too; the kernel does not
 * require it).
 *
 * Pure. The decoder is a set of tables {attribute type -> name, parser}: a parser checks the
 * length of what it reads (a u8 of 2 bytes is rejected), types a table does not know are
 * skipped, and every failure comes back as a reason from the closed set of nlmsg.ts. It
 * never throws. Encoders take values the caller controls and throw RangeError on values the
 * kernel could not mean (an address of the wrong family, a port above 65535, a delete
 * without a tuple, which the kernel would read as "flush the table").
 *
 * Constants: checked by compiling a C program against this machine's linux-libc-dev 6.1
 * headers; the header is named beside each. CTA_FILTER_F_* are not uapi: they are the
 * kernel's own (net/netfilter/nf_internals.h, since Linux 5.8), read from its source.
 */
import { formatIPv4, formatIPv6 } from '../../lib/ip-bytes.js';
import { AF_INET, AF_INET6, type IpFamily, parseIp } from './address.js';
import {
  type DecodeResult,
  encodeAttr,
  encodeNlMsg,
  fail,
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLM_F_ACK,
  NlWriter,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  nlaString,
  type NlMessage,
  ok,
  NLA_ALIGN,
} from './nlmsg.js';

// ---------------------------------------------------------------------------------------
// nfnetlink (linux/netlink.h, linux/netfilter/nfnetlink.h)

export const NETLINK_NETFILTER = 12; // linux/netlink.h: netfilter subsystem
export const NFNL_SUBSYS_CTNETLINK = 1; // linux/netfilter/nfnetlink.h
export const NFNETLINK_V0 = 0; // linux/netfilter/nfnetlink.h: nfgenmsg.version
/** struct nfgenmsg (linux/netfilter/nfnetlink.h): family u8, version u8, res_id be16. */
export const NFGENMSG_LEN = 4;

// enum nfnetlink_groups (linux/netfilter/nfnetlink.h): NETLINK_ADD_MEMBERSHIP numbers
export const NFNLGRP_CONNTRACK_NEW = 1; // linux/netfilter/nfnetlink.h
export const NFNLGRP_CONNTRACK_UPDATE = 2; // linux/netfilter/nfnetlink.h
export const NFNLGRP_CONNTRACK_DESTROY = 3; // linux/netfilter/nfnetlink.h

// enum cntl_msg_types (linux/netfilter/nfnetlink_conntrack.h)
export const IPCTNL_MSG_CT_NEW = 0; // nfnetlink_conntrack.h: create/update; dump replies; new/update events
export const IPCTNL_MSG_CT_GET = 1; // nfnetlink_conntrack.h: get one, or dump
export const IPCTNL_MSG_CT_DELETE = 2; // nfnetlink_conntrack.h: delete; destroy events
export const IPCTNL_MSG_CT_GET_CTRZERO = 3; // nfnetlink_conntrack.h: get and zero the counters

/** NFNL_SUBSYS_ID / NFNL_MSG_TYPE (linux/netfilter/nfnetlink.h), the other way round. */
export function ctMsgType(msg: number): number {
  return (NFNL_SUBSYS_CTNETLINK << 8) | msg;
}
export const CT_NEW = ctMsgType(IPCTNL_MSG_CT_NEW); // 0x100
export const CT_GET = ctMsgType(IPCTNL_MSG_CT_GET); // 0x101
export const CT_DELETE = ctMsgType(IPCTNL_MSG_CT_DELETE); // 0x102

// enum ctattr_type (linux/netfilter/nfnetlink_conntrack.h)
export const CTA_TUPLE_ORIG = 1; // nested CTA_TUPLE_*
export const CTA_TUPLE_REPLY = 2; // nested CTA_TUPLE_*
export const CTA_STATUS = 3; // be32, IPS_*
export const CTA_PROTOINFO = 4; // nested CTA_PROTOINFO_*
export const CTA_HELP = 5; // nested CTA_HELP_*
export const CTA_NAT_SRC = 6; // nested CTA_NAT_*: create only (CTA_NAT)
export const CTA_TIMEOUT = 7; // be32 seconds
export const CTA_MARK = 8; // be32
export const CTA_COUNTERS_ORIG = 9; // nested CTA_COUNTERS_*
export const CTA_COUNTERS_REPLY = 10; // nested CTA_COUNTERS_*
export const CTA_USE = 11; // be32
export const CTA_ID = 12; // be32
export const CTA_NAT_DST = 13; // nested CTA_NAT_*: create only
export const CTA_TUPLE_MASTER = 14; // nested CTA_TUPLE_*: the master of an expected connection
export const CTA_SEQ_ADJ_ORIG = 15; // nested CTA_SEQADJ_*
export const CTA_SEQ_ADJ_REPLY = 16; // nested CTA_SEQADJ_*
export const CTA_SECMARK = 17; // obsolete
export const CTA_ZONE = 18; // be16
export const CTA_SECCTX = 19; // nested
export const CTA_TIMESTAMP = 20; // nested CTA_TIMESTAMP_*
export const CTA_MARK_MASK = 21; // be32: dump filter
export const CTA_LABELS = 22; // binary
export const CTA_LABELS_MASK = 23; // binary
export const CTA_SYNPROXY = 24; // nested
export const CTA_FILTER = 25; // nested CTA_FILTER_*: dump filter (Linux 5.8)
export const CTA_STATUS_MASK = 26; // be32: dump filter (Linux 6.1)

// enum ctattr_tuple
export const CTA_TUPLE_IP = 1; // nfnetlink_conntrack.h: nested CTA_IP_*
export const CTA_TUPLE_PROTO = 2; // nfnetlink_conntrack.h: nested CTA_PROTO_*
export const CTA_TUPLE_ZONE = 3; // nfnetlink_conntrack.h: be16

// enum ctattr_ip
export const CTA_IP_V4_SRC = 1; // nfnetlink_conntrack.h: 4 bytes
export const CTA_IP_V4_DST = 2; // nfnetlink_conntrack.h
export const CTA_IP_V6_SRC = 3; // nfnetlink_conntrack.h: 16 bytes
export const CTA_IP_V6_DST = 4; // nfnetlink_conntrack.h

// enum ctattr_l4proto
export const CTA_PROTO_NUM = 1; // nfnetlink_conntrack.h: u8, IPPROTO_*
export const CTA_PROTO_SRC_PORT = 2; // nfnetlink_conntrack.h: be16
export const CTA_PROTO_DST_PORT = 3; // nfnetlink_conntrack.h: be16
export const CTA_PROTO_ICMP_ID = 4; // nfnetlink_conntrack.h: be16
export const CTA_PROTO_ICMP_TYPE = 5; // nfnetlink_conntrack.h: u8
export const CTA_PROTO_ICMP_CODE = 6; // nfnetlink_conntrack.h: u8
export const CTA_PROTO_ICMPV6_ID = 7; // nfnetlink_conntrack.h: be16
export const CTA_PROTO_ICMPV6_TYPE = 8; // nfnetlink_conntrack.h: u8
export const CTA_PROTO_ICMPV6_CODE = 9; // nfnetlink_conntrack.h: u8

// enum ctattr_protoinfo / ctattr_protoinfo_tcp
export const CTA_PROTOINFO_TCP = 1; // nfnetlink_conntrack.h: nested CTA_PROTOINFO_TCP_*
export const CTA_PROTOINFO_TCP_STATE = 1; // nfnetlink_conntrack.h: u8, TCP_CONNTRACK_*
export const CTA_PROTOINFO_TCP_WSCALE_ORIGINAL = 2; // nfnetlink_conntrack.h: u8
export const CTA_PROTOINFO_TCP_WSCALE_REPLY = 3; // nfnetlink_conntrack.h: u8
export const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL = 4; // nfnetlink_conntrack.h: struct nf_ct_tcp_flags
export const CTA_PROTOINFO_TCP_FLAGS_REPLY = 5; // nfnetlink_conntrack.h: struct nf_ct_tcp_flags

// enum ctattr_counters
export const CTA_COUNTERS_PACKETS = 1; // nfnetlink_conntrack.h: be64
export const CTA_COUNTERS_BYTES = 2; // nfnetlink_conntrack.h: be64
export const CTA_COUNTERS32_PACKETS = 3; // nfnetlink_conntrack.h: be32 (old)
export const CTA_COUNTERS32_BYTES = 4; // nfnetlink_conntrack.h: be32 (old)

// enum ctattr_nat / ctattr_protonat
export const CTA_NAT_V4_MINIP = 1; // nfnetlink_conntrack.h (CTA_NAT_MINIP)
export const CTA_NAT_V4_MAXIP = 2; // nfnetlink_conntrack.h (CTA_NAT_MAXIP)
export const CTA_NAT_PROTO = 3; // nfnetlink_conntrack.h: nested CTA_PROTONAT_*
export const CTA_NAT_V6_MINIP = 4; // nfnetlink_conntrack.h
export const CTA_NAT_V6_MAXIP = 5; // nfnetlink_conntrack.h
export const CTA_PROTONAT_PORT_MIN = 1; // nfnetlink_conntrack.h: be16
export const CTA_PROTONAT_PORT_MAX = 2; // nfnetlink_conntrack.h: be16

// enum ctattr_seqadj
export const CTA_SEQADJ_CORRECTION_POS = 1; // nfnetlink_conntrack.h: be32
export const CTA_SEQADJ_OFFSET_BEFORE = 2; // nfnetlink_conntrack.h: be32
export const CTA_SEQADJ_OFFSET_AFTER = 3; // nfnetlink_conntrack.h: be32

// enum ctattr_help
export const CTA_HELP_NAME = 1; // nfnetlink_conntrack.h: string

// enum ctattr_filter
export const CTA_FILTER_ORIG_FLAGS = 1; // nfnetlink_conntrack.h: u32 (host order), CTA_FILTER_F_*
export const CTA_FILTER_REPLY_FLAGS = 2; // nfnetlink_conntrack.h

// CTA_FILTER_F_* (net/netfilter/nf_internals.h, kernel-internal): which tuple fields to match
export const CTA_FILTER_F_CTA_IP_SRC = 1 << 0; // net/netfilter/nf_internals.h
export const CTA_FILTER_F_CTA_IP_DST = 1 << 1; // net/netfilter/nf_internals.h
export const CTA_FILTER_F_CTA_TUPLE_ZONE = 1 << 2; // net/netfilter/nf_internals.h
export const CTA_FILTER_F_CTA_PROTO_NUM = 1 << 3; // net/netfilter/nf_internals.h
export const CTA_FILTER_F_CTA_PROTO_SRC_PORT = 1 << 4; // net/netfilter/nf_internals.h
export const CTA_FILTER_F_CTA_PROTO_DST_PORT = 1 << 5; // net/netfilter/nf_internals.h

// enum ip_conntrack_status (linux/netfilter/nf_conntrack_common.h)
export const IPS_EXPECTED = 1 << 0; // nf_conntrack_common.h: an expected connection
export const IPS_SEEN_REPLY = 1 << 1; // nf_conntrack_common.h: packets seen both ways
export const IPS_ASSURED = 1 << 2; // nf_conntrack_common.h: never early-expired
export const IPS_CONFIRMED = 1 << 3; // nf_conntrack_common.h: in the table
export const IPS_SRC_NAT = 1 << 4; // nf_conntrack_common.h: source NAT in the original direction
export const IPS_DST_NAT = 1 << 5; // nf_conntrack_common.h: destination NAT in the original direction
export const IPS_SEQ_ADJUST = 1 << 6; // nf_conntrack_common.h: TCP sequence adjusted (helpers)
export const IPS_SRC_NAT_DONE = 1 << 7; // nf_conntrack_common.h
export const IPS_DST_NAT_DONE = 1 << 8; // nf_conntrack_common.h
export const IPS_DYING = 1 << 9; // nf_conntrack_common.h: being removed
export const IPS_FIXED_TIMEOUT = 1 << 10; // nf_conntrack_common.h
export const IPS_TEMPLATE = 1 << 11; // nf_conntrack_common.h
export const IPS_UNTRACKED = 1 << 12; // nf_conntrack_common.h (IPS_NAT_CLASH in newer headers)
export const IPS_HELPER = 1 << 13; // nf_conntrack_common.h: helper attached explicitly
export const IPS_OFFLOAD = 1 << 14; // nf_conntrack_common.h: in a flowtable
export const IPS_HW_OFFLOAD = 1 << 15; // nf_conntrack_common.h
export const IPS_NAT_MASK = IPS_DST_NAT | IPS_SRC_NAT; // nf_conntrack_common.h
export const IPS_NAT_DONE_MASK = IPS_DST_NAT_DONE | IPS_SRC_NAT_DONE; // nf_conntrack_common.h
/** nf_conntrack_common.h: bits userspace cannot set (the kernel ignores them in CTA_STATUS). */
export const IPS_UNCHANGEABLE_MASK =
  IPS_NAT_DONE_MASK | IPS_NAT_MASK | IPS_EXPECTED | IPS_CONFIRMED | IPS_DYING | IPS_SEQ_ADJUST | IPS_TEMPLATE | IPS_UNTRACKED | IPS_OFFLOAD | IPS_HW_OFFLOAD;

export const CT_STATUS_NAMES = [
  'EXPECTED',
  'SEEN_REPLY',
  'ASSURED',
  'CONFIRMED',
  'SRC_NAT',
  'DST_NAT',
  'SEQ_ADJUST',
  'SRC_NAT_DONE',
  'DST_NAT_DONE',
  'DYING',
  'FIXED_TIMEOUT',
  'TEMPLATE',
  'UNTRACKED',
  'HELPER',
  'OFFLOAD',
  'HW_OFFLOAD',
] as const;
/** IPS_<name>: bit i of CTA_STATUS is CT_STATUS_NAMES[i]. */
export type CtStatusName = (typeof CT_STATUS_NAMES)[number];

// enum tcp_conntrack (linux/netfilter/nf_conntrack_tcp.h)
export const TCP_CONNTRACK_NONE = 0; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_SYN_SENT = 1; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_SYN_RECV = 2; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_ESTABLISHED = 3; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_FIN_WAIT = 4; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_CLOSE_WAIT = 5; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_LAST_ACK = 6; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_TIME_WAIT = 7; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_CLOSE = 8; // nf_conntrack_tcp.h
export const TCP_CONNTRACK_SYN_SENT2 = 9; // nf_conntrack_tcp.h (= TCP_CONNTRACK_LISTEN, obsolete)
export const TCP_CONNTRACK_MAX = 10; // nf_conntrack_tcp.h: states are below this

export const TCP_CT_STATES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
] as const;
/** TCP_CONNTRACK_<name>: the conntrack TCP state, by the kernel's name. */
export type TcpCtState = (typeof TCP_CT_STATES)[number];

// struct nf_ct_tcp_flags (linux/netfilter/nf_conntrack_tcp.h): flags u8, mask u8
export const IP_CT_TCP_FLAG_WINDOW_SCALE = 0x01; // nf_conntrack_tcp.h: window scaling advertised by the sender
export const IP_CT_TCP_FLAG_SACK_PERM = 0x02; // nf_conntrack_tcp.h: SACK permitted by the sender
export const IP_CT_TCP_FLAG_CLOSE_INIT = 0x04; // nf_conntrack_tcp.h: this sender sent FIN first
export const IP_CT_TCP_FLAG_BE_LIBERAL = 0x08; // nf_conntrack_tcp.h: be liberal in window checking
export const IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10; // nf_conntrack_tcp.h
export const IP_CT_TCP_FLAG_MAXACK_SET = 0x20; // nf_conntrack_tcp.h
export const IP_CT_EXP_CHALLENGE_ACK = 0x40; // nf_conntrack_tcp.h
export const IP_CT_TCP_SIMULTANEOUS_OPEN = 0x80; // nf_conntrack_tcp.h

// IPPROTO_* (linux/in.h)
export const IPPROTO_ICMP = 1; // linux/in.h
export const IPPROTO_TCP = 6; // linux/in.h
export const IPPROTO_UDP = 17; // linux/in.h
export const IPPROTO_DCCP = 33; // linux/in.h
export const IPPROTO_GRE = 47; // linux/in.h
export const IPPROTO_ICMPV6 = 58; // linux/in6.h
export const IPPROTO_SCTP = 132; // linux/in.h
export const IPPROTO_UDPLITE = 136; // linux/in.h

/** Layer-4 protocols whose tuples carry ports (CTA_PROTO_SRC_PORT / DST_PORT). */
export function hasPorts(proto: number): boolean {
  return proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_UDPLITE || proto === IPPROTO_SCTP || proto === IPPROTO_DCCP;
}
function isIcmp(proto: number): boolean {
  return proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6;
}

// ---------------------------------------------------------------------------------------
// Values

/**
 * One direction of a connection (CTA_TUPLE_ORIG / CTA_TUPLE_REPLY): addresses as text in
 * the entry's family, the layer-4 protocol number, and its identifying fields: ports for
 * TCP/UDP/UDP-Lite/SCTP/DCCP, id/type/code for ICMP and ICMPv6.
 */
export interface CtTuple {
  src: string;
  dst: string;
  /** IPPROTO_* (CTA_PROTO_NUM): 6 tcp, 17 udp, 1 icmp, 58 icmpv6 ... */
  proto: number;
  srcPort?: number;
  dstPort?: number;
  icmpId?: number;
  icmpType?: number;
  icmpCode?: number;
  /** CTA_TUPLE_ZONE: a zone for this direction only (rare; see ConntrackEntry.zone). */
  zone?: number;
}

/** CTA_PROTOINFO_TCP: the TCP tracker's state. */
export interface CtTcpInfo {
  state: TcpCtState;
  wscaleOrig?: number;
  wscaleReply?: number;
  /** IP_CT_TCP_FLAG_* of the original / reply sender (nf_ct_tcp_flags.flags). */
  flagsOrig?: number;
  flagsReply?: number;
}

export interface CtCounters {
  packets: number;
  bytes: number;
}

/** CTA_SEQ_ADJ_*: TCP sequence adjustment of NAT helpers (FTP ...). */
export interface CtSeqAdj {
  correctionPos: number;
  offsetBefore: number;
  offsetAfter: number;
}

/**
 * A conntrack entry, from a dump, a get or an event; and what `encodeCreate` writes.
 *
 * NAT is not a field of its own: the kernel records what DNAT/SNAT chose in the reply
 * tuple (after DNAT to a backend, the reply comes *from* the backend: reply.src:srcPort),
 * and `natOf(entry)` reads it back. Events carry less than dumps: a destroy event has the
 * tuples, id and counters but no status or timeout, hence the optional fields.
 */
/**
 * A tuple with its addresses as bytes (4 or 16): what the encoders write, and what the sync's
 * binary records carry, so a received record goes to the kernel without address texts.
 */
export interface RawCtTuple extends Omit<CtTuple, 'src' | 'dst'> {
  src: Uint8Array;
  dst: Uint8Array;
}

/** An entry as a create needs it, tuples as bytes (see RawCtTuple). */
export interface RawCtEntry extends Pick<ConntrackEntry, 'family' | 'status' | 'timeout' | 'mark' | 'zone' | 'tcp' | 'seqAdjOrig' | 'seqAdjReply'> {
  orig: RawCtTuple;
  reply: RawCtTuple;
}

export interface ConntrackEntry {
  family: IpFamily;
  orig: CtTuple;
  reply: CtTuple;
  /** CTA_STATUS: IPS_* bits; `statusNames(status)` for their names. */
  status?: number;
  /** CTA_TIMEOUT: seconds left. */
  timeout?: number;
  /** CTA_MARK. */
  mark?: number;
  /** CTA_ZONE. */
  zone?: number;
  /** CTA_ID: the kernel's id of this entry (stable for its life, unique among live entries). */
  id?: number;
  /** CTA_USE: reference count. */
  use?: number;
  tcp?: CtTcpInfo;
  /** CTA_HELP / CTA_HELP_NAME: the helper attached ("ftp", ...). */
  helper?: string;
  countersOrig?: CtCounters;
  countersReply?: CtCounters;
  seqAdjOrig?: CtSeqAdj;
  seqAdjReply?: CtSeqAdj;
  /** CTA_TUPLE_MASTER: for an expected (related) connection, its master's original tuple. */
  master?: CtTuple;
}

export type CtEventKind = 'new' | 'update' | 'destroy';

/** A message of the NFNLGRP_CONNTRACK_* groups, decoded. */
export interface ConntrackEvent {
  kind: CtEventKind;
  entry: ConntrackEntry;
}

/** The names of the IPS_* bits set in a status. */
export function statusNames(status: number): CtStatusName[] {
  return CT_STATUS_NAMES.filter((_, i) => (status & (1 << i)) !== 0);
}

/** IPS_* bits from names. */
export function statusBits(names: Iterable<CtStatusName>): number {
  let s = 0;
  for (const n of names) s |= 1 << CT_STATUS_NAMES.indexOf(n);
  return s >>> 0;
}

export function hasStatus(e: Pick<ConntrackEntry, 'status'>, name: CtStatusName): boolean {
  return e.status !== undefined && (e.status & (1 << CT_STATUS_NAMES.indexOf(name))) !== 0;
}

/** The tuple seen from the other side: source and destination swapped (no NAT). */
export function invertTuple<T extends CtTuple | RawCtTuple>(t: T): T {
  const out = { src: t.dst, dst: t.src, proto: t.proto } as T;
  if (t.srcPort !== undefined || t.dstPort !== undefined) {
    if (t.dstPort !== undefined) out.srcPort = t.dstPort;
    if (t.srcPort !== undefined) out.dstPort = t.srcPort;
  }
  if (t.icmpId !== undefined) out.icmpId = t.icmpId;
  if (t.icmpType !== undefined) out.icmpType = invertIcmpType(t.proto, t.icmpType);
  if (t.icmpCode !== undefined) out.icmpCode = t.icmpCode;
  if (t.zone !== undefined) out.zone = t.zone;
  return out;
}

// The kernel inverts ICMP queries into their replies (icmp_pkt_to_tuple / invmap).
const ICMP_INVERT: Readonly<Record<number, number>> = { 8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17 };
const ICMPV6_INVERT: Readonly<Record<number, number>> = { 128: 129, 129: 128, 139: 140, 140: 139 };
function invertIcmpType(proto: number, type: number): number {
  const m = proto === IPPROTO_ICMP ? ICMP_INVERT : ICMPV6_INVERT;
  return m[type] ?? type;
}

/** Where a NAT sent one side of a connection: an address and, for port protocols, a port. */
export interface CtNatTarget {
  address: string;
  port?: number;
}

/**
 * The NAT the kernel applied, read from the tuples: `dnat` when the reply does not come from
 * the original destination (it comes from the backend), `snat` when it does not go back to
 * the original source. Addresses are compared by value, so "::1" equals "0:0::1".
 */
export function natOf(e: Pick<ConntrackEntry, 'orig' | 'reply'>): { dnat?: CtNatTarget; snat?: CtNatTarget } {
  return natRule(e.orig, e.reply, sameAddress);
}

/** The rule of natOf for tuples whose addresses are of type A, compared by `same`. */
function natRule<A>(
  orig: Omit<CtTuple, 'src' | 'dst'> & { src: A; dst: A },
  reply: Omit<CtTuple, 'src' | 'dst'> & { src: A; dst: A },
  same: (a: A, b: A) => boolean,
): { dnat?: { address: A; port?: number }; snat?: { address: A; port?: number } } {
  const out: { dnat?: { address: A; port?: number }; snat?: { address: A; port?: number } } = {};
  const ports = hasPorts(orig.proto);
  const icmp = isIcmp(orig.proto);
  if (!same(reply.src, orig.dst) || (ports && reply.srcPort !== orig.dstPort)) {
    out.dnat = ports && reply.srcPort !== undefined ? { address: reply.src, port: reply.srcPort } : { address: reply.src };
  }
  const idChanged = icmp && reply.icmpId !== orig.icmpId;
  if (!same(reply.dst, orig.src) || (ports && reply.dstPort !== orig.srcPort) || idChanged) {
    const port = ports ? reply.dstPort : icmp ? reply.icmpId : undefined;
    out.snat = port !== undefined ? { address: reply.dst, port } : { address: reply.dst };
  }
  return out;
}

/** Two address texts name the same address (any spelling); false when either does not parse. */
export function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const x = parseIp(a);
  const y = parseIp(b);
  return x !== undefined && y !== undefined && x.family === y.family && x.bytes.equals(y.bytes);
}

/** Tuple text as conntrack(8) prints it: "tcp 198.18.0.1:40000 -> 198.18.0.100:80". */
export function formatTuple(t: CtTuple): string {
  const p = PROTO_NAMES[t.proto] ?? String(t.proto);
  const host = (a: string) => (a.includes(':') ? `[${a}]` : a);
  if (t.srcPort !== undefined && t.dstPort !== undefined) return `${p} ${host(t.src)}:${t.srcPort} -> ${host(t.dst)}:${t.dstPort}`;
  if (t.icmpType !== undefined) return `${p} ${t.src} -> ${t.dst} type ${t.icmpType} code ${t.icmpCode ?? 0} id ${t.icmpId ?? 0}`;
  return `${p} ${t.src} -> ${t.dst}`;
}
/** A raw tuple's text, as formatTuple prints a decoded one. */
export function formatRawTuple(t: RawCtTuple): string {
  const ip = (b: Uint8Array) => (b.length === 4 ? formatIPv4(b) : formatIPv6(b));
  return formatTuple({ ...t, src: ip(t.src), dst: ip(t.dst) });
}
const PROTO_NAMES: Readonly<Record<number, string>> = {
  [IPPROTO_ICMP]: 'icmp',
  [IPPROTO_TCP]: 'tcp',
  [IPPROTO_UDP]: 'udp',
  [IPPROTO_DCCP]: 'dccp',
  [IPPROTO_GRE]: 'gre',
  [IPPROTO_ICMPV6]: 'icmpv6',
  [IPPROTO_SCTP]: 'sctp',
  [IPPROTO_UDPLITE]: 'udplite',
};

// ---------------------------------------------------------------------------------------
// Decoder: tables of {type -> name, reader}, one per nest

type BadReason = 'bad_attribute_length' | 'bad_attribute_value' | 'missing_attribute';

/** A nest that did not read: why, and where (for people). */
class Bad {
  readonly ok = false;
  constructor(
    readonly reason: BadReason,
    readonly detail: string,
  ) {}
}

/**
 * One attribute kind: the kernel's name for it and a reader of its data at (buf, off, len):
 * the value; undefined when the data cannot be it (a u32 of 3 bytes); a Bad from a nest,
 * which carries the inner reason. Readers work on offsets: no Buffer per attribute.
 */
interface Spec {
  readonly name: string;
  readonly read: (b: Buffer, off: number, len: number) => unknown;
}
/** A decoder table: index = attribute type; types without a spec are skipped. */
type Table = ReadonlyArray<Spec | undefined>;

function table(entries: Record<number, Spec>): Table {
  const t: Array<Spec | undefined> = [];
  for (const [k, v] of Object.entries(entries)) t[Number(k)] = v;
  for (let i = 0; i < t.length; i++) t[i] ??= undefined;
  return t;
}
function spec(name: string, read: (b: Buffer, off: number, len: number) => unknown): Spec {
  return { name, read };
}

const u8 = (b: Buffer, o: number, n: number) => (n === 1 ? b[o] : undefined);
const be16 = (b: Buffer, o: number, n: number) => (n === 2 ? b.readUInt16BE(o) : undefined);
const be32 = (b: Buffer, o: number, n: number) => (n === 4 ? b.readUInt32BE(o) : undefined);
const be64 = (b: Buffer, o: number, n: number) => (n === 8 ? Number(b.readBigUInt64BE(o)) : undefined);
const ipv4 = (b: Buffer, o: number, n: number) => (n === 4 ? formatIPv4(b, o) : undefined);
const ipv6 = (b: Buffer, o: number, n: number) => (n === 16 ? formatIPv6(b, o) : undefined);
const str = (b: Buffer, o: number, n: number) => nlaString(b.subarray(o, o + n));
/** struct nf_ct_tcp_flags: the flags byte (the mask is 0 in what the kernel sends). */
const tcpFlags = (b: Buffer, o: number, n: number) => (n === 2 ? b[o] : undefined);
const tcpState = (b: Buffer, o: number, n: number) => (n === 1 ? TCP_CT_STATES[b[o] as number] : undefined);

/**
 * Reads the attributes in buf[start, end) into an array by type. A bad nla_len rejects the
 * whole run, so does an attribute its reader refuses; types not in the table are skipped;
 * the last of a repeated type wins, as in the kernel's nla_parse.
 */
function readTable(b: Buffer, start: number, end: number, t: Table, where: string): unknown[] | Bad {
  const out: unknown[] = new Array<unknown>(t.length);
  let off = start;
  while (end - off >= NLA_HDRLEN) {
    const len = b.readUInt16LE(off);
    const type = b.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || len > end - off) return new Bad('bad_attribute_length', `${where}: nla_len ${len} of type ${type} at offset ${off - start}`);
    const s = t[type];
    if (s !== undefined) {
      const v = s.read(b, off + NLA_HDRLEN, len - NLA_HDRLEN);
      if (v === undefined) return new Bad('bad_attribute_value', `${s.name} of ${len - NLA_HDRLEN} bytes`);
      if (v instanceof Bad) return v;
      out[type] = v;
    }
    off += NLA_ALIGN(len);
  }
  return out;
}

/** A nested attribute: its table, then `build` from the values by type. */
function nested<T>(t: Table, where: string, build: (v: unknown[]) => T | Bad): (b: Buffer, o: number, n: number) => T | Bad {
  return (b, o, n) => {
    const v = readTable(b, o, o + n, t, where);
    return v instanceof Bad ? v : build(v);
  };
}

const IP_TABLE = table({
  [CTA_IP_V4_SRC]: spec('CTA_IP_V4_SRC', ipv4),
  [CTA_IP_V4_DST]: spec('CTA_IP_V4_DST', ipv4),
  [CTA_IP_V6_SRC]: spec('CTA_IP_V6_SRC', ipv6),
  [CTA_IP_V6_DST]: spec('CTA_IP_V6_DST', ipv6),
});

const PROTO_TABLE = table({
  [CTA_PROTO_NUM]: spec('CTA_PROTO_NUM', u8),
  [CTA_PROTO_SRC_PORT]: spec('CTA_PROTO_SRC_PORT', be16),
  [CTA_PROTO_DST_PORT]: spec('CTA_PROTO_DST_PORT', be16),
  [CTA_PROTO_ICMP_ID]: spec('CTA_PROTO_ICMP_ID', be16),
  [CTA_PROTO_ICMP_TYPE]: spec('CTA_PROTO_ICMP_TYPE', u8),
  [CTA_PROTO_ICMP_CODE]: spec('CTA_PROTO_ICMP_CODE', u8),
  [CTA_PROTO_ICMPV6_ID]: spec('CTA_PROTO_ICMPV6_ID', be16),
  [CTA_PROTO_ICMPV6_TYPE]: spec('CTA_PROTO_ICMPV6_TYPE', u8),
  [CTA_PROTO_ICMPV6_CODE]: spec('CTA_PROTO_ICMPV6_CODE', u8),
});

/** The CTA_TUPLE_* table of one family: reads straight into a CtTuple. */
function tupleTable(family: IpFamily, name: string): Table {
  const [s, d, os, od] = family === 4 ? [CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST] : [CTA_IP_V6_SRC, CTA_IP_V6_DST, CTA_IP_V4_SRC, CTA_IP_V4_DST];
  return table({
    [CTA_TUPLE_IP]: spec(
      'CTA_TUPLE_IP',
      nested(IP_TABLE, `${name}/CTA_TUPLE_IP`, (v) => {
        const src = v[s] as string | undefined;
        const dst = v[d] as string | undefined;
        if (src !== undefined && dst !== undefined) return [src, dst] as const;
        if (v[os] !== undefined || v[od] !== undefined) return new Bad('bad_attribute_value', `${name}: IPv${family === 4 ? 6 : 4} address in an IPv${family} entry`);
        return new Bad('missing_attribute', `${name}: source or destination address`);
      }),
    ),
    [CTA_TUPLE_PROTO]: spec(
      'CTA_TUPLE_PROTO',
      nested(PROTO_TABLE, `${name}/CTA_TUPLE_PROTO`, (v) => (v[CTA_PROTO_NUM] === undefined ? new Bad('missing_attribute', `${name}/CTA_PROTO_NUM`) : v)),
    ),
    [CTA_TUPLE_ZONE]: spec('CTA_TUPLE_ZONE', be16),
  });
}

function tupleReader(family: IpFamily, name: string): (b: Buffer, o: number, n: number) => CtTuple | Bad {
  return nested(tupleTable(family, name), name, (v) => {
    const ip = v[CTA_TUPLE_IP] as readonly [string, string] | undefined;
    const p = v[CTA_TUPLE_PROTO] as Array<number | undefined> | undefined;
    if (ip === undefined) return new Bad('missing_attribute', `${name}/CTA_TUPLE_IP`);
    if (p === undefined) return new Bad('missing_attribute', `${name}/CTA_TUPLE_PROTO`);
    const t: CtTuple = { src: ip[0], dst: ip[1], proto: p[CTA_PROTO_NUM] as number };
    const sp = p[CTA_PROTO_SRC_PORT];
    const dp = p[CTA_PROTO_DST_PORT];
    const id = p[CTA_PROTO_ICMP_ID] ?? p[CTA_PROTO_ICMPV6_ID];
    const type = p[CTA_PROTO_ICMP_TYPE] ?? p[CTA_PROTO_ICMPV6_TYPE];
    const code = p[CTA_PROTO_ICMP_CODE] ?? p[CTA_PROTO_ICMPV6_CODE];
    if (sp !== undefined) t.srcPort = sp;
    if (dp !== undefined) t.dstPort = dp;
    if (id !== undefined) t.icmpId = id;
    if (type !== undefined) t.icmpType = type;
    if (code !== undefined) t.icmpCode = code;
    const zone = v[CTA_TUPLE_ZONE] as number | undefined;
    if (zone !== undefined) t.zone = zone;
    return t;
  });
}

const TCP_TABLE = table({
  [CTA_PROTOINFO_TCP_STATE]: spec('CTA_PROTOINFO_TCP_STATE', tcpState),
  [CTA_PROTOINFO_TCP_WSCALE_ORIGINAL]: spec('CTA_PROTOINFO_TCP_WSCALE_ORIGINAL', u8),
  [CTA_PROTOINFO_TCP_WSCALE_REPLY]: spec('CTA_PROTOINFO_TCP_WSCALE_REPLY', u8),
  [CTA_PROTOINFO_TCP_FLAGS_ORIGINAL]: spec('CTA_PROTOINFO_TCP_FLAGS_ORIGINAL', tcpFlags),
  [CTA_PROTOINFO_TCP_FLAGS_REPLY]: spec('CTA_PROTOINFO_TCP_FLAGS_REPLY', tcpFlags),
});
const PROTOINFO_TABLE = table({
  [CTA_PROTOINFO_TCP]: spec(
    'CTA_PROTOINFO_TCP',
    nested(TCP_TABLE, 'CTA_PROTOINFO_TCP', (v): CtTcpInfo => {
      // A protoinfo without a state (never sent by the kernel) reads as NONE.
      const t: CtTcpInfo = { state: (v[CTA_PROTOINFO_TCP_STATE] as TcpCtState | undefined) ?? 'NONE' };
      const wo = v[CTA_PROTOINFO_TCP_WSCALE_ORIGINAL] as number | undefined;
      const wr = v[CTA_PROTOINFO_TCP_WSCALE_REPLY] as number | undefined;
      const fo = v[CTA_PROTOINFO_TCP_FLAGS_ORIGINAL] as number | undefined;
      const fr = v[CTA_PROTOINFO_TCP_FLAGS_REPLY] as number | undefined;
      if (wo !== undefined) t.wscaleOrig = wo;
      if (wr !== undefined) t.wscaleReply = wr;
      if (fo !== undefined) t.flagsOrig = fo;
      if (fr !== undefined) t.flagsReply = fr;
      return t;
    }),
  ),
});

const COUNTERS_TABLE = table({
  [CTA_COUNTERS_PACKETS]: spec('CTA_COUNTERS_PACKETS', be64),
  [CTA_COUNTERS_BYTES]: spec('CTA_COUNTERS_BYTES', be64),
  [CTA_COUNTERS32_PACKETS]: spec('CTA_COUNTERS32_PACKETS', be32),
  [CTA_COUNTERS32_BYTES]: spec('CTA_COUNTERS32_BYTES', be32),
});
const countersReader = (name: string) =>
  nested(COUNTERS_TABLE, name, (v): CtCounters => ({
    packets: (v[CTA_COUNTERS_PACKETS] ?? v[CTA_COUNTERS32_PACKETS] ?? 0) as number,
    bytes: (v[CTA_COUNTERS_BYTES] ?? v[CTA_COUNTERS32_BYTES] ?? 0) as number,
  }));

const SEQADJ_TABLE = table({
  [CTA_SEQADJ_CORRECTION_POS]: spec('CTA_SEQADJ_CORRECTION_POS', be32),
  [CTA_SEQADJ_OFFSET_BEFORE]: spec('CTA_SEQADJ_OFFSET_BEFORE', be32),
  [CTA_SEQADJ_OFFSET_AFTER]: spec('CTA_SEQADJ_OFFSET_AFTER', be32),
});
const seqAdjReader = (name: string) =>
  nested(SEQADJ_TABLE, name, (v): CtSeqAdj => ({
    correctionPos: (v[CTA_SEQADJ_CORRECTION_POS] ?? 0) as number,
    offsetBefore: ((v[CTA_SEQADJ_OFFSET_BEFORE] ?? 0) as number) | 0, // s32 in the kernel
    offsetAfter: ((v[CTA_SEQADJ_OFFSET_AFTER] ?? 0) as number) | 0,
  }));

const HELP_TABLE = table({ [CTA_HELP_NAME]: spec('CTA_HELP_NAME', str) });

/** The top-level table of a conntrack message (after struct nfgenmsg), per family. */
function ctTable(family: IpFamily): Table {
  return table({
    [CTA_TUPLE_ORIG]: spec('CTA_TUPLE_ORIG', tupleReader(family, 'CTA_TUPLE_ORIG')),
    [CTA_TUPLE_REPLY]: spec('CTA_TUPLE_REPLY', tupleReader(family, 'CTA_TUPLE_REPLY')),
    [CTA_STATUS]: spec('CTA_STATUS', be32),
    [CTA_PROTOINFO]: spec('CTA_PROTOINFO', nested(PROTOINFO_TABLE, 'CTA_PROTOINFO', (v) => v[CTA_PROTOINFO_TCP] ?? null)),
    [CTA_HELP]: spec('CTA_HELP', nested(HELP_TABLE, 'CTA_HELP', (v) => v[CTA_HELP_NAME] ?? null)),
    [CTA_TIMEOUT]: spec('CTA_TIMEOUT', be32),
    [CTA_MARK]: spec('CTA_MARK', be32),
    [CTA_COUNTERS_ORIG]: spec('CTA_COUNTERS_ORIG', countersReader('CTA_COUNTERS_ORIG')),
    [CTA_COUNTERS_REPLY]: spec('CTA_COUNTERS_REPLY', countersReader('CTA_COUNTERS_REPLY')),
    [CTA_USE]: spec('CTA_USE', be32),
    [CTA_ID]: spec('CTA_ID', be32),
    [CTA_TUPLE_MASTER]: spec('CTA_TUPLE_MASTER', tupleReader(family, 'CTA_TUPLE_MASTER')),
    [CTA_SEQ_ADJ_ORIG]: spec('CTA_SEQ_ADJ_ORIG', seqAdjReader('CTA_SEQ_ADJ_ORIG')),
    [CTA_SEQ_ADJ_REPLY]: spec('CTA_SEQ_ADJ_REPLY', seqAdjReader('CTA_SEQ_ADJ_REPLY')),
    [CTA_ZONE]: spec('CTA_ZONE', be16),
  });
}
const CT_TABLE_V4 = ctTable(4);
const CT_TABLE_V6 = ctTable(6);

/**
 * A conntrack message (IPCTNL_MSG_CT_NEW from a dump or a get, or any event) -> its entry.
 * Reasons: unexpected_type (not a ctnetlink conntrack message), short_payload (no nfgenmsg),
 * bad_header_field (nfgenmsg.version not 0), bad_family (neither IPv4 nor IPv6),
 * bad_attribute_length / bad_attribute_value (with the attribute's name in `detail`),
 * missing_attribute (no original or reply tuple, or a tuple without its addresses).
 */
export function decodeConntrack(msg: NlMessage): DecodeResult<ConntrackEntry> {
  const t = msg.header.type;
  if (t !== CT_NEW && t !== CT_DELETE) return fail('unexpected_type', `type 0x${t.toString(16)}`);
  const p = msg.payload;
  if (p.length < NFGENMSG_LEN) return fail('short_payload', `nfgenmsg needs ${NFGENMSG_LEN} bytes, got ${p.length}`);
  const af = p[0];
  const family: IpFamily | undefined = af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
  if (family === undefined) return fail('bad_family', `nfgen_family ${af}`);
  const version = p[1];
  if (version !== NFNETLINK_V0) return fail('bad_header_field', `nfgenmsg version ${version}`);
  const v = readTable(p, NFGENMSG_LEN, p.length, family === 4 ? CT_TABLE_V4 : CT_TABLE_V6, 'conntrack');
  if (v instanceof Bad) return fail(v.reason, v.detail);
  const orig = v[CTA_TUPLE_ORIG] as CtTuple | undefined;
  const reply = v[CTA_TUPLE_REPLY] as CtTuple | undefined;
  if (orig === undefined) return fail('missing_attribute', 'CTA_TUPLE_ORIG');
  if (reply === undefined) return fail('missing_attribute', 'CTA_TUPLE_REPLY');
  const e: ConntrackEntry = { family, orig, reply };
  const num = (type: number) => v[type] as number | undefined;
  const status = num(CTA_STATUS);
  const timeout = num(CTA_TIMEOUT);
  const mark = num(CTA_MARK);
  const zone = num(CTA_ZONE);
  const id = num(CTA_ID);
  const use = num(CTA_USE);
  if (status !== undefined) e.status = status;
  if (timeout !== undefined) e.timeout = timeout;
  if (mark !== undefined) e.mark = mark;
  if (zone !== undefined) e.zone = zone;
  if (id !== undefined) e.id = id;
  if (use !== undefined) e.use = use;
  const tcp = v[CTA_PROTOINFO] as CtTcpInfo | null | undefined;
  if (tcp) e.tcp = tcp;
  const helper = v[CTA_HELP] as string | null | undefined;
  if (helper !== undefined && helper !== null) e.helper = helper;
  const co = v[CTA_COUNTERS_ORIG] as CtCounters | undefined;
  const cr = v[CTA_COUNTERS_REPLY] as CtCounters | undefined;
  const so = v[CTA_SEQ_ADJ_ORIG] as CtSeqAdj | undefined;
  const sr = v[CTA_SEQ_ADJ_REPLY] as CtSeqAdj | undefined;
  const master = v[CTA_TUPLE_MASTER] as CtTuple | undefined;
  if (co) e.countersOrig = co;
  if (cr) e.countersReply = cr;
  if (so) e.seqAdjOrig = so;
  if (sr) e.seqAdjReply = sr;
  if (master) e.master = master;
  return ok(e);
}

/**
 * A message of the NFNLGRP_CONNTRACK_* groups -> its kind and entry. The kernel sends
 * IPCTNL_MSG_CT_DELETE for a destroyed entry, IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL
 * for a new one and IPCTNL_MSG_CT_NEW without them for an update
 * (net/netfilter/nf_conntrack_netlink.c, ctnetlink_conntrack_event).
 */
export function decodeConntrackEvent(msg: NlMessage): DecodeResult<ConntrackEvent> {
  const e = decodeConntrack(msg);
  if (!e.ok) return e;
  const kind: CtEventKind = msg.header.type === CT_DELETE ? 'destroy' : msg.header.flags & NLM_F_CREATE ? 'new' : 'update';
  return ok({ kind, entry: e.value });
}

// ---------------------------------------------------------------------------------------
// Encoders

/** The nfgenmsg of each family (read only: every message of a family carries the same one). */
const NFGENMSGS = new Map<IpFamily | 0, Buffer>(
  ([0, 4, 6] as const).map((family) => {
    const b = Buffer.alloc(NFGENMSG_LEN);
    b.writeUInt8(family === 4 ? AF_INET : family === 6 ? AF_INET6 : 0, 0);
    b.writeUInt8(NFNETLINK_V0, 1);
    b.writeUInt16BE(0, 2); // res_id
    return [family, b];
  }),
);

function nfgenmsg(family: IpFamily | 0): Buffer {
  return NFGENMSGS.get(family)!;
}

function nest(type: number, ...attrs: Buffer[]): Buffer {
  return encodeAttr(type | NLA_F_NESTED, Buffer.concat(attrs));
}
function attrU8(type: number, v: number): Buffer {
  return encodeAttr(type, Buffer.of(v & 0xff));
}
function attrBe16(type: number, v: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(v & 0xffff, 0);
  return encodeAttr(type, b);
}
function attrBe32(type: number, v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return encodeAttr(type, b);
}
function attrU32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return encodeAttr(type, b);
}

function checkInt(what: string, v: number | undefined, max: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > max)) throw new RangeError(`${what} ${v} is not an integer in 0..${max}`);
}

function addressBytes(family: IpFamily, text: string, what: string): Buffer {
  const a = parseIp(text);
  if (!a || a.family !== family) throw new RangeError(`${what} ${JSON.stringify(text)} is not an IPv${family} address`);
  return a.bytes;
}

/** A tuple with its addresses as bytes (throws RangeError when one is not of the family). */
export function rawTuple(family: IpFamily, t: CtTuple, what: string): RawCtTuple {
  return { ...t, src: addressBytes(family, t.src, `${what} source`), dst: addressBytes(family, t.dst, `${what} destination`) };
}

/** A tuple as a nest of `type`: the IP nest, the PROTO nest, the zone. */
function writeTuple(w: NlWriter, type: number, family: IpFamily, t: RawCtTuple, what: string): void {
  if (t.proto === undefined) throw new RangeError(`${what}: no protocol`);
  checkInt(`${what} protocol`, t.proto, 255);
  const alen = family === 4 ? 4 : 16;
  if (t.src.length !== alen || t.dst.length !== alen) throw new RangeError(`${what}: addresses are not IPv${family}`);
  if (hasPorts(t.proto)) {
    if (t.srcPort === undefined || t.dstPort === undefined) throw new RangeError(`${what}: ${PROTO_NAMES[t.proto]} needs both ports`);
  }
  checkInt(`${what} source port`, t.srcPort, 0xffff);
  checkInt(`${what} destination port`, t.dstPort, 0xffff);
  const icmp = isIcmp(t.proto);
  if (icmp) {
    if (t.icmpId === undefined || t.icmpType === undefined || t.icmpCode === undefined) {
      throw new RangeError(`${what}: ICMP needs id, type and code`);
    }
    checkInt(`${what} ICMP id`, t.icmpId, 0xffff);
    checkInt(`${what} ICMP type`, t.icmpType, 0xff);
    checkInt(`${what} ICMP code`, t.icmpCode, 0xff);
  }
  checkInt(`${what} zone`, t.zone, 0xffff);
  const outer = w.begin(type);
  const ip = w.begin(CTA_TUPLE_IP);
  w.attr(family === 4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, t.src).attr(family === 4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, t.dst).end(ip);
  const proto = w.begin(CTA_TUPLE_PROTO);
  w.u8(CTA_PROTO_NUM, t.proto);
  if (t.srcPort !== undefined) w.be16(CTA_PROTO_SRC_PORT, t.srcPort);
  if (t.dstPort !== undefined) w.be16(CTA_PROTO_DST_PORT, t.dstPort);
  if (icmp) {
    const v6 = t.proto === IPPROTO_ICMPV6;
    w.be16(v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID, t.icmpId!);
    w.u8(v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE, t.icmpType!);
    w.u8(v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE, t.icmpCode!);
  }
  w.end(proto);
  if (t.zone !== undefined) w.be16(CTA_TUPLE_ZONE, t.zone);
  w.end(outer);
}

function tupleNest(type: number, family: IpFamily, t: CtTuple, what: string): Buffer {
  const w = new NlWriter(96);
  writeTuple(w, type, family, rawTuple(family, t, what), what);
  return w.finish();
}

/** What a dump may be narrowed to. Every field is optional; none: the whole table. */
export interface DumpFilter {
  /** nfgenmsg.nfgen_family: one family (the kernel filters; Linux always could). */
  family?: IpFamily;
  /** CTA_MARK / CTA_MARK_MASK: entries whose (mark & mask) == value (mask default 0xffffffff). */
  mark?: { value: number; mask?: number };
  /**
   * CTA_FILTER (Linux 5.8): original-direction fields to match, in the kernel. Needs
   * `family`. Older kernels ignore it and send everything, so callers that must be exact
   * also check `matchesFilter` (the adapter does).
   */
  orig?: { proto?: number; src?: string; dst?: string; srcPort?: number; dstPort?: number };
}

/**
 * Dump the table: IPCTNL_MSG_CT_GET with NLM_F_REQUEST|NLM_F_DUMP, narrowed by `filter`.
 * The kernel answers with IPCTNL_MSG_CT_NEW messages (NLM_F_MULTI) and NLMSG_DONE.
 */
export function encodeDumpRequest(seq: number, filter: DumpFilter = {}): Buffer {
  const attrs: Buffer[] = [];
  if (filter.mark) {
    checkInt('mark', filter.mark.value, 0xffffffff);
    checkInt('mark mask', filter.mark.mask, 0xffffffff);
    attrs.push(attrBe32(CTA_MARK, filter.mark.value), attrBe32(CTA_MARK_MASK, filter.mark.mask ?? 0xffffffff));
  }
  const o = filter.orig;
  if (o && (o.proto !== undefined || o.src !== undefined || o.dst !== undefined || o.srcPort !== undefined || o.dstPort !== undefined)) {
    const family = filter.family;
    if (family === undefined) throw new RangeError('a tuple filter needs a family');
    let flags = 0;
    const ip: Buffer[] = [];
    const proto: Buffer[] = [];
    const [s, d] = family === 4 ? [CTA_IP_V4_SRC, CTA_IP_V4_DST] : [CTA_IP_V6_SRC, CTA_IP_V6_DST];
    if (o.src !== undefined) {
      ip.push(encodeAttr(s, addressBytes(family, o.src, 'filter source')));
      flags |= CTA_FILTER_F_CTA_IP_SRC;
    }
    if (o.dst !== undefined) {
      ip.push(encodeAttr(d, addressBytes(family, o.dst, 'filter destination')));
      flags |= CTA_FILTER_F_CTA_IP_DST;
    }
    if (o.srcPort !== undefined || o.dstPort !== undefined) {
      if (o.proto === undefined || !hasPorts(o.proto)) throw new RangeError('a port filter needs a protocol with ports');
    }
    if (o.proto !== undefined) {
      checkInt('filter protocol', o.proto, 255);
      proto.push(attrU8(CTA_PROTO_NUM, o.proto));
      flags |= CTA_FILTER_F_CTA_PROTO_NUM;
    }
    if (o.srcPort !== undefined) {
      checkInt('filter source port', o.srcPort, 0xffff);
      proto.push(attrBe16(CTA_PROTO_SRC_PORT, o.srcPort));
      flags |= CTA_FILTER_F_CTA_PROTO_SRC_PORT;
    }
    if (o.dstPort !== undefined) {
      checkInt('filter destination port', o.dstPort, 0xffff);
      proto.push(attrBe16(CTA_PROTO_DST_PORT, o.dstPort));
      flags |= CTA_FILTER_F_CTA_PROTO_DST_PORT;
    }
    const tuple: Buffer[] = [];
    if (ip.length > 0) tuple.push(nest(CTA_TUPLE_IP, ...ip));
    if (proto.length > 0) tuple.push(nest(CTA_TUPLE_PROTO, ...proto));
    attrs.push(nest(CTA_TUPLE_ORIG, ...tuple), nest(CTA_FILTER, attrU32(CTA_FILTER_ORIG_FLAGS, flags), attrU32(CTA_FILTER_REPLY_FLAGS, 0)));
  }
  return encodeNlMsg({ type: CT_GET, flags: NLM_F_REQUEST | NLM_F_DUMP, seq }, nfgenmsg(filter.family ?? 0), ...attrs);
}

/** Does an entry pass a dump filter? (What the kernel does with CTA_FILTER and CTA_MARK.) */
export function matchesFilter(e: ConntrackEntry, f: DumpFilter): boolean {
  if (f.family !== undefined && e.family !== f.family) return false;
  if (f.mark) {
    const mask = f.mark.mask ?? 0xffffffff;
    if ((((e.mark ?? 0) & mask) >>> 0) !== ((f.mark.value & mask) >>> 0)) return false;
  }
  const o = f.orig;
  if (o) {
    if (o.proto !== undefined && e.orig.proto !== o.proto) return false;
    if (o.src !== undefined && !sameAddress(e.orig.src, o.src)) return false;
    if (o.dst !== undefined && !sameAddress(e.orig.dst, o.dst)) return false;
    if (o.srcPort !== undefined && e.orig.srcPort !== o.srcPort) return false;
    if (o.dstPort !== undefined && e.orig.dstPort !== o.dstPort) return false;
  }
  return true;
}

/** Which entry: its original tuple (a reply tuple finds it too), family, zone and, optionally, id. */
export interface CtKey {
  family: IpFamily;
  /** The original-direction tuple. */
  orig: CtTuple;
  /** CTA_ZONE (default zone 0). */
  zone?: number;
  /** CTA_ID: only the entry with this id (delete: ENOENT if the tuple now names another one). */
  id?: number;
}

function keyAttrs(k: CtKey): Buffer[] {
  const attrs = [tupleNest(CTA_TUPLE_ORIG, k.family, k.orig, 'original tuple')];
  if (k.zone !== undefined) {
    checkInt('zone', k.zone, 0xffff);
    attrs.push(attrBe16(CTA_ZONE, k.zone));
  }
  if (k.id !== undefined) {
    checkInt('id', k.id, 0xffffffff);
    attrs.push(attrBe32(CTA_ID, k.id));
  }
  return attrs;
}

/** Get one entry: IPCTNL_MSG_CT_GET with NLM_F_REQUEST|NLM_F_ACK; ENOENT when there is none. */
export function encodeGet(seq: number, k: CtKey): Buffer {
  return encodeNlMsg({ type: CT_GET, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, nfgenmsg(k.family), ...keyAttrs(k));
}

/**
 * Delete one entry: IPCTNL_MSG_CT_DELETE with NLM_F_REQUEST|NLM_F_ACK; ENOENT when there is
 * none. Always carries the original tuple: a delete without a tuple is how the kernel is
 * told to flush the whole table, which this encoder never sends.
 */
export function encodeDelete(seq: number, k: CtKey): Buffer {
  // The type requires the tuple; this guards callers from plain JavaScript.
  if (typeof k?.orig !== 'object' || k.orig === null) throw new RangeError('refusing a delete without a tuple (that would flush the table)');
  const attrs = keyAttrs(k);
  return encodeNlMsg({ type: CT_DELETE, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, nfgenmsg(k.family), ...attrs);
}

export interface CreateOptions {
  /**
   * Set IP_CT_TCP_FLAG_BE_LIBERAL in both directions (default true), as conntrackd does when
   * it commits learned entries. An entry written on the backup knows nothing of the TCP
   * windows the master saw; without this flag the first packets after a takeover, which
   * arrive in the middle of a window, could be judged out of window and marked INVALID
   * (and dropped by the ruleset). With it the tracker accepts any sequence number for this
   * entry and keeps following state changes (FIN, RST) as usual.
   */
  beLiberal?: boolean;
  /** Timeout in seconds; default the entry's own, else 120. The kernel requires one. */
  timeout?: number;
  /**
   * Keep IPS_CONFIRMED in CTA_STATUS (default true). The kernel refuses (EBUSY) a
   * CTA_STATUS whose CONFIRMED bit differs from the new entry's at the moment it applies
   * the status. Linux 6.18 (checked) and the kernels before 6.2 mark a new entry confirmed
   * before that, so CONFIRMED must be there, as conntrackd sends it; a change of early 2023
   * (marking it only at insertion, later reverted) wanted it absent. The adapter retries
   * with the other choice on EBUSY and remembers it.
   */
  keepConfirmed?: boolean;
  /**
   * Ask for an ack (default true). Without one the kernel answers only an error: for writes
   * sent in batches whose success is known when sendto returns (see NetlinkSocket, `ackless`).
   */
  ack?: boolean;
}

/** The status bits a create carries from the entry (EXPECTED and DYING would be EBUSY; CONFIRMED: see keepConfirmed). */
const CREATE_STATUS_MASK = ~(IPS_EXPECTED | IPS_DYING | IPS_CONFIRMED | IPS_TEMPLATE | IPS_UNTRACKED | IPS_OFFLOAD | IPS_HW_OFFLOAD) >>> 0;

/** The TCP flags a created entry takes from the original: what the peer negotiated. */
const TCP_FLAGS_COPIED = IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_CLOSE_INIT;

function writeNat(w: NlWriter, type: number, family: IpFamily, proto: number, target: { address: Uint8Array; port?: number }): void {
  const withPort = target.port !== undefined && (hasPorts(proto) || isIcmp(proto));
  if (withPort) checkInt('NAT port', target.port, 0xffff);
  const nat = w.begin(type);
  w.attr(family === 4 ? CTA_NAT_V4_MINIP : CTA_NAT_V6_MINIP, target.address).attr(family === 4 ? CTA_NAT_V4_MAXIP : CTA_NAT_V6_MAXIP, target.address);
  if (withPort) {
    const p = w.begin(CTA_NAT_PROTO);
    w.be16(CTA_PROTONAT_PORT_MIN, target.port!).be16(CTA_PROTONAT_PORT_MAX, target.port!).end(p);
  }
  w.end(nat);
}

/** natOf on tuples of bytes (the same rule; addresses compared byte for byte). */
function rawNatOf(orig: RawCtTuple, reply: RawCtTuple): { dnat?: { address: Uint8Array; port?: number }; snat?: { address: Uint8Array; port?: number } } {
  return natRule(orig, reply, sameBytes);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}


function writeSeqAdj(w: NlWriter, type: number, s: CtSeqAdj): void {
  const n = w.begin(type);
  w.be32(CTA_SEQADJ_CORRECTION_POS, s.correctionPos).be32(CTA_SEQADJ_OFFSET_BEFORE, s.offsetBefore).be32(CTA_SEQADJ_OFFSET_AFTER, s.offsetAfter).end(n);
}

/**
 * Create an entry (what a backup does on takeover with what it learned):
 * IPCTNL_MSG_CT_NEW with NLM_F_REQUEST|NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK; EEXIST when an
 * entry with either tuple is there already.
 *
 * Sent: the original tuple; the reply tuple *without* NAT (the inverse of the original);
 * CTA_NAT_DST / CTA_NAT_SRC with the addresses and ports `natOf(entry)` reads from the reply
 * tuple, so that the kernel's NAT core makes the same binding again: it rewrites the reply
 * tuple to the one given and sets IPS_DST_NAT / IPS_SRC_NAT, without which the translated
 * packets would not be translated. (IPS_*_NAT are not settable through CTA_STATUS.)
 * Then CTA_STATUS (the settable bits: SEEN_REPLY, ASSURED ...), CTA_TIMEOUT, CTA_MARK,
 * CTA_ZONE, CTA_PROTOINFO for TCP (state, window scales, flags; see `beLiberal`) and the
 * sequence adjustments. Not sent: the helper (the backup's ruleset attaches its own),
 * counters, labels.
 */
export function encodeCreate(seq: number, e: ConntrackEntry, opts: CreateOptions = {}): Buffer {
  return encodeCreateRaw(seq, { ...e, orig: rawTuple(e.family, e.orig, 'original tuple'), reply: rawTuple(e.family, e.reply, 'reply tuple') }, opts);
}

/** encodeCreate of an entry whose tuples are bytes already (a received sync record). */
export function encodeCreateRaw(seq: number, e: RawCtEntry, opts: CreateOptions = {}): Buffer {
  return encodeEntry(seq, e, opts, 'create');
}

/** A write of a batch (Ctnetlink.writeBatch): what, and to which entry. */
export type CtWriteOp = 'create' | 'update' | 'delete';

/**
 * Appends one write to `w` as a message of its own (several go in one sendto): a create, an
 * update in place, or a delete by original tuple and zone. `ack` as in CreateOptions.
 * Throws RangeError for an entry that cannot be written; `w` is then as before the call.
 */
export function writeEntryMessage(w: NlWriter, seq: number, op: CtWriteOp, e: RawCtEntry, opts: CreateOptions = {}): void {
  const before = w.length;
  try {
    if (op === 'delete') {
      checkInt('zone', e.zone, 0xffff);
      w.header({ type: CT_DELETE, flags: NLM_F_REQUEST | (opts.ack === false ? 0 : NLM_F_ACK), seq });
      w.raw(nfgenmsg(e.family));
      writeTuple(w, CTA_TUPLE_ORIG, e.family, e.orig, 'original tuple');
      if (e.zone !== undefined) w.be16(CTA_ZONE, e.zone);
      w.endMessage();
    } else {
      writeEntry(w, seq, e, opts, op);
    }
  } catch (err) {
    w.truncate(before);
    throw err;
  }
}

/**
 * Change an entry in place (what a backup does with a later record of an entry it holds):
 * IPCTNL_MSG_CT_NEW with NLM_F_REQUEST (and ACK) but neither CREATE nor EXCL, so the kernel
 * finds the entry by its original tuple (ENOENT when there is none) and changes what
 * ctnetlink_change_conntrack allows: status bits that only get set (SEEN_REPLY, ASSURED;
 * EBUSY otherwise), timeout, mark, TCP state, window scales and flags, sequence adjustments.
 * The NAT of an entry never changes: no CTA_NAT_* (EOPNOTSUPP on an update), no reply tuple.
 * One message instead of the delete and create it replaces.
 */
export function encodeUpdateRaw(seq: number, e: RawCtEntry, opts: CreateOptions = {}): Buffer {
  return encodeEntry(seq, e, opts, 'update');
}

function encodeEntry(seq: number, e: RawCtEntry, opts: CreateOptions, mode: 'create' | 'update'): Buffer {
  const w = new NlWriter(256);
  writeEntry(w, seq, e, opts, mode);
  return w.finish();
}

function writeEntry(w: NlWriter, seq: number, e: RawCtEntry, opts: CreateOptions, mode: 'create' | 'update'): void {
  if (e.orig.proto !== e.reply.proto) throw new RangeError('original and reply tuples of different protocols');
  // Checked before a byte is written: a bad entry throws, whatever was written is dropped.
  checkInt('status', e.status, 0xffffffff);
  const timeout = opts.timeout ?? e.timeout ?? 120;
  checkInt('timeout', timeout, 0xffffffff);
  checkInt('mark', e.mark, 0xffffffff);
  checkInt('zone', e.zone, 0xffff);
  const tcp = e.orig.proto === IPPROTO_TCP ? e.tcp ?? { state: 'ESTABLISHED' as TcpCtState } : undefined;
  const state = tcp ? TCP_CT_STATES.indexOf(tcp.state) : 0;
  if (tcp && state < 0) throw new RangeError(`unknown TCP state ${String(tcp.state)}`);
  const scales = tcp !== undefined && tcp.wscaleOrig !== undefined && tcp.wscaleReply !== undefined;
  if (scales) {
    checkInt('window scale', tcp.wscaleOrig, 255);
    checkInt('window scale', tcp.wscaleReply, 255);
  }
  const create = mode === 'create' ? NLM_F_CREATE | NLM_F_EXCL : 0;
  w.header({ type: CT_NEW, flags: NLM_F_REQUEST | create | (opts.ack === false ? 0 : NLM_F_ACK), seq });
  w.raw(nfgenmsg(e.family));
  writeTuple(w, CTA_TUPLE_ORIG, e.family, e.orig, 'original tuple');
  if (mode === 'create') {
    const nat = rawNatOf(e.orig, e.reply);
    writeTuple(w, CTA_TUPLE_REPLY, e.family, nat.dnat || nat.snat ? invertTuple(e.orig) : e.reply, 'reply tuple');
    if (nat.dnat) writeNat(w, CTA_NAT_DST, e.family, e.orig.proto, nat.dnat);
    if (nat.snat) writeNat(w, CTA_NAT_SRC, e.family, e.orig.proto, nat.snat);
  }
  if (e.status !== undefined) w.be32(CTA_STATUS, ((e.status & CREATE_STATUS_MASK) | (opts.keepConfirmed ?? true ? IPS_CONFIRMED : 0)) >>> 0);
  w.be32(CTA_TIMEOUT, timeout);
  if (e.mark !== undefined) w.be32(CTA_MARK, e.mark);
  if (e.zone !== undefined) w.be16(CTA_ZONE, e.zone);
  if (tcp) {
    const liberal = opts.beLiberal ?? true ? IP_CT_TCP_FLAG_BE_LIBERAL : 0;
    const mask = TCP_FLAGS_COPIED | IP_CT_TCP_FLAG_BE_LIBERAL;
    const info = w.begin(CTA_PROTOINFO);
    const t = w.begin(CTA_PROTOINFO_TCP);
    w.u8(CTA_PROTOINFO_TCP_STATE, state);
    if (scales) w.u8(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, tcp.wscaleOrig!).u8(CTA_PROTOINFO_TCP_WSCALE_REPLY, tcp.wscaleReply!);
    // struct nf_ct_tcp_flags { flags, mask }: one byte each.
    w.be16(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, ((((tcp.flagsOrig ?? 0) & TCP_FLAGS_COPIED) | liberal) << 8) | mask);
    w.be16(CTA_PROTOINFO_TCP_FLAGS_REPLY, ((((tcp.flagsReply ?? 0) & TCP_FLAGS_COPIED) | liberal) << 8) | mask);
    w.end(t).end(info);
  }
  if (e.seqAdjOrig) writeSeqAdj(w, CTA_SEQ_ADJ_ORIG, e.seqAdjOrig);
  if (e.seqAdjReply) writeSeqAdj(w, CTA_SEQ_ADJ_REPLY, e.seqAdjReply);
  w.endMessage();
}
