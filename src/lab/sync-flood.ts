/**
 * A flood of bad datagrams at a node's state sync port, for the hardening tests and bench:
 * as fast as one process sends them (or at --rate), for --seconds, run from a lab namespace.
 *   node sync-flood.js --to ADDR --port P --seconds S [--rate R] [--sender ID] [--receiver ID]
 *                      [--key-file F] [--kinds garbage,forged,truncated,replayed]
 * Kinds, taken in turn:
 *   garbage    random bytes of a random length (0..1400)
 *   forged     a well-formed v2 header claiming to be peer --sender (data or HELLO), with
 *              random fields and HMAC
 *   truncated  a real HELLO (with --key-file) cut short
 *   replayed   an authenticated data message (with --key-file) made for an earlier run of
 *              the receiver (a peer epoch it never had): what a captured datagram looks like
 * Prints {"sent": N, "seconds": S, "rate": N/S, "eagain": N} when done. Uses sendto through
 * koffi in a tight loop (a dgram send per datagram is ten times slower).
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { AF_INET, lastErrno, libc } from '../adapters/libc.js';
import { deriveSyncKey, encode } from '../codec/sync/message.js';
import { OFF_FLAGS, OFF_PAYLOAD_LEN, OFF_RECEIVER, OFF_SENDER, OFF_TYPE, OFF_VERSION, SYNC_HEADER_LEN, SYNC_HMAC_LEN, SYNC_MAGIC, SYNC_TYPE_DATA, SYNC_TYPE_HELLO, SYNC_VERSION } from '../codec/sync/constants.js';

const { values } = parseArgs({
  options: {
    to: { type: 'string' },
    port: { type: 'string', default: '3780' },
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '0' },
    sender: { type: 'string', default: '1' },
    receiver: { type: 'string', default: '0' },
    'key-file': { type: 'string' },
    kinds: { type: 'string', default: 'garbage,forged,truncated,replayed' },
  },
});
if (!values.to) {
  process.stderr.write('sync-flood: --to ADDRESS is required\n');
  process.exit(2);
}
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const EAGAIN = 11;
const port = Number(values.port);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const sender = Number(values.sender);
const receiver = Number(values.receiver);
const key = values['key-file'] ? deriveSyncKey(readFileSync(values['key-file'])) : undefined;
const kinds = values.kinds.split(',').filter((k) => k !== 'truncated' && k !== 'replayed' ? true : key !== undefined);

/** Pre-built datagrams per kind (a few variants each), so that sending is all the loop does. */
function variants(kind: string): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 64; i++) {
    if (kind === 'garbage') out.push(randomBytes(Math.floor(Math.random() * 1400)));
    else if (kind === 'forged') {
      const len = 64 + Math.floor(Math.random() * 512);
      const b = randomBytes(SYNC_HEADER_LEN + len + SYNC_HMAC_LEN);
      b.writeUInt32BE(SYNC_MAGIC, 0);
      b[OFF_VERSION] = SYNC_VERSION;
      // Half claim to be data, half HELLOs (which a receiver must verify: a restarted peer
      // introduces itself with one).
      b[OFF_TYPE] = i % 2 === 0 ? SYNC_TYPE_DATA : SYNC_TYPE_HELLO;
      b[OFF_FLAGS] = 0;
      b.writeUInt16BE(sender, OFF_SENDER);
      b.writeUInt16BE(receiver, OFF_RECEIVER);
      b.writeUInt16BE(len, OFF_PAYLOAD_LEN);
      out.push(b);
    } else if (kind === 'replayed') {
      out.push(encode({ type: 'data', sender, receiver, epoch: 0x7000_0000 + i, peerEpoch: 0x1234_5678, packet: i + 1, seq: i + 1, bulk: false, records: [{ type: 'ct_destroy', body: randomBytes(40) }] }, key!));
    } else if (kind === 'truncated') {
      const m = encode({ type: 'hello', sender, receiver, epoch: 0x7000_0000 + i, peerEpoch: 0, packet: i + 1, seq: 0, synced: true }, key!);
      out.push(m.subarray(0, Math.floor(Math.random() * (m.length - 1))));
    }
  }
  return out;
}

const pool = kinds.map(variants);
const c = libc();
const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
if (fd < 0) {
  process.stderr.write(`sync-flood: socket failed (errno ${lastErrno()})\n`);
  process.exit(1);
}
const sa = Buffer.alloc(16);
sa.writeUInt16LE(AF_INET, 0);
sa.writeUInt16BE(port, 2);
Buffer.from(values.to.split('.').map(Number)).copy(sa, 4);

let sent = 0;
let eagain = 0;
let i = 0;
const t0 = performance.now();
const end = t0 + seconds * 1000;
const burst = () => {
  const now = performance.now();
  if (now >= end) {
    c.close(fd);
    const s = (now - t0) / 1000;
    process.stdout.write(JSON.stringify({ sent, seconds: Math.round(s * 100) / 100, rate: Math.round(sent / s), eagain }) + '\n');
    return;
  }
  // At a rate: as many as are due by now; otherwise a burst of 2,000 per turn.
  const due = rate > 0 ? Math.min(5000, Math.floor(((now - t0) / 1000) * rate) - sent - eagain) : 2000;
  for (let n = 0; n < due; n++) {
    const kind = pool[i % pool.length]!;
    const b = kind[(i / pool.length) % kind.length | 0]!;
    i++;
    if (c.sendto(fd, b, b.length, 0, sa, 16) < 0) {
      if (lastErrno() === EAGAIN) eagain++;
    } else sent++;
  }
  if (rate > 0) setTimeout(burst, 1);
  else setImmediate(burst);
};
burst();
