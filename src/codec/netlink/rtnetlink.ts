/**
 * rtnetlink (NETLINK_ROUTE) links and addresses: request encoders and decoders of replies
 * and events, for the VRRP service (virtual IPs, interface index/MAC/carrier, link events).
 *
 *   RTM_NEWLINK / RTM_DELLINK / RTM_GETLINK   struct ifinfomsg + IFLA_* (linux/if_link.h)
 *   RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR   struct ifaddrmsg + IFA_*  (linux/if_addr.h)
 *
 * Pure. Decoders keep the kernel's names in their tables and never throw on bytes.
 * Constants were checked by compiling a C program against linux-libc-dev 6.1 headers.
 */
import { AF_UNSPEC, afOf, familyOfAf, formatIp, formatMac, type IpFamily } from './address.js';
import {
  attr,
  type DecodeResult,
  encodeAttr,
  encodeAttrString,
  encodeAttrU32,
  encodeNlMsg,
  fail,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  nlaBinary,
  nlaString,
  nlaU32,
  nlaU8,
  type NlMessage,
  ok,
  parseAttrs,
} from './nlmsg.js';

// ---------------------------------------------------------------------------------------
// Message types (linux/rtnetlink.h)

export const RTM_NEWLINK = 16; // linux/rtnetlink.h: RTM_BASE
export const RTM_DELLINK = 17; // linux/rtnetlink.h
export const RTM_GETLINK = 18; // linux/rtnetlink.h
export const RTM_SETLINK = 19; // linux/rtnetlink.h
export const RTM_NEWADDR = 20; // linux/rtnetlink.h
export const RTM_DELADDR = 21; // linux/rtnetlink.h
export const RTM_GETADDR = 22; // linux/rtnetlink.h

// Multicast groups (enum rtnetlink_groups, linux/rtnetlink.h): numbers for
// setsockopt(NETLINK_ADD_MEMBERSHIP); the legacy bind() mask is 1 << (group - 1) (RTMGRP_*).
export const RTNLGRP_LINK = 1; // linux/rtnetlink.h (RTMGRP_LINK 1)
export const RTNLGRP_IPV4_IFADDR = 5; // linux/rtnetlink.h (RTMGRP_IPV4_IFADDR 0x10)
export const RTNLGRP_IPV6_IFADDR = 9; // linux/rtnetlink.h (RTMGRP_IPV6_IFADDR 0x100)

// struct ifinfomsg (linux/rtnetlink.h): family u8, pad u8, type u16, index s32, flags u32, change u32
export const IFINFOMSG_LEN = 16;
// struct ifaddrmsg (linux/if_addr.h): family u8, prefixlen u8, flags u8, scope u8, index u32
export const IFADDRMSG_LEN = 8;

// IFLA_* (linux/if_link.h, enum starting at IFLA_UNSPEC 0)
export const IFLA_ADDRESS = 1; // linux/if_link.h: link-layer address (MAC)
export const IFLA_BROADCAST = 2; // linux/if_link.h
export const IFLA_IFNAME = 3; // linux/if_link.h: NUL-terminated name
export const IFLA_MTU = 4; // linux/if_link.h: u32
export const IFLA_LINK = 5; // linux/if_link.h: u32 ifindex of the lower device
export const IFLA_MASTER = 10; // linux/if_link.h: u32 ifindex of the master (bridge, bond, vrf)
export const IFLA_TXQLEN = 13; // linux/if_link.h
export const IFLA_OPERSTATE = 16; // linux/if_link.h: u8, IF_OPER_* (RFC 2863)
export const IFLA_LINKMODE = 17; // linux/if_link.h: u8
export const IFLA_IFALIAS = 20; // linux/if_link.h
export const IFLA_EXT_MASK = 29; // linux/if_link.h: u32 RTEXT_FILTER_* in GETLINK requests
export const IFLA_CARRIER = 33; // linux/if_link.h: u8
export const IFLA_CARRIER_CHANGES = 35; // linux/if_link.h: u32
export const IFLA_PERM_ADDRESS = 54; // linux/if_link.h

// RTEXT_FILTER_* (linux/rtnetlink.h)
export const RTEXT_FILTER_SKIP_STATS = 1 << 3; // linux/rtnetlink.h

// IF_OPER_* (linux/if.h, RFC 2863 operational status)
export const IF_OPER_UNKNOWN = 0; // linux/if.h
export const IF_OPER_NOTPRESENT = 1; // linux/if.h
export const IF_OPER_DOWN = 2; // linux/if.h
export const IF_OPER_LOWERLAYERDOWN = 3; // linux/if.h
export const IF_OPER_TESTING = 4; // linux/if.h
export const IF_OPER_DORMANT = 5; // linux/if.h
export const IF_OPER_UP = 6; // linux/if.h

