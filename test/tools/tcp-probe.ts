/**
 * A TCP connect probe for lab tests: connects, optionally sends a line, and prints
 * one JSON line: {result: "connected"|"refused"|"timeout"|"error", data, ms}.
 * "timeout" means nothing came back at all: no SYN-ACK, no RST, no ICMP error.
 *   node tcp-probe.js HOST PORT [--timeout MS] [--send TEXT] [--source ADDR]
 */
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { timeout: { type: 'string', default: '1000' }, send: { type: 'string' }, source: { type: 'string' } },
});
const [host = '', portText = ''] = positionals;
const timeoutMs = Number(values.timeout);
const t0 = Date.now();
let data = '';
let done = false;
const finish = (result: string, extra: Record<string, unknown> = {}) => {
  if (done) return;
  done = true;
  process.stdout.write(JSON.stringify({ result, data, ms: Date.now() - t0, ...extra }) + '\n');
  process.exit(0);
};
const s = connect({ host, port: Number(portText), ...(values.source ? { localAddress: values.source } : {}) });
const timer = setTimeout(() => finish(s.readyState === 'open' ? 'connected' : 'timeout'), timeoutMs);
s.setEncoding('utf8');
s.on('connect', () => {
  if (values.send !== undefined) s.write(values.send + '\n');
});
s.on('data', (d: string) => {
  data += d;
  if (data.includes('\n')) {
    clearTimeout(timer);
    finish('connected');
  }
});
s.on('end', () => {
  clearTimeout(timer);
  finish('connected');
});
s.on('error', (e: NodeJS.ErrnoException) => {
  clearTimeout(timer);
  finish(e.code === 'ECONNREFUSED' ? 'refused' : 'error', { code: e.code });
});
