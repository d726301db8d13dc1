/**
 * Listens for VRRP adverts on a segment (a lab host joined to 224.0.0.18) and reports when
 * each one of a router came, for the benchmarks' advert send jitter:
 *   node vrrp-listen.js --dev IFACE --src ADDR --vrid N --seconds S
 * Prints {"count", "intervalMs": {"p50","p99","max","min"}, "lateOver": {"10ms","50ms"},
 * "at": [ms, ...]} once the time is up: intervals between successive adverts of that source
 * and VRID, and how many came more than 10 / 50 ms after the previous one plus the nominal
 * interval (given by the advert itself). Times are the machine's clock (timeOrigin + now).
 */
import { parseArgs } from 'node:util';
import { AF_INET, IPPROTO_IP, IP_ADD_MEMBERSHIP, SOCK_NONBLOCK, SOCK_RAW, SOL_SOCKET, SO_BINDTODEVICE, errnoName, ipMreqn, libc } from '../adapters/libc.js';
import { readFor } from './listen-socket.js';
import { decodeIPv4Advert } from '../codec/vrrp/ipv4.js';

const IPPROTO_VRRP = 112;
const { values } = parseArgs({
  options: { dev: { type: 'string' }, src: { type: 'string' }, vrid: { type: 'string', default: '51' }, seconds: { type: 'string', default: '10' } },
});
if (!values.dev || !values.src) {
  process.stderr.write('vrrp-listen: --dev and --src are required\n');
  process.exit(2);
}
const c = libc();
const fd = c.socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_VRRP);
if (fd < 0) {
  process.stderr.write(`vrrp-listen: socket: ${errnoName()}\n`);
  process.exit(1);
}
const dev = Buffer.from(values.dev + '\0');
const ifindex = c.if_nametoindex(values.dev);
if (c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, dev.length) !== 0 || c.setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, ipMreqn('224.0.0.18', '0.0.0.0', ifindex), 12) !== 0) {
  process.stderr.write(`vrrp-listen: setsockopt: ${errnoName()}\n`);
  process.exit(1);
}
const vrid = Number(values.vrid);
const at: number[] = [];
let nominal = 0;
readFor(
  fd,
  Number(values.seconds),
  (d) => {
    const t = performance.timeOrigin + performance.now();
    const r = decodeIPv4Advert(d);
    if (!r.ok || r.ip.src !== values.src || r.value.vrid !== vrid) return;
    nominal = r.value.version === 3 ? r.value.maxAdvertIntervalMs : r.value.advertIntervalMs;
    at.push(t);
  },
  () => {
    const gaps = at.slice(1).map((t, i) => t - (at[i] as number)).sort((x, y) => x - y);
    const q = (p: number) => (gaps.length ? Math.round((gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))] as number) * 100) / 100 : null);
    const late = (ms: number) => gaps.filter((g) => g > nominal + ms).length;
    process.stdout.write(
      JSON.stringify({ count: at.length, nominalMs: nominal, intervalMs: { min: q(0), p50: q(0.5), p99: q(0.99), max: q(1) }, lateOver: { '10ms': late(10), '50ms': late(50) }, at: at.map((t) => Math.round(t)) }) + '\n',
    );
  },
);
