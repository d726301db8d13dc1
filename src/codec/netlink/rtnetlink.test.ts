import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIp, parseCidr } from './address.js';
import * as F from './fixtures.js';
import {
  decodeNlMsgHdr,
  encodeAttr,
  encodeAttrString,
  encodeAttrU32,
  encodeAttrU8,
  encodeNlMsg,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  type NlMessage,
  splitMessages,
} from './nlmsg.js';
import {
  type Addr,
  type AddrSpec,
  decodeAddr,
  decodeLink,
  decodeRtMessage,
  encodeDelAddr,
  encodeGetAddrs,
  encodeGetLink,
  encodeGetLinks,
  encodeNewAddr,
  encodeSetLinkUp,
  IFA_F_NODAD,
  IFA_F_PERMANENT,
  IFA_F_TENTATIVE,
  IFF_LOWER_UP,
  IFF_RUNNING,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_CARRIER,
  IFLA_IFNAME,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_OPERSTATE,
  type Link,
  type OperState,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
} from './rtnetlink.js';

const hex = (s: string) => Buffer.from(s, 'hex');
function messages(h: string | Buffer): NlMessage[] {
  const s = splitMessages(typeof h === 'string' ? hex(h) : h);
  assert.ok(s.ok);
  return s.value;
}
function one<T>(r: { ok: true; value: T } | { ok: false; reason: string }): T {
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.value;
}

// ---------------------------------------------------------------------------------------
// Fixture builder: a link message as the kernel would send it

const OPER = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;

interface LinkFixture {
  type?: number;
  index: number;
  flags: number;
  name?: string;
  mac?: number[];
  operstate?: number;
  carrier?: number;
  mtu?: number;
  master?: number;
  family?: number;
  extra?: Buffer[];
}

function linkMsg(f: LinkFixture, msgType = RTM_NEWLINK): Buffer {
  const ifi = Buffer.alloc(16);
  ifi.writeUInt8(f.family ?? 0, 0);
  ifi.writeUInt16LE(1, 2);
  ifi.writeInt32LE(f.index, 4);
  ifi.writeUInt32LE(f.flags >>> 0, 8);
  const attrs: Buffer[] = [...(f.extra ?? [])];
  if (f.name !== undefined) attrs.push(encodeAttrString(IFLA_IFNAME, f.name));
  if (f.mac) attrs.push(encodeAttr(IFLA_ADDRESS, Buffer.from(f.mac)));
  if (f.operstate !== undefined) attrs.push(encodeAttrU8(IFLA_OPERSTATE, f.operstate));
  if (f.carrier !== undefined) attrs.push(encodeAttrU8(IFLA_CARRIER, f.carrier));
  if (f.mtu !== undefined) attrs.push(encodeAttrU32(IFLA_MTU, f.mtu));
  if (f.master !== undefined) attrs.push(encodeAttrU32(IFLA_MASTER, f.master));
  return encodeNlMsg({ type: msgType, flags: 0, seq: 0 }, ifi, ...attrs);
}

// ---------------------------------------------------------------------------------------
// Real kernel bytes

test('link reply from the kernel: lo', () => {
  const [m] = messages(F.GETLINK_LO_REPLY);
  const l = one(decodeLink(m as NlMessage));
  assert.deepEqual(l, {
    kind: 'link',
    deleted: false,
    index: 1,
    name: 'lo',
    mac: '00:00:00:00:00:00',
    type: 772, // ARPHRD_LOOPBACK
    flags: l.flags,
    change: 0,
    up: true,
    running: true,
    lowerUp: true,
    operstate: 'unknown',
    carrier: true,
    carrierChanges: 0,
    mtu: 65536,
  });
  assert.equal(l.flags & (IFF_UP | IFF_RUNNING | IFF_LOWER_UP), IFF_UP | IFF_RUNNING | IFF_LOWER_UP);
});