// net_device_flags (linux/if.h)
export const IFF_UP = 1 << 0; // linux/if.h: administratively up
export const IFF_BROADCAST = 1 << 1; // linux/if.h
export const IFF_LOOPBACK = 1 << 3; // linux/if.h
export const IFF_POINTOPOINT = 1 << 4; // linux/if.h
export const IFF_RUNNING = 1 << 6; // linux/if.h: RFC 2863 OPER_UP
export const IFF_NOARP = 1 << 7; // linux/if.h
export const IFF_PROMISC = 1 << 8; // linux/if.h
export const IFF_MULTICAST = 1 << 12; // linux/if.h
export const IFF_LOWER_UP = 1 << 16; // linux/if.h: driver signals L1 up (carrier)
export const IFF_DORMANT = 1 << 17; // linux/if.h

// IFA_* (linux/if_addr.h, enum starting at IFA_UNSPEC 0)
export const IFA_ADDRESS = 1; // linux/if_addr.h: prefix address (the peer on point-to-point)
export const IFA_LOCAL = 2; // linux/if_addr.h: local address
export const IFA_LABEL = 3; // linux/if_addr.h: IPv4 label ("eth0:vip")
export const IFA_BROADCAST = 4; // linux/if_addr.h
export const IFA_ANYCAST = 5; // linux/if_addr.h
export const IFA_CACHEINFO = 6; // linux/if_addr.h: struct ifa_cacheinfo
export const IFA_MULTICAST = 7; // linux/if_addr.h
export const IFA_FLAGS = 8; // linux/if_addr.h: u32, supersedes the u8 ifa_flags
export const IFA_RT_PRIORITY = 9; // linux/if_addr.h
export const IFA_PROTO = 11; // linux/if_addr.h: u8

// IFA_F_* (linux/if_addr.h)
export const IFA_F_SECONDARY = 0x01; // linux/if_addr.h (IFA_F_TEMPORARY for IPv6)
export const IFA_F_NODAD = 0x02; // linux/if_addr.h: no duplicate address detection (IPv6)
export const IFA_F_OPTIMISTIC = 0x04; // linux/if_addr.h
export const IFA_F_DADFAILED = 0x08; // linux/if_addr.h
export const IFA_F_HOMEADDRESS = 0x10; // linux/if_addr.h
export const IFA_F_DEPRECATED = 0x20; // linux/if_addr.h
export const IFA_F_TENTATIVE = 0x40; // linux/if_addr.h
export const IFA_F_PERMANENT = 0x80; // linux/if_addr.h
export const IFA_F_MANAGETEMPADDR = 0x100; // linux/if_addr.h
export const IFA_F_NOPREFIXROUTE = 0x200; // linux/if_addr.h
export const IFA_F_MCAUTOJOIN = 0x400; // linux/if_addr.h
export const IFA_F_STABLE_PRIVACY = 0x800; // linux/if_addr.h

// enum rt_scope_t (linux/rtnetlink.h)
export const RT_SCOPE_UNIVERSE = 0; // linux/rtnetlink.h
export const RT_SCOPE_SITE = 200; // linux/rtnetlink.h
export const RT_SCOPE_LINK = 253; // linux/rtnetlink.h
export const RT_SCOPE_HOST = 254; // linux/rtnetlink.h
export const RT_SCOPE_NOWHERE = 255; // linux/rtnetlink.h

// ---------------------------------------------------------------------------------------
// Values

/** RFC 2863 operational status (IFLA_OPERSTATE), by the kernel's IF_OPER_* names. */
export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';
const OPER_STATES: readonly OperState[] = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];

/** A link from RTM_NEWLINK (dump reply or event) or RTM_DELLINK (deleted: true). */
export interface Link {
  kind: 'link';
  /** RTM_DELLINK: the link is gone (or has left this namespace). */
  deleted: boolean;
  /** ifi_index. */
  index: number;
  /** IFLA_IFNAME. */
  name: string;
  /** IFLA_ADDRESS as "aa:bb:cc:dd:ee:ff"; undefined for links without one (tun, ipip ...). */
  mac: string | undefined;
  /** ifi_type, ARPHRD_* (1 = Ethernet, 772 = loopback). */
  type: number;
  /** ifi_flags, IFF_*. */
  flags: number;
  /** ifi_change: in events, the IFF_* bits that changed (0xffffffff for a new link). */
  change: number;
  /** IFF_UP: administratively up. */
  up: boolean;
  /** IFF_RUNNING: operationally up (RFC 2863 OPER_UP). */
  running: boolean;
  /** IFF_LOWER_UP: the driver has carrier. */
  lowerUp: boolean;
  /** IFLA_CARRIER, when the kernel sent it. */
  carrier?: boolean;
  /** IFLA_CARRIER_CHANGES: carrier transitions since the link was created. */
  carrierChanges?: number;
  /** IFLA_OPERSTATE; 'unknown' when absent. */
  operstate: OperState;
  /** IFLA_MTU. */
  mtu?: number;
  /** IFLA_MASTER: ifindex of the bridge/bond/vrf above it. */
  master?: number;
}

