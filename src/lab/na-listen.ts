/**
 * A capture of neighbour advertisements on a lab host's interface (issue 22), for the tests
 * of IPv6 takeover:
 *   node na-listen.js --dev IFACE --seconds S [--target ADDR]
 * Prints {"adverts": [{at, mac, source, destination, target, router, solicited, override,
 * hopLimit, targetLinkLayer}]}: every neighbour advertisement that passes RFC 4861's receive
 * checks (codec/ndp), of target ADDR only if given; times are the machine's clock.
 */
import { parseArgs } from 'node:util';
import { AF_PACKET, MSG_DONTWAIT, SOCK_NONBLOCK, SOCK_RAW, errnoName, libc, sockaddrLl } from '../adapters/libc.js';
import { Poller } from '../adapters/netlink/poller.js';
import { ETHERTYPE_IPV6, ICMPV6_NEIGHBOR_ADVERTISEMENT, decodeNdp } from '../codec/ndp/ndp.js';

const { values } = parseArgs({ options: { dev: { type: 'string' }, seconds: { type: 'string', default: '5' }, target: { type: 'string' } } });
if (!values.dev) {
  process.stderr.write('na-listen: --dev is required\n');
  process.exit(2);
}
const c = libc();
const proto = ((ETHERTYPE_IPV6 & 0xff) << 8) | (ETHERTYPE_IPV6 >> 8); // htons
const fd = c.socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, proto);
if (fd < 0) {
  process.stderr.write(`na-listen: socket: ${errnoName()}\n`);
  process.exit(1);
}
const sa = sockaddrLl(c.if_nametoindex(values.dev), ETHERTYPE_IPV6, Buffer.alloc(6));
if (c.bind(fd, sa, sa.length) !== 0) {
  process.stderr.write(`na-listen: bind: ${errnoName()}\n`);
  process.exit(1);
}
const adverts: Record<string, unknown>[] = [];
const buf = Buffer.alloc(2048);
const poller = new Poller({ keepAlive: true });
const remove = poller.add(fd, () => {
  for (;;) {
    const n = c.recvfrom(fd, buf, buf.length, MSG_DONTWAIT, null, null);
    if (n <= 0) return;
    const r = decodeNdp(buf.subarray(0, n));
    if (!r.ok || r.value.type !== ICMPV6_NEIGHBOR_ADVERTISEMENT) continue;
    const a = r.value;
    if (values.target && a.target !== values.target) continue;
    adverts.push({ at: Math.round(performance.timeOrigin + performance.now()), mac: a.ethSource, source: a.source, destination: a.destination, target: a.target, router: a.router, solicited: a.solicited, override: a.override, hopLimit: a.hopLimit, targetLinkLayer: a.targetLinkLayer });
  }
});
process.stdout.write(JSON.stringify({ listening: values.dev }) + '\n');
setTimeout(() => {
  remove();
  c.close(fd);
  poller.close();
  process.stdout.write(JSON.stringify({ adverts }) + '\n');
}, Number(values.seconds) * 1000);
