import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeTableReplace, ifnameBytes, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, type NftTableSpec } from './nft-batch.js';
import { NLA_F_NESTED, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST, splitMessages } from './nlmsg.js';

/** An attribute tree: type -> data, or the nest's children (repeated types kept in order). */
type Tree = Array<{ type: number; nested: boolean; data: Buffer; kids?: Tree }>;
function tree(buf: Buffer): Tree {
  const out: Tree = [];
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    const raw = buf.readUInt16LE(off + 2);
    assert.ok(len >= 4 && off + len <= buf.length, `attribute length ${len} at ${off}`);
    const data = buf.subarray(off + 4, off + len);
    const nested = (raw & NLA_F_NESTED) !== 0;
    out.push({ type: raw & 0x3fff, nested, data, ...(nested ? { kids: tree(data) } : {}) });
    off += (len + 3) & ~3;
  }
  return out;
}
const get = (t: Tree, type: number) => t.filter((a) => a.type === type);
const be32 = (a: { data: Buffer } | undefined) => a!.data.readUInt32BE(0);
const str = (a: { data: Buffer } | undefined) => a!.data.toString('utf8').replace(/\0+$/, '');

const spec: NftTableSpec = {
  family: 'ip6',
  name: 'fwlb_share6',
  chain: { name: 'output', hook: 'output', priority: 0 },
  rules: [
    {
      exprs: [
        { kind: 'meta', key: 'l4proto' },
        { kind: 'cmp', data: Buffer.of(58) },
        { kind: 'meta', key: 'oifname' },
        { kind: 'cmp', data: ifnameBytes('eth1') },
        { kind: 'payload', base: 'transport', offset: 24, len: 2 },
        { kind: 'cmp', data: Buffer.of(2, 1) },
        { kind: 'immediate', data: Buffer.from('01005e7ffb00', 'hex') },
        { kind: 'payload_set', base: 'transport', offset: 26, len: 6, csumOffset: 2 },
      ],
      comment: 'shared MAC',
    },
    { exprs: [{ kind: 'meta', key: 'l4proto' }, { kind: 'cmp', data: Buffer.of(58) }] },
  ],
};

test('a table replace is one batch: begin, create, delete, create, chain, rules, end; one sequence number; the ACK on the last message only', () => {
  const msgs = splitMessages(encodeTableReplace(77, spec));
  assert.ok(msgs.ok);
  const m = msgs.value;
  assert.deepEqual(m.map((x) => x.header.type), [NFNL_MSG_BATCH_BEGIN, 0xa00, 0xa02, 0xa00, 0xa03, 0xa06, 0xa06, NFNL_MSG_BATCH_END]);
  assert.ok(m.every((x) => x.header.seq === 77));
  assert.deepEqual(m.map((x) => x.header.flags & NLM_F_ACK), [0, 0, 0, 0, 0, 0, NLM_F_ACK, 0]);
  assert.ok(m.every((x) => x.header.flags & NLM_F_REQUEST));
  assert.equal(m[5]!.header.flags & (NLM_F_CREATE | NLM_F_APPEND), NLM_F_CREATE | NLM_F_APPEND);
  // nfgenmsg: the batch's carries the subsystem (big-endian res_id), the others the family (NFPROTO_IPV6).
  assert.deepEqual([...m[0]!.payload.subarray(0, 4)], [0, 0, 0, 10]);
  assert.deepEqual([...m[7]!.payload.subarray(0, 4)], [0, 0, 0, 10]);
  for (const x of m.slice(1, 7)) assert.deepEqual([...x.payload.subarray(0, 4)], [10, 0, 0, 0]);
  for (const i of [1, 2, 3]) assert.equal(str(get(tree(m[i]!.payload.subarray(4)), 1)[0]), 'fwlb_share6');
});

