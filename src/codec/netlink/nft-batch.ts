/**
 * nf_tables written over netlink, for the one table nft(8) cannot express: a rule that writes
 * bytes inside an ICMPv6 message and updates its checksum. nft's raw payload statement
 * (`@th,208,48 set ...`) writes the bytes with no checksum update (nftables 1.0.6 gives a raw
 * payload no protocol, so no checksum field), and a neighbour advertisement with a bad
 * checksum is dropped by every host. The kernel's payload expression has done the update
 * since Linux 4.10 when asked (NFTA_PAYLOAD_CSUM_TYPE inet, the checksum's offset): this
 * module asks.
 *
 * Used for active-active over IPv6 (compiler/sharing-nd.ts): the kernel answers neighbour
 * solicitations for a shared address with the interface's own MAC in the target link-layer
 * address option; the rule puts the shared MAC there, as the ARP table does for IPv4.
 *
 * A batch is one transaction (nfnetlink): BATCH_BEGIN, the messages, BATCH_END in one
 * datagram; the kernel applies all or none. The table is replaced whole (created if absent,
 * deleted, created again with its chain and rules), like `nft -f` with `delete table`.
 * Every message carries the same sequence number and only the last asks for an ACK: the
 * first answer for that number is the batch's outcome (an error of any message comes before
 * the last one's ACK).
 */
import { NFGENMSG_LEN, NFNETLINK_V0 } from './ctnetlink.js';
import { NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST, NlWriter } from './nlmsg.js';
import { NFNL_SUBSYS_NFTABLES, NFPROTO, type NftFamily } from './nftables.js';

export const NFNL_MSG_BATCH_BEGIN = 0x10; // linux/netfilter/nfnetlink.h: NLMSG_MIN_TYPE
export const NFNL_MSG_BATCH_END = 0x11; // linux/netfilter/nfnetlink.h: NLMSG_MIN_TYPE + 1

// enum nf_tables_msg_types (linux/netfilter/nf_tables.h)
export const NFT_MSG_NEWTABLE = 0;
export const NFT_MSG_DELTABLE = 2;
export const NFT_MSG_NEWCHAIN = 3;
export const NFT_MSG_NEWRULE = 6;

// enum nft_table_attributes
const NFTA_TABLE_NAME = 1;
// enum nft_chain_attributes
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;
const NFTA_CHAIN_HOOK = 4;
const NFTA_CHAIN_POLICY = 5;
const NFTA_CHAIN_TYPE = 7;
// enum nft_hook_attributes
const NFTA_HOOK_HOOKNUM = 1;
const NFTA_HOOK_PRIORITY = 2;
// enum nft_rule_attributes
const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_RULE_USERDATA = 7;
// enum nft_list_attributes, enum nft_expr_attributes
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
// enum nft_meta_attributes
const NFTA_META_DREG = 1;
const NFTA_META_KEY = 2;
// enum nft_cmp_attributes, enum nft_data_attributes
const NFTA_CMP_SREG = 1;
const NFTA_CMP_OP = 2;
const NFTA_CMP_DATA = 3;
const NFTA_DATA_VALUE = 1;
// enum nft_payload_attributes
const NFTA_PAYLOAD_DREG = 1;
const NFTA_PAYLOAD_BASE = 2;
const NFTA_PAYLOAD_OFFSET = 3;
const NFTA_PAYLOAD_LEN = 4;
const NFTA_PAYLOAD_SREG = 5;
const NFTA_PAYLOAD_CSUM_TYPE = 6;
const NFTA_PAYLOAD_CSUM_OFFSET = 7;
// enum nft_immediate_attributes
const NFTA_IMMEDIATE_DREG = 1;
const NFTA_IMMEDIATE_DATA = 2;

/** NFT_REG_1: the first 16-byte data register (enum nft_registers). */
export const NFT_REG_1 = 1;
export const NFT_CMP_EQ = 0; // enum nft_cmp_ops
/** enum nft_meta_keys */
export const NFT_META = { oifname: 7, l4proto: 16 } as const;
/** enum nft_payload_bases */
export const NFT_PAYLOAD = { link: 0, network: 1, transport: 2 } as const;
export const NFT_PAYLOAD_CSUM_INET = 1; // enum nft_payload_csum_types
/** NF_INET_* hooks (linux/netfilter.h). */
export const NF_INET_HOOK = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4 } as const;
const NF_ACCEPT = 1; // linux/netfilter.h
const IFNAMSIZ = 16; // linux/if.h
/** libnftnl's rule user data: a TLV whose type 0 is the comment nft(8) prints (NUL-terminated). */
const NFTNL_UDATA_RULE_COMMENT = 0;

/** One expression of a rule, as nft(8) --debug=netlink prints them. */
export type NftExpr =
  | { kind: 'meta'; key: keyof typeof NFT_META }
  | { kind: 'cmp'; data: Uint8Array }
  | { kind: 'payload'; base: keyof typeof NFT_PAYLOAD; offset: number; len: number }
  | { kind: 'immediate'; data: Uint8Array }
  /** Writes register 1's first `len` bytes at `offset`; with `csumOffset`, updates the internet checksum there (same base). */
  | { kind: 'payload_set'; base: keyof typeof NFT_PAYLOAD; offset: number; len: number; csumOffset?: number };

export interface NftRule {
  exprs: NftExpr[];
  comment?: string;
}

export interface NftTableSpec {
  family: NftFamily;
  name: string;
  chain: { name: string; hook: keyof typeof NF_INET_HOOK; priority: number };
  rules: NftRule[];
}

