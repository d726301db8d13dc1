/**
 * Many short TCP flows to one service, for spread and stickiness tests and benchmarks:
 * each flow connects, reads the answer up to the server's close, and records who answered
 * (the first word of the answer, or of the HTTP body). Prints one JSON line:
 * {"who": ["web1", "web2", null, ...], "failed": N}. null = the flow failed.
 *
 *   node flows.js HOST PORT [--count 100] [--mode read|http] [--local-port START] [--concurrency 8] [--timeout 2000]
 * With --local-port, flow i uses local port START+i: the same ports again give the same flows.
 */
import { parseArgs } from 'node:util';
import { askWho } from './who.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: 'string', default: '100' },
    mode: { type: 'string', default: 'read' },
    'local-port': { type: 'string' },
    concurrency: { type: 'string', default: '8' },
    timeout: { type: 'string', default: '2000' },
  },
});
const [host = '', port = ''] = positionals;
const count = Number(values.count);
const timeoutMs = Number(values.timeout);
const base = values['local-port'] !== undefined ? Number(values['local-port']) : undefined;

const mode = values.mode === 'http' ? 'http' : 'read';
const flow = (i: number) => askWho({ host, port: Number(port), mode, timeoutMs, ...(base !== undefined ? { localPort: base + i } : {}) });

const who: (string | null)[] = new Array<string | null>(count).fill(null);
let next = 0;
async function worker(): Promise<void> {
  while (next < count) {
    const i = next++;
    who[i] = await flow(i);
  }
}
await Promise.all(Array.from({ length: Math.min(Number(values.concurrency), count) }, worker));
process.stdout.write(JSON.stringify({ who, failed: who.filter((w) => w === null).length }) + '\n');
