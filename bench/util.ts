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

/**
 * The two-firewall cluster of the benchmarks (the lab's sandwich), at fwlb's VRRP defaults:
 * one sync group of both VIPs, a web service on the outside VIP; `health` adds its checks.
 */
export function benchClusterYaml(o: { name: string; health?: boolean }): string {
  return `cluster: { name: ${o.name} }
nodes:
  fw1: { priority: 200, addresses: { outside: 198.18.0.2/24, inside: 198.18.1.2/24, sync: 198.18.2.1/24 } }
  fw2: { priority: 100, addresses: { outside: 198.18.0.3/24, inside: 198.18.1.3/24, sync: 198.18.2.2/24 } }
interfaces: { outside: eth0, inside: eth1, sync: eth2 }
vrrp:
  groups:
    edge:
      instances:
        ext: { interface: outside, vrid: 51, addresses: [198.18.0.100/24] }
        int: { interface: inside, vrid: 52, addresses: [198.18.1.1/24] }
      track: { interfaces: [outside, inside] }
state_sync: { interface: sync }
firewall:
  rules:
    - allow: { from: inside, to: outside }
services:
  web:
    listen: 198.18.0.100:80/tcp
    backends: { web1: { address: 198.18.1.11 }, web2: { address: 198.18.1.12 } }
${o.health ? '    health: { http: { path: /healthz }, interval: 1s, timeout: 500ms }\n' : ''}`;
}