test('the chain: a filter base chain at the output hook, priority 0, policy accept', () => {
  const m = splitMessages(encodeTableReplace(1, spec));
  assert.ok(m.ok);
  const chain = tree(m.value[4]!.payload.subarray(4));
  assert.equal(str(get(chain, 1)[0]), 'fwlb_share6');
  assert.equal(str(get(chain, 3)[0]), 'output');
  assert.equal(str(get(chain, 7)[0]), 'filter');
  assert.equal(be32(get(chain, 5)[0]), 1, 'NF_ACCEPT');
  const hook = get(chain, 4)[0]!;
  assert.ok(hook.nested);
  assert.equal(be32(get(hook.kids!, 1)[0]), 3, 'NF_INET_LOCAL_OUT');
  assert.equal(be32(get(hook.kids!, 2)[0]), 0);
  // The nest's type carries NLA_F_NESTED on the wire.
  const raw = m.value[4]!.payload;
  let hookType = -1;
  for (let off = 4; off < raw.length; off += (raw.readUInt16LE(off) + 3) & ~3) {
    const t = raw.readUInt16LE(off + 2);
    if ((t & 0x3fff) === 4) hookType = t;
  }
  assert.equal(hookType, 4 | NLA_F_NESTED);
});

test('the rule: each expression named and its registers, payload write with the inet checksum at offset 2, the comment as nft user data', () => {
  const m = splitMessages(encodeTableReplace(1, spec));
  assert.ok(m.ok);
  const rule = tree(m.value[5]!.payload.subarray(4));
  assert.equal(str(get(rule, 2)[0]), 'output');
  const exprs = get(rule, 4)[0]!.kids!.map((e) => ({ name: str(get(e.kids!, 1)[0]), data: get(e.kids!, 2)[0]!.kids! }));
  assert.deepEqual(exprs.map((e) => e.name), ['meta', 'cmp', 'meta', 'cmp', 'payload', 'cmp', 'immediate', 'payload']);
  assert.equal(be32(get(exprs[0]!.data, 2)[0]), 16, 'NFT_META_L4PROTO');
  assert.equal(be32(get(exprs[0]!.data, 1)[0]), 1, 'into NFT_REG_1');
  assert.equal(be32(get(exprs[2]!.data, 2)[0]), 7, 'NFT_META_OIFNAME');
  const ifname = get(get(exprs[3]!.data, 3)[0]!.kids!, 1)[0]!.data;
  assert.deepEqual(ifname, Buffer.concat([Buffer.from('eth1'), Buffer.alloc(12)]), 'IFNAMSIZ bytes, NUL-padded');
  const load = exprs[4]!.data;
  assert.deepEqual([1, 2, 3, 4].map((t) => be32(get(load, t)[0])), [1, 2, 24, 2], 'dreg 1, transport header, offset 24, 2 bytes');
  const imm = get(get(exprs[6]!.data, 2)[0]!.kids!, 1)[0]!.data;
  assert.equal(imm.toString('hex'), '01005e7ffb00');
  const write = exprs[7]!.data;
  assert.equal(get(write, 1).length, 0, 'a write has no dreg');
  assert.deepEqual([5, 2, 3, 4, 6, 7].map((t) => be32(get(write, t)[0])), [1, 2, 26, 6, 1, 2], 'sreg 1, transport, offset 26, 6 bytes, NFT_PAYLOAD_CSUM_INET at offset 2');
  const ud = get(rule, 7)[0]!.data;
  assert.equal(ud[0], 0, 'NFTNL_UDATA_RULE_COMMENT');
  assert.equal(ud[1], 'shared MAC'.length + 1);
  assert.equal(ud.subarray(2, 2 + ud[1]!).toString(), 'shared MAC\0');
  // The second rule has no comment.
  assert.equal(get(tree(m.value[6]!.payload.subarray(4)), 7).length, 0);
});

test('refused before anything is sent: an interface name too long, a register value too long', () => {
  assert.throws(() => ifnameBytes('a-name-of-16-chr'), /1-15 bytes/);
  assert.throws(() => ifnameBytes(''), /1-15 bytes/);
  assert.throws(() => encodeTableReplace(1, { ...spec, rules: [{ exprs: [{ kind: 'cmp', data: Buffer.alloc(17) }] }] }), /1-16 bytes/);
});

test('a table with no rules: the chain message asks for the ACK', () => {
  const m = splitMessages(encodeTableReplace(5, { ...spec, rules: [] }));
  assert.ok(m.ok);
  assert.deepEqual(m.value.map((x) => x.header.flags & NLM_F_ACK), [0, 0, 0, 0, NLM_F_ACK, 0]);
});
