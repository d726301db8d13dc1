/**
 * The lab's ping (the machine has no iputils): ICMP echo over a raw socket, opened with
 * koffi, run inside a namespace:
 *
 *   ip netns exec P-client1 node dist/src/lab/ping.js 198.18.0.100 [--count 1] [--timeout 1000] [--interval 200]
 *
 * Prints one JSON line `{target, sent, received, rttMs}`; exit 0 if any reply came back,
 * 1 if none, 2 on error. A standalone program: blocking calls are fine here.
 */
import koffi from 'koffi';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeEchoReply, encodeEchoRequest, parseIPv4 } from './icmp.js';

const AF_INET = 2;
const SOCK_RAW = 3;
const IPPROTO_ICMP = 1;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const EINTR = 4;
const EAGAIN = 11;

export interface PingResult { target: string; sent: number; received: number; rttMs: number[] }

function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function ping(target: string, count: number, timeoutMs: number, intervalMs: number): PingResult {
  const addr = parseIPv4(target);
  if (!addr) throw new Error(`not an IPv4 address: ${target}`);
  const libc = koffi.load('libc.so.6');
  const socket = libc.func('int socket(int, int, int)');
  const setsockopt = libc.func('int setsockopt(int, int, int, const void *, uint32_t)');
  const sendto = libc.func('intptr_t sendto(int, const void *, uintptr_t, int, const void *, uint32_t)');
  const recv = libc.func('intptr_t recv(int, _Out_ void *, uintptr_t, int)');
  const close = libc.func('int close(int)');

  const fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) as number;
  if (fd < 0) throw new Error(`socket(AF_INET, SOCK_RAW, ICMP): errno ${koffi.errno()}`);
  const sa = Buffer.alloc(16);
  sa.writeUInt16LE(AF_INET, 0);
  addr.copy(sa, 4);
  const id = process.pid & 0xffff;
  const buf = Buffer.alloc(2048);
  const result: PingResult = { target, sent: 0, received: 0, rttMs: [] };
  try {
    for (let seq = 1; seq <= count; seq++) {
      const t0 = performance.now();
      const req = encodeEchoRequest(id, seq);
      // A failed send (e.g. ENETUNREACH while a link is down) is a lost probe, not an error.
      sendto(fd, req, req.length, 0, sa, 16);
      result.sent++;
      for (;;) {
        const left = timeoutMs - (performance.now() - t0);
        if (left <= 0) break;
        const tv = Buffer.alloc(16);
        tv.writeBigInt64LE(BigInt(Math.floor(left / 1000)), 0);
        tv.writeBigInt64LE(BigInt(Math.max(1, Math.floor((left % 1000) * 1000))), 8);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
        const n = Number(recv(fd, buf, buf.length, 0));
        if (n < 0) {
          const e = koffi.errno();
          if (e === EINTR) continue;
          if (e === EAGAIN) break;
          throw new Error(`recv: errno ${e}`);
        }
        const r = decodeEchoReply(buf.subarray(0, n));
        if (r && r.id === id && r.seq === seq && r.source === target) {
          result.received++;
          result.rttMs.push(Math.round((performance.now() - t0) * 1000) / 1000);
          break;
        }
      }
      if (seq < count) sleepSync(intervalMs - (performance.now() - t0));
    }
  } finally {
    close(fd);
  }
  return result;
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: {
      count: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '1000' },
      interval: { type: 'string', default: '200' },
    },
    allowPositionals: true,
  });
  const target = positionals[0];
  try {
    if (!target) throw new Error('usage: ping.js ADDRESS [--count N] [--timeout MS] [--interval MS]');
    const r = ping(target, Number(values.count), Number(values.timeout), Number(values.interval));
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exitCode = r.received > 0 ? 0 : 1;
  } catch (e) {
    process.stderr.write(`ping: ${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
