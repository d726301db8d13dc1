/** Shared pieces of the benchmarks: load generation and printing. */
import type { Lab } from '../src/lab/lab.js';

/** Runs wrk from a lab node against a URL and returns requests/s. */
export async function wrk(lab: Lab, from: string, url: string, seconds: number, connections = 50, threads = 1): Promise<number> {
  const out = await lab.exec(from, ['wrk', `-t${threads}`, `-c${connections}`, `-d${seconds}s`, url]);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`wrk printed no Requests/sec:\n${out}`);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
  if (errors) process.stderr.write(`wrk ${url}: ${errors[0]}\n`);
  return Number(m[1]);
}

/** A plain text table, columns padded. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