/** An interface name as `meta oifname` loads it: IFNAMSIZ bytes, NUL-padded. */
export function ifnameBytes(name: string): Buffer {
  const b = Buffer.alloc(IFNAMSIZ);
  const n = Buffer.from(name, 'utf8');
  if (n.length === 0 || n.length >= IFNAMSIZ) throw new RangeError(`interface name "${name}" is not 1-15 bytes`);
  n.copy(b);
  return b;
}

const str = (s: string) => Buffer.from(`${s}\0`, 'utf8');

function genmsg(w: NlWriter, family: number, resId: number): void {
  const g = Buffer.alloc(NFGENMSG_LEN);
  g.writeUInt8(family, 0);
  g.writeUInt8(NFNETLINK_V0, 1);
  g.writeUInt16BE(resId, 2);
  w.raw(g);
}

function data(w: NlWriter, type: number, value: Uint8Array): void {
  if (value.length === 0 || value.length > 16) throw new RangeError(`an nft register holds 1-16 bytes, not ${value.length}`);
  const m = w.begin(type);
  w.attr(NFTA_DATA_VALUE, value);
  w.end(m);
}

function expr(w: NlWriter, e: NftExpr): void {
  const elem = w.begin(NFTA_LIST_ELEM);
  w.attr(NFTA_EXPR_NAME, str(e.kind === 'payload_set' ? 'payload' : e.kind));
  const d = w.begin(NFTA_EXPR_DATA);
  switch (e.kind) {
    case 'meta':
      w.be32(NFTA_META_DREG, NFT_REG_1).be32(NFTA_META_KEY, NFT_META[e.key]);
      break;
    case 'cmp':
      w.be32(NFTA_CMP_SREG, NFT_REG_1).be32(NFTA_CMP_OP, NFT_CMP_EQ);
      data(w, NFTA_CMP_DATA, e.data);
      break;
    case 'payload':
      w.be32(NFTA_PAYLOAD_DREG, NFT_REG_1).be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD[e.base]).be32(NFTA_PAYLOAD_OFFSET, e.offset).be32(NFTA_PAYLOAD_LEN, e.len);
      break;
    case 'immediate':
      w.be32(NFTA_IMMEDIATE_DREG, NFT_REG_1);
      data(w, NFTA_IMMEDIATE_DATA, e.data);
      break;
    case 'payload_set':
      w.be32(NFTA_PAYLOAD_SREG, NFT_REG_1).be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD[e.base]).be32(NFTA_PAYLOAD_OFFSET, e.offset).be32(NFTA_PAYLOAD_LEN, e.len);
      if (e.csumOffset !== undefined) w.be32(NFTA_PAYLOAD_CSUM_TYPE, NFT_PAYLOAD_CSUM_INET).be32(NFTA_PAYLOAD_CSUM_OFFSET, e.csumOffset);
      break;
  }
  w.end(d);
  w.end(elem);
}

/**
 * The batch that replaces table `spec` whole: the table created if absent (so that the delete
 * finds it), deleted, created with its base chain (policy accept) and its rules, in one
 * transaction. `seq` on every message; the last asks for the ACK.
 */
export function encodeTableReplace(seq: number, spec: NftTableSpec): Buffer {
  const fam = NFPROTO[spec.family];
  const w = new NlWriter(1024);
  const op = (msg: number, flags: number) => {
    w.header({ type: (NFNL_SUBSYS_NFTABLES << 8) | msg, flags: NLM_F_REQUEST | flags, seq });
    genmsg(w, fam, 0);
  };
  w.header({ type: NFNL_MSG_BATCH_BEGIN, flags: NLM_F_REQUEST, seq });
  genmsg(w, 0, NFNL_SUBSYS_NFTABLES);
  op(NFT_MSG_NEWTABLE, NLM_F_CREATE);
  w.attr(NFTA_TABLE_NAME, str(spec.name));
  op(NFT_MSG_DELTABLE, 0);
  w.attr(NFTA_TABLE_NAME, str(spec.name));
  op(NFT_MSG_NEWTABLE, NLM_F_CREATE);
  w.attr(NFTA_TABLE_NAME, str(spec.name));
  op(NFT_MSG_NEWCHAIN, NLM_F_CREATE | (spec.rules.length ? 0 : NLM_F_ACK));
  w.attr(NFTA_CHAIN_TABLE, str(spec.name)).attr(NFTA_CHAIN_NAME, str(spec.chain.name));
  const hook = w.begin(NFTA_CHAIN_HOOK);
  w.be32(NFTA_HOOK_HOOKNUM, NF_INET_HOOK[spec.chain.hook]).be32(NFTA_HOOK_PRIORITY, spec.chain.priority >>> 0);
  w.end(hook);
  w.be32(NFTA_CHAIN_POLICY, NF_ACCEPT).attr(NFTA_CHAIN_TYPE, str('filter'));
  spec.rules.forEach((r, i) => {
    op(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND | (i === spec.rules.length - 1 ? NLM_F_ACK : 0));
    w.attr(NFTA_RULE_TABLE, str(spec.name)).attr(NFTA_RULE_CHAIN, str(spec.chain.name));
    const list = w.begin(NFTA_RULE_EXPRESSIONS);
    for (const e of r.exprs) expr(w, e);
    w.end(list);
    if (r.comment !== undefined) {
      const c = str(r.comment);
      if (c.length > 255) throw new RangeError('an nft comment is at most 254 bytes');
      w.attr(NFTA_RULE_USERDATA, Buffer.concat([Buffer.of(NFTNL_UDATA_RULE_COMMENT, c.length), c]));
    }
  });
  w.header({ type: NFNL_MSG_BATCH_END, flags: NLM_F_REQUEST, seq });
  genmsg(w, 0, NFNL_SUBSYS_NFTABLES);
  return w.finish();
}