test('link events from the kernel: a veth set down, and its peer losing carrier', () => {
  const down = one(decodeLink(messages(F.EVENT_NEWLINK_VB_DOWN)[0] as NlMessage));
  assert.equal(down.name, 'vb');
  assert.equal(down.index, 4);
  assert.equal(down.up, false);
  assert.equal(down.lowerUp, false);
  assert.equal(down.operstate, 'down');
  assert.equal(down.change & IFF_UP, IFF_UP); // ifi_change says IFF_UP moved
  const peer = one(decodeLink(messages(F.EVENT_NEWLINK_VA_NO_CARRIER)[0] as NlMessage));
  const { name, index, mac, up, running, lowerUp, carrier, operstate, mtu, deleted } = peer;
  assert.deepEqual(
    { name, index, mac, up, running, lowerUp, carrier, operstate, mtu, deleted },
    { name: 'va', index: 5, mac: '02:00:00:00:00:0a', up: true, running: false, lowerUp: false, carrier: false, operstate: 'lowerlayerdown', mtu: 1500, deleted: false },
  );
  // Kernel notifications come from nobody in particular.
  assert.equal(messages(F.EVENT_NEWLINK_VA_NO_CARRIER)[0]?.header.pid, 0);
});

test('address dump from the kernel: IPv4 and IPv6, scopes, labels, flags', () => {
  const addrs = messages(F.ADDR_DUMP).map((m) => one(decodeAddr(m)));
  const brief = addrs.map((a) => `${a.index} ${a.local}/${a.prefixLen} s${a.scope}${a.label ? ` ${a.label}` : ''}`);
  assert.deepEqual(brief, [
    '1 127.0.0.1/8 s254 lo',
    '5 198.18.0.1/24 s0 va',
    '1 ::1/128 s254',
    '4 fe80::e444:2ff:fe2f:7de8/64 s253',
    '5 2001:db8::1/64 s0',
    '5 fe80::ff:fe00:a/64 s253',
  ]);
  const [lo4, va4, , ll] = addrs as [Addr, Addr, Addr, Addr];
  assert.equal(lo4.scope, RT_SCOPE_HOST);
  assert.equal(ll.scope, RT_SCOPE_LINK);
  assert.equal(va4.family, 4);
  assert.equal(va4.address, va4.local);
  assert.equal(va4.flags, IFA_F_PERMANENT);
  const v6 = addrs[4] as Addr;
  assert.equal(v6.family, 6);
  assert.equal(v6.flags, IFA_F_PERMANENT | IFA_F_NODAD); // added with `nodad`, IFA_FLAGS carries it
  assert.ok(addrs.every((a) => !a.deleted));
});

test('address events from the kernel: our add and delete (carrying our port id), a link-local going away', () => {
  const [addMsg] = messages(F.EVENT_NEWADDR_V4) as [NlMessage];
  const add = one(decodeAddr(addMsg));
  assert.deepEqual(add, {
    kind: 'addr',
    deleted: false,
    family: 4,
    index: 3,
    prefixLen: 24,
    address: '198.18.5.7',
    local: '198.18.5.7',
    flags: IFA_F_PERMANENT,
    scope: 0,
    label: 'vc:vip',
  });
  const [delMsg] = messages(F.EVENT_DELADDR_V4) as [NlMessage];
  assert.deepEqual(one(decodeAddr(delMsg)), { ...add, deleted: true });
  // The request socket's port id and sequence number: what tells our writes from others'.
  const ack = messages(F.NEWADDR_ACK)[0] as NlMessage;
  assert.equal(addMsg.header.pid, ack.header.pid);
  assert.equal(addMsg.header.seq, ack.header.seq);
  const ll = one(decodeAddr(messages(F.EVENT_DELADDR_V6_LL)[0] as NlMessage));
  assert.equal(ll.deleted, true);
  assert.equal(ll.family, 6);
  assert.equal(ll.local, 'fe80::e444:2ff:fe2f:7de8');
});

