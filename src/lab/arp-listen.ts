/**
 * Listens for gratuitous ARPs on a lab host's interface and reports them, for the tests of
 * the GARP refresh:
 *   node arp-listen.js --dev IFACE --seconds S [--ip ADDR]
 * Prints {"garps": [{"at": ms, "mac": "...", "ip": "..."}]}: every ARP whose sender and target
 * address are the same (a gratuitous one), of ADDR only if given. Times are the machine's
 * clock (timeOrigin + now).
 */
import { parseArgs } from 'node:util';
import { AF_PACKET, ETH_P_ARP, MSG_DONTWAIT, SOCK_NONBLOCK, SOCK_RAW, errnoName, libc, sockaddrLl } from '../adapters/libc.js';
import { Poller } from '../adapters/netlink/poller.js';
import { decodeArp } from '../codec/arp/arp.js';

const { values } = parseArgs({ options: { dev: { type: 'string' }, seconds: { type: 'string', default: '5' }, ip: { type: 'string' } } });
if (!values.dev) {
  process.stderr.write('arp-listen: --dev is required\n');
  process.exit(2);
}
const c = libc();
const proto = ((ETH_P_ARP & 0xff) << 8) | (ETH_P_ARP >> 8); // htons
const fd = c.socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, proto);
if (fd < 0) {
  process.stderr.write(`arp-listen: socket: ${errnoName()}\n`);
  process.exit(1);
}
const sa = sockaddrLl(c.if_nametoindex(values.dev), ETH_P_ARP, Buffer.alloc(6));
if (c.bind(fd, sa, sa.length) !== 0) {
  process.stderr.write(`arp-listen: bind: ${errnoName()}\n`);
  process.exit(1);
}
const garps: { at: number; mac: string; ip: string }[] = [];
const buf = Buffer.alloc(2048);
const poller = new Poller({ keepAlive: true });
const remove = poller.add(fd, () => {
  for (;;) {
    const n = c.recvfrom(fd, buf, buf.length, MSG_DONTWAIT, null, null);
    if (n <= 0) return;
    if (n < 14 || buf.readUInt16BE(12) !== ETH_P_ARP) continue;
    const r = decodeArp(buf.subarray(14, n));
    if (!r.ok || r.value.senderIp !== r.value.targetIp) continue;
    if (values.ip && r.value.senderIp !== values.ip) continue;
    garps.push({ at: Math.round(performance.timeOrigin + performance.now()), mac: r.value.senderMac, ip: r.value.senderIp });
  }
});
setTimeout(() => {
  remove();
  c.close(fd);
  poller.close();
  process.stdout.write(JSON.stringify({ garps }) + '\n');
}, Number(values.seconds) * 1000);
