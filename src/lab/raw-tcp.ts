/**
 * Sends one hand-made TCP segment through a raw socket (koffi: Node has no raw sockets),
 * for lab tests of what the firewall does with packets no real stack would send, such
 * as an ACK that belongs to no connection.
 *   node raw-tcp.js SRC DST SPORT DPORT FLAGS   (FLAGS: letters of S A F R P, e.g. "A")
 */
import koffi from 'koffi';

const [src = '', dst = '', sport = '0', dport = '0', flags = 'A'] = process.argv.slice(2);
const AF_INET = 2;
const SOCK_RAW = 3;
const IPPROTO_TCP = 6;

const ip4 = (a: string) => Buffer.from(a.split('.').map(Number));
function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

const tcp = Buffer.alloc(20);
tcp.writeUInt16BE(Number(sport), 0);
tcp.writeUInt16BE(Number(dport), 2);
tcp.writeUInt32BE(0x12345678, 4); // sequence number
tcp.writeUInt32BE(flags.includes('A') ? 0x9abcdef0 : 0, 8); // acknowledgment number
const bits = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10 } as Record<string, number>;
tcp[12] = 5 << 4; // data offset: 5 words
tcp[13] = [...flags].reduce((acc, f) => acc | (bits[f] ?? 0), 0);
tcp.writeUInt16BE(29200, 14); // window
const pseudo = Buffer.concat([ip4(src), ip4(dst), Buffer.from([0, IPPROTO_TCP, 0, 20]), tcp]);
tcp.writeUInt16BE(checksum(pseudo), 16);

const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int, int, int)');
const sendto = libc.func('long sendto(int, const void *, size_t, int, const void *, uint32_t)');
const close = libc.func('int close(int)');
const fd = socket(AF_INET, SOCK_RAW, IPPROTO_TCP) as number;
if (fd < 0) {
  process.stderr.write('raw-tcp: socket() failed (root needed)\n');
  process.exit(2);
}
const sa = Buffer.alloc(16);
sa.writeUInt16LE(AF_INET, 0);
ip4(dst).copy(sa, 4);
const n = sendto(fd, tcp, tcp.length, 0, sa, 16) as number;
close(fd);
if (n !== tcp.length) {
  process.stderr.write(`raw-tcp: sendto returned ${n}\n`);
  process.exit(1);
}