/** An address from RTM_NEWADDR (dump reply or event) or RTM_DELADDR (deleted: true). */
export interface Addr {
  kind: 'addr';
  deleted: boolean;
  family: IpFamily;
  /** ifa_index. */
  index: number;
  /** ifa_prefixlen. */
  prefixLen: number;
  /** IFA_ADDRESS (the peer on point-to-point links), or IFA_LOCAL when absent. */
  address: string;
  /** IFA_LOCAL (IPv4), or IFA_ADDRESS when absent (IPv6 sends only IFA_ADDRESS). */
  local: string;
  /** IFA_LABEL (IPv4 only). */
  label?: string;
  /** IFA_BROADCAST (IPv4 only). */
  broadcast?: string;
  /** IFA_FLAGS when present (32 bits), else ifa_flags: IFA_F_*. */
  flags: number;
  /** ifa_scope: RT_SCOPE_*. */
  scope: number;
}

export type RtMessage = Link | Addr;

// ---------------------------------------------------------------------------------------
// Decoders

const LINK_TABLE = {
  [IFLA_ADDRESS]: attr('IFLA_ADDRESS', nlaBinary),
  [IFLA_IFNAME]: attr('IFLA_IFNAME', nlaString),
  [IFLA_MTU]: attr('IFLA_MTU', nlaU32),
  [IFLA_MASTER]: attr('IFLA_MASTER', nlaU32),
  [IFLA_OPERSTATE]: attr('IFLA_OPERSTATE', nlaU8),
  [IFLA_CARRIER]: attr('IFLA_CARRIER', nlaU8),
  [IFLA_CARRIER_CHANGES]: attr('IFLA_CARRIER_CHANGES', nlaU32),
} as const;

/**
 * RTM_NEWLINK / RTM_DELLINK -> Link. Only ifi_family AF_UNSPEC describes a link itself;
 * AF_BRIDGE messages (bridge port state, sent to the same group) come back as bad_family,
 * which a caller should ignore rather than count as damage.
 */
export function decodeLink(msg: NlMessage): DecodeResult<Link> {
  const t = msg.header.type;
  if (t !== RTM_NEWLINK && t !== RTM_DELLINK) return fail('unexpected_type', `type ${t}`);
  const p = msg.payload;
  if (p.length < IFINFOMSG_LEN) return fail('short_payload', `ifinfomsg needs ${IFINFOMSG_LEN} bytes, got ${p.length}`);
  const family = p.readUInt8(0);
  if (family !== AF_UNSPEC) return fail('bad_family', `ifi_family ${family}`);
  const a = parseAttrs(p.subarray(IFINFOMSG_LEN), LINK_TABLE);
  if (!a.ok) return a;
  const v = a.value;
  if (v.IFLA_IFNAME === undefined) return fail('missing_attribute', 'IFLA_IFNAME');
  const flags = p.readUInt32LE(8);
  const link: Link = {
    kind: 'link',
    deleted: t === RTM_DELLINK,
    index: p.readInt32LE(4),
    name: v.IFLA_IFNAME,
    mac: v.IFLA_ADDRESS ? formatMac(v.IFLA_ADDRESS) : undefined,
    type: p.readUInt16LE(2),
    flags,
    change: p.readUInt32LE(12),
    up: (flags & IFF_UP) !== 0,
    running: (flags & IFF_RUNNING) !== 0,
    lowerUp: (flags & IFF_LOWER_UP) !== 0,
    operstate: OPER_STATES[v.IFLA_OPERSTATE ?? IF_OPER_UNKNOWN] ?? 'unknown',
  };
  if (v.IFLA_CARRIER !== undefined) link.carrier = v.IFLA_CARRIER !== 0;
  if (v.IFLA_CARRIER_CHANGES !== undefined) link.carrierChanges = v.IFLA_CARRIER_CHANGES;
  if (v.IFLA_MTU !== undefined) link.mtu = v.IFLA_MTU;
  if (v.IFLA_MASTER !== undefined) link.master = v.IFLA_MASTER;
  return ok(link);
}

