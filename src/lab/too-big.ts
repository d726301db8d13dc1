/**
 * The lab's packet-too-big sender (issue 22: "packet-too-big passes"): what a router on the
 * path sends when a packet does not fit its next link (RFC 4443 3.2), here from a lab host
 * in its namespace, about a packet of a flow the firewall tracks, so that the firewall must
 * carry it to the flow's source whatever its policy:
 *
 *   ip netns exec P-web1 node dist/src/lab/too-big.js --to 2001:2::10 --src 2001:2::10 --dst 2001:2:1::11 --sport 40000 --dport 7 [--mtu 1280] [--udp]
 *
 * The message quotes the packet it is about: an IPv6 header from --src to --dst (a full
 * 1500-byte packet) and the start of its TCP (or UDP) header with the ports. Sent over a raw
 * ICMPv6 socket: the kernel fills in the checksum (RFC 3542 3.1). Prints one JSON line.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { AF_INET6, SIZEOF_SOCKADDR_IN6, SOCK_RAW, lastErrno, libc, sockaddrIn6 } from '../adapters/libc.js';
import { parseIPv6 } from '../lib/ip-bytes.js';

const IPPROTO_ICMPV6 = 58;
const ICMPV6_PKT_TOOBIG = 2;
const QUOTED_LEN = 1500;

/** The ICMPv6 message (checksum left 0 for the kernel). */
export function encodeTooBig(o: { src: string; dst: string; sport: number; dport: number; mtu: number; udp: boolean }): Buffer {
  const src = parseIPv6(o.src);
  const dst = parseIPv6(o.dst);
  if (!src || !dst) throw new Error(`not IPv6 addresses: ${o.src}, ${o.dst}`);
  const l4 = Buffer.alloc(o.udp ? 8 : 20);
  l4.writeUInt16BE(o.sport, 0);
  l4.writeUInt16BE(o.dport, 2);
  if (o.udp) l4.writeUInt16BE(QUOTED_LEN - 40, 4);
  else {
    l4.writeUInt32BE(1, 4); // a sequence number; conntrack matches the tuple, not the window
    l4[12] = 5 << 4; // data offset: 20 bytes
    l4[13] = 0x18; // PSH, ACK
  }
  const ip = Buffer.alloc(40);
  ip.writeUInt32BE(0x60000000, 0);
  ip.writeUInt16BE(QUOTED_LEN - 40, 4);
  ip[6] = o.udp ? 17 : 6;
  ip[7] = 64;
  ip.set(src, 8);
  ip.set(dst, 24);
  const head = Buffer.alloc(8);
  head[0] = ICMPV6_PKT_TOOBIG;
  head.writeUInt32BE(o.mtu, 4);
  return Buffer.concat([head, ip, l4]);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      to: { type: 'string' },
      src: { type: 'string' },
      dst: { type: 'string' },
      sport: { type: 'string' },
      dport: { type: 'string' },
      mtu: { type: 'string', default: '1280' },
      udp: { type: 'boolean', default: false },
    },
  });
  if (!values.to || !values.src || !values.dst || !values.sport || !values.dport) throw new Error('usage: too-big --to ADDR --src ADDR --dst ADDR --sport N --dport N [--mtu 1280] [--udp]');
  const msg = encodeTooBig({ src: values.src, dst: values.dst, sport: Number(values.sport), dport: Number(values.dport), mtu: Number(values.mtu), udp: values.udp });
  const c = libc();
  const fd = c.socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  if (fd < 0) throw new Error(`socket(AF_INET6, SOCK_RAW, ICMPV6): errno ${lastErrno()}`);
  try {
    const n = c.sendto(fd, msg, msg.length, 0, sockaddrIn6(values.to), SIZEOF_SOCKADDR_IN6);
    if (n !== msg.length) throw new Error(`sendto ${values.to}: errno ${lastErrno()}`);
  } finally {
    c.close(fd);
  }
  console.log(JSON.stringify({ sent: msg.length, to: values.to, about: `${values.src} ${values.sport} -> ${values.dst} ${values.dport}`, mtu: Number(values.mtu) }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    main();
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
}
