/**
 * Conntrack load for the sync benchmark, run inside a lab namespace:
 *   node ct-tool.js create --count N [--rate R] [--from I] [--entry-timeout S] [--quiet]
 *       creates N established TCP entries (198.18.128.0/17 clients to 198.18.0.100:9 (no service),
 *       DNAT to 198.18.1.11; only table entries, no packet is sent) at R per second (0: as
 *       fast as the kernel takes them), and prints {"created": [[index, ms], ...]}
 *       (with --quiet: {"created": N, "ms": elapsed})
 *   node ct-tool.js watch --count N [--timeout S]
 *       listens for new entries of that range and prints {"seen": [[index, ms], ...]}
 *       once N are seen or the timeout passes
 * Times are ms on the machine's clock (performance.timeOrigin + now), comparable across
 * namespaces of one machine.
 */
import { parseArgs } from 'node:util';
import { Poller } from '../adapters/netlink/poller.js';
import { Ctnetlink } from '../adapters/netlink/ctnetlink.js';
import type { ConntrackEntry } from '../codec/netlink/ctnetlink.js';
import { bigToV4 } from '../lib/ip.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { quiet: { type: 'boolean', default: false }, count: { type: 'string', default: '1000' }, rate: { type: 'string', default: '0' }, from: { type: 'string', default: '0' }, timeout: { type: 'string', default: '30' }, 'entry-timeout': { type: 'string', default: '600' } },
});
const now = () => performance.timeOrigin + performance.now();
const BASE = (198n << 24n) | (18n << 16n) | (128n << 8n);
/** Entry i: a client address and port from the index (32768 addresses x 1000 ports). */
const client = (i: number) => ({ address: bigToV4(BASE + BigInt(i % 32768)), port: 10000 + Math.floor(i / 32768) });
const indexOf = (address: string, port: number) => Number(BigInt(address.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n)) - BASE) + (port - 10000) * 32768;

function entry(i: number): ConntrackEntry {
  const c = client(i);
  return {
    family: 4,
    orig: { src: c.address, dst: '198.18.0.100', proto: 6, srcPort: c.port, dstPort: 9 },
    reply: { src: '198.18.1.11', dst: c.address, proto: 6, srcPort: 9, dstPort: c.port },
    status: 0x0e, // SEEN_REPLY | ASSURED | CONFIRMED
    timeout: Number(values['entry-timeout']),
    tcp: { state: 'ESTABLISHED' },
  };
}

const count = Number(values.count);
const poller = new Poller({ keepAlive: true });
if (positionals[0] === 'create') {
  const ct = Ctnetlink.open({ poller });
  const rate = Number(values.rate);
  const from = Number(values.from);
  const created: [number, number][] = [];
  const t0 = now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < count; i++) {
    if (rate > 0) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    const p: Promise<void> = ct.create(entry(from + i)).then(
      () => void created.push([from + i, now()]),
      () => undefined,
    ).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 64) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  process.stdout.write(JSON.stringify(values.quiet ? { created: created.length, ms: now() - t0 } : { created }) + '\n');
  ct.close();
  poller.close();
} else if (positionals[0] === 'watch') {
  const ct = Ctnetlink.open({ poller, events: ['new'] });
  const seen = new Map<number, number>();
  const done = () => {
    process.stdout.write(JSON.stringify({ seen: [...seen.entries()] }) + '\n');
    ct.close();
    poller.close();
    process.exit(0);
  };
  ct.onEvent((e) => {
    if (e.kind !== 'new' || e.entry.orig.dstPort !== 9 || !e.entry.orig.src.startsWith('198.18.')) return;
    const i = indexOf(e.entry.orig.src, e.entry.orig.srcPort ?? 0);
    if (i >= 0 && !seen.has(i)) seen.set(i, now());
    if (seen.size >= count) done();
  });
  process.stdout.write('ready\n');
  setTimeout(done, Number(values.timeout) * 1000);
} else {
  process.stderr.write('usage: ct-tool.js create|watch --count N ...\n');
  process.exit(2);
}
