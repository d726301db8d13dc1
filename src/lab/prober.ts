/**
 * A steady prober for benchmarks (failover gaps, health-check reaction): every --every ms
 * it starts one probe of the service, each on a new connection (or a new UDP socket), and
 * records when it started, who answered (first word of the answer, or of the HTTP body)
 * and how long it took. Prints one JSON line at the end:
 *   {"every": 5, "startedAt": epochMs, "probes": [[startOffsetMs, who|null, ms], ...]}
 * (`startedAt`: the wall clock at offset 0, in ms since the epoch, as performance.timeOrigin +
 * performance.now() gives it: the daemons stamp their cluster events on the same basis.)
 *
 *   node prober.js HOST PORT [--every 5] [--seconds 10] [--mode http|read|udp] [--timeout 500]
 */
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { askWho } from './who.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    every: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '10' },
    mode: { type: 'string', default: 'http' },
    timeout: { type: 'string', default: '500' },
  },
});
const [host = '', portText = ''] = positionals;
const port = Number(portText);
const every = Number(values.every);
const timeoutMs = Number(values.timeout);
const t0 = performance.now();
const probes: [number, string | null, number][] = [];

function firstWord(text: string): string | null {
  return text.trim().split(/\s+/)[0] || null;
}

const probeTcp = () => askWho({ host, port, mode: values.mode === 'http' ? 'http' : 'read', timeoutMs });

function probeUdp(): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (v: string | null) => {
      clearTimeout(timer);
      s.close();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    s.on('message', (m) => done(firstWord(m.toString())));
    s.on('error', () => done(null));
    s.send('probe', port, host);
  });
}

const pending: Promise<void>[] = [];
const end = t0 + Number(values.seconds) * 1000;
let n = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    if (now >= end) return resolve();
    const start = now - t0;
    pending.push(
      (values.mode === 'udp' ? probeUdp() : probeTcp()).then((who) => {
        probes.push([Math.round(start * 10) / 10, who, Math.round((performance.now() - t0 - start) * 10) / 10]);
      }),
    );
    n++;
    // Schedule against the start time, so probes stay on a steady grid.
    setTimeout(tick, Math.max(0, t0 + n * every - performance.now()));
  };
  tick();
});
await Promise.all(pending);
probes.sort((a, b) => a[0] - b[0]);
process.stdout.write(JSON.stringify({ every, startedAt: Math.round(performance.timeOrigin + t0), probes }) + '\n');
