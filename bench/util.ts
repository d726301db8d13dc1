/** Shared pieces of the benchmarks: load generation, printing, and figures as data. */
import { writeFile } from 'node:fs/promises';
import type { Lab } from '../src/lab/lab.js';
import { runRaw } from '../src/lib/exec.js';

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

/**
 * One figure a benchmark measured, as data beside the table it prints: bench/figures.ts runs
 * every benchmark with `--figures FILE` and builds its dated table from these records, so
 * that nothing is copied from a terminal by hand.
 */
/** The lab cluster's file with its services replaced by `n` maglev services of 10 backends each on the outside VIP. */
export function manyServices(base: string, n: number, tableSize?: number): string {
  const lines = [base.replace(/\nservices:\n[\s\S]*$/, '\n'), 'services:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  s${i}:`, `    listen: 198.18.0.100:${10000 + i}/tcp`, '    scheduler: maglev', ...(tableSize ? [`    table_size: ${tableSize}`] : []), '    backends:');
    for (let b = 0; b < 10; b++) lines.push(`      b${b}: { address: 198.18.1.${11 + b}:${8000 + i} }`);
  }
  return lines.join('\n') + '\n';
}

export interface Figure {
  /** Stable across runs and commits (`figures.js --compare` matches on it): `failover.switched.gap`. */
  id: string;
  /** What is measured: the row of the table. */
  figure: string;
  /** Under what: load, sizes, durations. */
  conditions: string;
  unit: string;
  /** Who: `fwlb ...`, or the peer measured beside it in the same run. */
  system: string;
  /** The peer (keepalived, conntrackd), not fwlb. */
  peer: boolean;
  /** null: not measured in this run (did not complete, no sample). */
  value: number | null;
  /** The method's own resolution in the unit (probe or poll interval): a smaller difference is not seen. */
  resolution?: number;
}

/** Writes the figures for bench/figures.ts when the benchmark was given `--figures FILE`. */
export async function writeFigures(file: string | undefined, bench: string, figures: readonly Figure[]): Promise<void> {
  if (file) await writeFile(file, JSON.stringify({ bench, argv: process.argv.slice(2), figures }) + '\n');
}

/** A number or null (NaN, Infinity and undefined are "not measured"). */
export const num = (x: number | null | undefined): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : x);

/**
 * The peers' versions as the binaries on this machine report them: a label names the
 * version that ran, not the one a README was written against.
 */
export async function peerVersions(): Promise<{ keepalived: string; conntrackd: string }> {
  const v = async (cmd: string, arg: string) => {
    const r = await runRaw(cmd, [arg]).catch(() => undefined);
    return /v(\d+(?:\.\d+)+)/.exec(`${r?.stdout ?? ''}${r?.stderr ?? ''}`)?.[1] ?? '(version unknown)';
  };
  return { keepalived: await v('keepalived', '--version'), conntrackd: await v('conntrackd', '-v') };
}