const ipOf = (len: number) => (d: Buffer) => (d.length === len ? Buffer.from(d) : undefined);
function addrTable(len: number) {
  return {
    [IFA_ADDRESS]: attr('IFA_ADDRESS', ipOf(len)),
    [IFA_LOCAL]: attr('IFA_LOCAL', ipOf(len)),
    [IFA_LABEL]: attr('IFA_LABEL', nlaString),
    [IFA_BROADCAST]: attr('IFA_BROADCAST', ipOf(len)),
    [IFA_FLAGS]: attr('IFA_FLAGS', nlaU32),
  } as const;
}
const ADDR_TABLE_V4 = addrTable(4);
const ADDR_TABLE_V6 = addrTable(16);

/** RTM_NEWADDR / RTM_DELADDR -> Addr (AF_INET and AF_INET6 only). */
export function decodeAddr(msg: NlMessage): DecodeResult<Addr> {
  const t = msg.header.type;
  if (t !== RTM_NEWADDR && t !== RTM_DELADDR) return fail('unexpected_type', `type ${t}`);
  const p = msg.payload;
  if (p.length < IFADDRMSG_LEN) return fail('short_payload', `ifaddrmsg needs ${IFADDRMSG_LEN} bytes, got ${p.length}`);
  const family = familyOfAf(p.readUInt8(0));
  if (family === undefined) return fail('bad_family', `ifa_family ${p.readUInt8(0)}`);
  const prefixLen = p.readUInt8(1);
  if (prefixLen > (family === 4 ? 32 : 128)) return fail('bad_header_field', `ifa_prefixlen ${prefixLen}`);
  const a = parseAttrs(p.subarray(IFADDRMSG_LEN), family === 4 ? ADDR_TABLE_V4 : ADDR_TABLE_V6);
  if (!a.ok) return a;
  const v = a.value;
  const addressBytes = v.IFA_ADDRESS ?? v.IFA_LOCAL;
  const localBytes = v.IFA_LOCAL ?? v.IFA_ADDRESS;
  if (!addressBytes || !localBytes) return fail('missing_attribute', 'IFA_ADDRESS and IFA_LOCAL');
  // Lengths were checked by the table, so formatting cannot fail; keep the check for the types.
  const address = formatIp(family, addressBytes);
  const local = formatIp(family, localBytes);
  if (address === undefined || local === undefined) return fail('bad_attribute_value', 'IFA_ADDRESS');
  const out: Addr = {
    kind: 'addr',
    deleted: t === RTM_DELADDR,
    family,
    index: p.readUInt32LE(4),
    prefixLen,
    address,
    local,
    flags: v.IFA_FLAGS ?? p.readUInt8(2),
    scope: p.readUInt8(3),
  };
  if (v.IFA_LABEL !== undefined) out.label = v.IFA_LABEL;
  if (v.IFA_BROADCAST) out.broadcast = formatIp(family, v.IFA_BROADCAST) ?? '';
  return ok(out);
}

/** Any link or address message -> its value; other types are unexpected_type. */
export function decodeRtMessage(msg: NlMessage): DecodeResult<RtMessage> {
  switch (msg.header.type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
      return decodeLink(msg);
    case RTM_NEWADDR:
    case RTM_DELADDR:
      return decodeAddr(msg);
    default:
      return fail('unexpected_type', `type ${msg.header.type}`);
  }
}

// ---------------------------------------------------------------------------------------
// Encoders

function ifinfomsg(f: { family?: number; type?: number; index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(f.family ?? AF_UNSPEC, 0);
  b.writeUInt16LE(f.type ?? 0, 2);
  b.writeInt32LE(f.index ?? 0, 4);
  b.writeUInt32LE((f.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((f.change ?? 0) >>> 0, 12);
  return b;
}

function ifaddrmsg(f: { family: number; prefixLen?: number; flags?: number; scope?: number; index?: number }): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(f.family, 0);
  b.writeUInt8(f.prefixLen ?? 0, 1);
  b.writeUInt8((f.flags ?? 0) & 0xff, 2);
  b.writeUInt8(f.scope ?? 0, 3);
  b.writeUInt32LE((f.index ?? 0) >>> 0, 4);
  return b;
}

/** Dump every link: RTM_GETLINK, NLM_F_REQUEST|NLM_F_DUMP (IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS: no per-VF statistics). */
export function encodeGetLinks(seq: number): Buffer {
  return encodeNlMsg(
    { type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP, seq },
    ifinfomsg(),
    encodeAttrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS),
  );
}

/** One link by index or by name: RTM_GETLINK, NLM_F_REQUEST|NLM_F_ACK; ENODEV when there is none. */
export function encodeGetLink(seq: number, sel: { index: number } | { name: string }): Buffer {
  const attrs = [encodeAttrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)];
  if ('name' in sel) attrs.unshift(encodeAttrString(IFLA_IFNAME, sel.name));
  return encodeNlMsg(
    { type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq },
    ifinfomsg({ index: 'index' in sel ? sel.index : 0 }),
    ...attrs,
  );
}

