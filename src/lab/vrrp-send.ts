/**
 * Sends hand-made VRRP adverts (IPv4, a raw socket with our own IP header, so the source can
 * be anyone's), for lab tests of what a node does with adverts it must not believe:
 *   node vrrp-send.js --dev IFACE --src ADDR --vrid N --priority P --vip ADDR[,ADDR]
 *                     [--version 3] [--interval-ms 100] [--count 1] [--every-ms 100]
 *                     [--kind good|bad-checksum|bad-ttl|bad-version|bad-length|garbage]
 *                     [--dst 224.0.0.18]
 * `good` is a well-formed advert (what a spoofer sends); the others are malformed in one way.
 * Prints {"sent": N} when done.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { AF_INET, IPPROTO_IP, SOCK_RAW, SOL_SOCKET, SO_BINDTODEVICE, errnoName, int32, ipv4Bytes, libc, sockaddrIn } from '../adapters/libc.js';
import { encodeAdvert, type VrrpAdvert } from '../codec/vrrp/packet.js';
import { internetChecksum } from '../lib/checksum.js';

const IPPROTO_RAW = 255;
const IP_HDRINCL = 3;
const IPPROTO_VRRP = 112;

const { values } = parseArgs({
  options: {
    dev: { type: 'string' },
    src: { type: 'string' },
    dst: { type: 'string', default: '224.0.0.18' },
    vrid: { type: 'string', default: '51' },
    priority: { type: 'string', default: '254' },
    vip: { type: 'string', default: '' },
    version: { type: 'string', default: '3' },
    'interval-ms': { type: 'string', default: '100' },
    count: { type: 'string', default: '1' },
    'every-ms': { type: 'string', default: '100' },
    kind: { type: 'string', default: 'good' },
  },
});
if (!values.dev || !values.src || !values.vip) {
  process.stderr.write('vrrp-send: --dev, --src and --vip are required\n');
  process.exit(2);
}
const src = values.src;
const dst = values.dst;
const version = Number(values.version) === 2 ? 2 : 3;
const interval = Number(values['interval-ms']);
const addresses = values.vip.split(',');
const advert: VrrpAdvert =
  version === 3
    ? { version: 3, family: 4, vrid: Number(values.vrid), priority: Number(values.priority), maxAdvertIntervalMs: interval, addresses }
    : { version: 2, family: 4, vrid: Number(values.vrid), priority: Number(values.priority), advertIntervalMs: Math.max(1000, interval), addresses };

function packet(kind: string): Buffer {
  let vrrp = encodeAdvert(advert, { src, dst });
  let ttl = 255;
  if (kind === 'bad-checksum') vrrp.writeUInt16BE(vrrp.readUInt16BE(6) ^ 0x5a5a, 6);
  else if (kind === 'bad-ttl') ttl = 64;
  else if (kind === 'bad-version') vrrp[0] = (7 << 4) | (vrrp[0]! & 0x0f);
  else if (kind === 'bad-length') vrrp = vrrp.subarray(0, vrrp.length - 2);
  else if (kind === 'garbage') vrrp = randomBytes(1 + Math.floor(Math.random() * 60));
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[1] = 0xc0;
  ip.writeUInt16BE(20 + vrrp.length, 2);
  ip.writeUInt16BE(Math.floor(Math.random() * 0xffff), 4);
  ip[8] = ttl;
  ip[9] = IPPROTO_VRRP;
  ipv4Bytes(src).copy(ip, 12);
  ipv4Bytes(dst).copy(ip, 16);
  ip.writeUInt16BE(internetChecksum(ip), 10);
  return Buffer.concat([ip, vrrp]);
}

const c = libc();
const fd = c.socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
if (fd < 0) {
  process.stderr.write(`vrrp-send: socket: ${errnoName()} (root needed)\n`);
  process.exit(1);
}
const dev = Buffer.from(values.dev + '\0');
if (c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, dev.length) !== 0 || c.setsockopt(fd, IPPROTO_IP, IP_HDRINCL, int32(1), 4) !== 0) {
  process.stderr.write(`vrrp-send: setsockopt: ${errnoName()}\n`);
  process.exit(1);
}
const to = sockaddrIn(dst);
const count = Number(values.count);
const every = Number(values['every-ms']);
let sent = 0;
const one = () => {
  const p = packet(values.kind);
  if (c.sendto(fd, p, p.length, 0, to, 16) !== p.length) {
    process.stderr.write(`vrrp-send: sendto: ${errnoName()}\n`);
    process.exit(1);
  }
  sent++;
  if (sent < count) setTimeout(one, every);
  else {
    c.close(fd);
    process.stdout.write(JSON.stringify({ sent }) + '\n');
  }
};
one();
