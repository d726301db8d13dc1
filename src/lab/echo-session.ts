/**
 * A long-lived TCP session for lab tests: connects to an echo service, sends a numbered
 * line every --every ms for --seconds, checks each echo, and prints one JSON line:
 * {connected, sent, echoed, mismatches, maxGapMs, error}. maxGapMs is the longest time
 * without an echo while one was outstanding: the stall a user would see.
 *   node echo-session.js HOST PORT [--every 50] [--seconds 5]
 */
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { every: { type: 'string', default: '50' }, seconds: { type: 'string', default: '5' } },
});
const [host = '', port = ''] = positionals;
const every = Number(values.every);
const stats = { connected: false, sent: 0, echoed: 0, mismatches: 0, maxGapMs: 0, error: null as string | null, localPort: 0 };
let buf = '';
let lastEcho = 0;
const s = connect({ host, port: Number(port) });
s.setNoDelay(true);
s.setEncoding('utf8');
s.on('connect', () => {
  stats.connected = true;
  stats.localPort = s.localPort ?? 0;
  // A first line as soon as the session is up, so a test can find its flow in conntrack.
  process.stdout.write(JSON.stringify({ event: 'connected', localPort: stats.localPort }) + '\n');
  lastEcho = Date.now();
  const tick = setInterval(() => {
    if (stats.sent > stats.echoed) stats.maxGapMs = Math.max(stats.maxGapMs, Date.now() - lastEcho);
    else lastEcho = Date.now();
    s.write(`${stats.sent++}\n`);
  }, every);
  setTimeout(() => {
    clearInterval(tick);
    // Give the last echoes time to come back.
    setTimeout(() => finish(), Math.max(500, every * 4));
  }, Number(values.seconds) * 1000);
});
s.on('data', (d: string) => {
  buf += d;
  let nl: number;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (line !== String(stats.echoed)) stats.mismatches++;
    stats.echoed++;
    const now = Date.now();
    stats.maxGapMs = Math.max(stats.maxGapMs, now - lastEcho);
    lastEcho = now;
  }
});
s.on('error', (e) => {
  stats.error = e.message;
  finish();
});
s.on('close', () => {
  if (!stats.error) stats.error = stats.sent > 0 && stats.echoed >= stats.sent ? null : 'closed early';
});
function finish() {
  process.stdout.write(JSON.stringify(stats) + '\n');
  s.destroy();
  process.exit(0);
}