test('decodeRtMessage dispatches on type and refuses the rest', () => {
  assert.equal(one(decodeRtMessage(messages(F.GETLINK_LO_REPLY)[0] as NlMessage)).kind, 'link');
  assert.equal(one(decodeRtMessage(messages(F.EVENT_NEWADDR_V4)[0] as NlMessage)).kind, 'addr');
  const r = decodeRtMessage(messages(F.NEWADDR_ACK)[0] as NlMessage);
  assert.equal(r.ok, false);
  assert.equal((r as { reason: string }).reason, 'unexpected_type');
  assert.equal((decodeLink(messages(F.EVENT_NEWADDR_V4)[0] as NlMessage) as { reason: string }).reason, 'unexpected_type');
  assert.equal((decodeAddr(messages(F.GETLINK_LO_REPLY)[0] as NlMessage) as { reason: string }).reason, 'unexpected_type');
});

// ---------------------------------------------------------------------------------------
// Link decoding from built messages

test('link: DELLINK is deleted, flags read, no MAC stays undefined, unknown operstate is unknown', () => {
  const l = one(decodeLink(messages(linkMsg({ index: 7, flags: IFF_UP | IFF_LOWER_UP, name: 'tun0', operstate: 99 }, RTM_DELLINK))[0] as NlMessage));
  assert.equal(l.deleted, true);
  assert.equal(l.mac, undefined);
  assert.equal(l.up, true);
  assert.equal(l.running, false);
  assert.equal(l.lowerUp, true);
  assert.equal(l.operstate, 'unknown');
  assert.equal(l.carrier, undefined);
  assert.equal(l.mtu, undefined);
});

test('link: refusals', () => {
  const noName = linkMsg({ index: 1, flags: 0 });
  assert.deepEqual(decodeLink(messages(noName)[0] as NlMessage), { ok: false, reason: 'missing_attribute', detail: 'IFLA_IFNAME' });
  const bridge = linkMsg({ index: 1, flags: 0, name: 'br0', family: 7 }); // AF_BRIDGE port info
  assert.equal((decodeLink(messages(bridge)[0] as NlMessage) as { reason: string }).reason, 'bad_family');
  const badMtu = linkMsg({ index: 1, flags: 0, name: 'x', extra: [encodeAttr(IFLA_MTU, Buffer.of(1, 2))] });
  assert.equal((decodeLink(messages(badMtu)[0] as NlMessage) as { reason: string }).reason, 'bad_attribute_value');
  const short = encodeNlMsg({ type: RTM_NEWLINK, flags: 0, seq: 0 }, Buffer.alloc(12));
  assert.equal((decodeLink(messages(short)[0] as NlMessage) as { reason: string }).reason, 'short_payload');
});

test('property: any link the kernel could describe decodes to what was built', () => {
  const arb = fc.record({
    index: fc.integer({ min: 1, max: 0x7fffffff }),
    flags: fc.integer({ min: 0, max: 0xffffffff }),
    name: fc.stringMatching(/^[a-z][a-z0-9.:_-]{0,14}$/),
    mac: fc.option(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })),
    operstate: fc.integer({ min: 0, max: 6 }),
    carrier: fc.option(fc.integer({ min: 0, max: 1 })),
    mtu: fc.option(fc.integer({ min: 68, max: 65536 })),
    master: fc.option(fc.integer({ min: 1, max: 1000 })),
    deleted: fc.boolean(),
  });
  fc.assert(
    fc.property(arb, (f) => {
      const fx: LinkFixture = { index: f.index, flags: f.flags, name: f.name, operstate: f.operstate };
      if (f.mac) fx.mac = f.mac;
      if (f.carrier !== null) fx.carrier = f.carrier;
      if (f.mtu !== null) fx.mtu = f.mtu;
      if (f.master !== null) fx.master = f.master;
      const l: Link = one(decodeLink(messages(linkMsg(fx, f.deleted ? RTM_DELLINK : RTM_NEWLINK))[0] as NlMessage));
      assert.equal(l.index, f.index);
      assert.equal(l.name, f.name);
      assert.equal(l.flags, f.flags);
      assert.equal(l.deleted, f.deleted);
      assert.equal(l.up, (f.flags & IFF_UP) !== 0);
      assert.equal(l.running, (f.flags & IFF_RUNNING) !== 0);
      assert.equal(l.lowerUp, (f.flags & IFF_LOWER_UP) !== 0);
      assert.equal(l.operstate, OPER[f.operstate] as OperState);
      assert.equal(l.mac, f.mac ? f.mac.map((x) => x.toString(16).padStart(2, '0')).join(':') : undefined);
      assert.equal(l.carrier, f.carrier === null ? undefined : f.carrier === 1);
      assert.equal(l.mtu, f.mtu ?? undefined);
      assert.equal(l.master, f.master ?? undefined);
    }),
    { numRuns: 500 },
  );
});