/** Sets a link administratively up or down: RTM_NEWLINK with ifi_change = IFF_UP. */
export function encodeSetLinkUp(seq: number, index: number, up: boolean): Buffer {
  return encodeNlMsg(
    { type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq },
    ifinfomsg({ index, flags: up ? IFF_UP : 0, change: IFF_UP }),
  );
}

/** Dump addresses, of one family or (undefined) both: RTM_GETADDR, NLM_F_REQUEST|NLM_F_DUMP. */
export function encodeGetAddrs(seq: number, family?: IpFamily): Buffer {
  return encodeNlMsg(
    { type: RTM_GETADDR, flags: NLM_F_REQUEST | NLM_F_DUMP, seq },
    ifaddrmsg({ family: family === undefined ? AF_UNSPEC : afOf(family) }),
  );
}

/** An address to add or delete. */
export interface AddrSpec {
  family: IpFamily;
  index: number;
  prefixLen: number;
  /** The address itself (IFA_LOCAL), 4 or 16 bytes. */
  local: Uint8Array;
  /** IFA_ADDRESS: the peer on point-to-point links; defaults to `local`, as `ip addr add` does. */
  address?: Uint8Array;
  /** IFA_LABEL (IPv4 only; must start with the interface name). */
  label?: string;
  /** IFA_F_* (IFA_F_NODAD for IPv6 VIPs, ...); sent in ifa_flags and, above 8 bits, IFA_FLAGS. */
  flags?: number;
  /** ifa_scope, RT_SCOPE_* (default universe). */
  scope?: number;
  /** IFA_BROADCAST (IPv4 only). */
  broadcast?: Uint8Array;
}

function checkAddr(a: AddrSpec): void {
  const n = a.family === 4 ? 4 : 16;
  if (a.local.length !== n || (a.address && a.address.length !== n) || (a.broadcast && a.broadcast.length !== n)) {
    throw new RangeError(`IPv${a.family} address must be ${n} bytes`);
  }
  if (!Number.isInteger(a.prefixLen) || a.prefixLen < 0 || a.prefixLen > n * 8) throw new RangeError(`bad prefix length ${a.prefixLen}`);
}

function addrBody(a: AddrSpec): Buffer[] {
  checkAddr(a);
  const parts = [
    ifaddrmsg({ family: afOf(a.family), prefixLen: a.prefixLen, flags: a.flags ?? 0, scope: a.scope ?? RT_SCOPE_UNIVERSE, index: a.index }),
    encodeAttr(IFA_LOCAL, a.local),
    encodeAttr(IFA_ADDRESS, a.address ?? a.local),
  ];
  if (a.label !== undefined) parts.push(encodeAttrString(IFA_LABEL, a.label));
  if (a.broadcast) parts.push(encodeAttr(IFA_BROADCAST, a.broadcast));
  if ((a.flags ?? 0) > 0xff) parts.push(encodeAttrU32(IFA_FLAGS, a.flags ?? 0));
  return parts;
}

/**
 * Adds an address: RTM_NEWADDR with NLM_F_REQUEST|NLM_F_ACK|NLM_F_CREATE|NLM_F_EXCL, so the
 * kernel answers EEXIST when it is already there; `replace` uses NLM_F_REPLACE instead.
 */
export function encodeNewAddr(seq: number, a: AddrSpec, mode: 'create' | 'replace' = 'create'): Buffer {
  const flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (mode === 'create' ? NLM_F_EXCL : NLM_F_REPLACE);
  return encodeNlMsg({ type: RTM_NEWADDR, flags, seq }, ...addrBody(a));
}

/** Deletes an address: RTM_DELADDR, NLM_F_REQUEST|NLM_F_ACK; EADDRNOTAVAIL when it is not there. */
export function encodeDelAddr(seq: number, a: AddrSpec): Buffer {
  return encodeNlMsg({ type: RTM_DELADDR, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, ...addrBody(a));
}