// ---------------------------------------------------------------------------------------
// Encoders

function spec(cidr: string, index: number, extra: Partial<AddrSpec> = {}): AddrSpec {
  const c = parseCidr(cidr);
  assert.ok(c);
  return { family: c.family, index, prefixLen: c.prefixLen, local: c.bytes, ...extra };
}

test('encodeNewAddr: NLM_F_REQUEST|ACK|CREATE|EXCL, ifaddrmsg, IFA_LOCAL = IFA_ADDRESS', () => {
  const b = encodeNewAddr(42, spec('198.18.1.10/24', 3, { label: 'eth1:vip' }));
  const h = one(decodeNlMsgHdr(b));
  assert.deepEqual(h, { len: b.length, type: RTM_NEWADDR, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq: 42, pid: 0 });
  assert.equal(h.flags, 0x605);
  // ifaddrmsg: AF_INET, /24, flags 0, scope 0, index 3
  assert.deepEqual([...b.subarray(16, 24)], [2, 24, 0, 0, 3, 0, 0, 0]);
  // IFA_LOCAL (2) then IFA_ADDRESS (1), 198.18.1.10 each
  assert.deepEqual([...b.subarray(24, 32)], [8, 0, 2, 0, 198, 18, 1, 10]);
  assert.deepEqual([...b.subarray(32, 40)], [8, 0, 1, 0, 198, 18, 1, 10]);
  const replace = one(decodeNlMsgHdr(encodeNewAddr(1, spec('198.18.1.10/24', 3), 'replace')));
  assert.equal(replace.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
});

test('encodeDelAddr and the dump / get / set requests', () => {
  const del = encodeDelAddr(7, spec('2001:db8::5/64', 9));
  assert.deepEqual(one(decodeNlMsgHdr(del)), { len: del.length, type: RTM_DELADDR, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 7, pid: 0 });
  assert.deepEqual([...del.subarray(16, 24)], [10, 64, 0, 0, 9, 0, 0, 0]);

  const links = encodeGetLinks(1);
  assert.deepEqual(one(decodeNlMsgHdr(links)), { len: links.length, type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP, seq: 1, pid: 0 });
  assert.equal(links.length, 16 + 16 + 8); // ifinfomsg + IFLA_EXT_MASK

  const addrs4 = encodeGetAddrs(2, 4);
  assert.deepEqual(one(decodeNlMsgHdr(addrs4)), { len: 24, type: RTM_GETADDR, flags: 0x301, seq: 2, pid: 0 });
  assert.equal(addrs4[16], 2);
  assert.equal(encodeGetAddrs(2)[16], 0);
  assert.equal(encodeGetAddrs(2, 6)[16], 10);

  const byName = encodeGetLink(3, { name: 'veth0' });
  assert.equal(one(decodeNlMsgHdr(byName)).flags, NLM_F_REQUEST | NLM_F_ACK);
  assert.deepEqual([...byName.subarray(32, 42)], [10, 0, IFLA_IFNAME, 0, ...Buffer.from('veth0'), 0]);
  const byIndex = encodeGetLink(3, { index: 12 });
  assert.equal(byIndex.readInt32LE(20), 12);

  const down = encodeSetLinkUp(4, 5, false);
  assert.equal(one(decodeNlMsgHdr(down)).type, RTM_NEWLINK);
  assert.deepEqual([down.readInt32LE(20), down.readUInt32LE(24), down.readUInt32LE(28)], [5, 0, IFF_UP]);
  assert.deepEqual([encodeSetLinkUp(4, 5, true).readUInt32LE(24)], [IFF_UP]);
});

test('encoders refuse addresses of the wrong size and bad prefix lengths', () => {
  assert.throws(() => encodeNewAddr(1, { family: 4, index: 1, prefixLen: 24, local: Buffer.alloc(16) }), RangeError);
  assert.throws(() => encodeNewAddr(1, { family: 6, index: 1, prefixLen: 129, local: Buffer.alloc(16) }), RangeError);
  assert.throws(() => encodeDelAddr(1, { family: 4, index: 1, prefixLen: 8, local: Buffer.alloc(4), broadcast: Buffer.alloc(3) }), RangeError);
});

test('property: encode -> decode round trip of addresses (a request has the layout of the event)', () => {
  const v4 = fc.record({
    family: fc.constant(4 as const),
    bytes: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    prefixLen: fc.integer({ min: 0, max: 32 }),
    label: fc.option(fc.stringMatching(/^[a-z][a-z0-9]{0,5}:[a-z0-9]{1,8}$/)),
    broadcast: fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 })),
  });
  const v6 = fc.record({
    family: fc.constant(6 as const),
    bytes: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    prefixLen: fc.integer({ min: 0, max: 128 }),
    label: fc.constant(null),
    broadcast: fc.constant(null),
  });
  const arb = fc.record({
    a: fc.oneof(v4, v6),
    index: fc.integer({ min: 1, max: 0x7fffffff }),
    flags: fc.constantFrom(0, IFA_F_NODAD, IFA_F_PERMANENT | IFA_F_TENTATIVE, 0x800 | IFA_F_NODAD),
    scope: fc.constantFrom(0, 200, 253, 254),
    del: fc.boolean(),
  });
  fc.assert(
    fc.property(arb, ({ a, index, flags, scope, del }) => {
      const s: AddrSpec = { family: a.family, index, prefixLen: a.prefixLen, local: a.bytes, flags, scope };
      if (a.label !== null) s.label = a.label;
      if (a.broadcast !== null) s.broadcast = a.broadcast;
      const wire = del ? encodeDelAddr(9, s) : encodeNewAddr(9, s);
      const got = one(decodeAddr(messages(wire)[0] as NlMessage));
      const text = formatIp(a.family, a.bytes);
      const want: Addr = { kind: 'addr', deleted: del, family: a.family, index, prefixLen: a.prefixLen, address: text as string, local: text as string, flags, scope };
      if (a.label !== null) want.label = a.label;
      if (a.broadcast !== null) want.broadcast = formatIp(4, a.broadcast) as string;
      assert.deepEqual(got, want);
    }),
    { numRuns: 1000 },
  );
});

test('address: refusals', () => {
  const base = encodeNewAddr(1, spec('198.18.0.1/24', 1));
  const fam = Buffer.from(base);
  fam[16] = 7;
  assert.equal((decodeAddr(messages(fam)[0] as NlMessage) as { reason: string }).reason, 'bad_family');
  const plen = Buffer.from(base);
  plen[17] = 33;
  assert.equal((decodeAddr(messages(plen)[0] as NlMessage) as { reason: string }).reason, 'bad_header_field');
  // An IPv6 header with IPv4-sized addresses.
  const mixed = Buffer.from(base);
  mixed[16] = 10;
  assert.equal((decodeAddr(messages(mixed)[0] as NlMessage) as { reason: string }).reason, 'bad_attribute_value');
  const none = encodeNlMsg({ type: RTM_NEWADDR, flags: 0, seq: 0 }, Buffer.of(2, 24, 0, 0, 1, 0, 0, 0));
  assert.deepEqual(decodeAddr(messages(none)[0] as NlMessage), { ok: false, reason: 'missing_attribute', detail: 'IFA_ADDRESS and IFA_LOCAL' });
  const short = encodeNlMsg({ type: RTM_NEWADDR, flags: 0, seq: 0 }, Buffer.of(2, 24, 0, 0));
  assert.equal((decodeAddr(messages(short)[0] as NlMessage) as { reason: string }).reason, 'short_payload');
});
