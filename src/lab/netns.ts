/**
 * IMPURE and thin: the iproute2 / procps adapter the lab is built with. Every call spawns
 * `ip` (or `ip netns exec NS CMD`) without a shell; nothing here knows the topology.
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { run, runRaw, type RunResult } from '../lib/exec.js';

const IP = 'ip';

/** Names of all network namespaces (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const out = await run(IP, ['-j', 'netns', 'list']);
  if (out.trim() === '') return [];
  const parsed = JSON.parse(out) as { name: string }[];
  return parsed.map((n) => n.name);
}

/** Runs `ip [-n NS] [-force] -batch -` with the given lines; throws on the first failure. */
export async function ipBatch(ns: string | null, lines: readonly string[], opts: { force?: boolean } = {}): Promise<void> {
  if (lines.length === 0) return;
  const args = [...(ns === null ? [] : ['-n', ns]), ...(opts.force ? ['-force'] : []), '-batch', '-'];
  await run(IP, args, lines.join('\n') + '\n');
}

/** `ip [-n NS] ARGS...` returning stdout. */
export function ip(ns: string | null, args: readonly string[]): Promise<string> {
  return run(IP, [...(ns === null ? [] : ['-n', ns]), ...args]);
}

export async function addNamespaces(names: readonly string[]): Promise<void> {
  await ipBatch(null, names.map((n) => `netns add ${n}`));
}

/** Deletes namespaces, going on past failures (`-force`); callers check what remains. */
export async function deleteNamespaces(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await runRaw(IP, ['-force', '-batch', '-'], names.map((n) => `netns del ${n}`).join('\n') + '\n');
}

/** PIDs of every process in a namespace (`ip netns pids NS`). */
export async function namespacePids(ns: string): Promise<number[]> {
  const r = await runRaw(IP, ['netns', 'pids', ns]);
  if (r.status !== 0) return [];
  return r.stdout.split(/\s+/).filter((s) => s !== '').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

/** Runs ARGV inside a namespace; resolves with the result whatever the exit status. */
export function nsExecRaw(ns: string, argv: readonly string[], input?: string): Promise<RunResult> {
  return runRaw(IP, ['netns', 'exec', ns, ...argv], input);
}

/** Runs ARGV inside a namespace and returns stdout; a non-zero exit throws CommandError. */
export function nsExec(ns: string, argv: readonly string[], input?: string): Promise<string> {
  return run(IP, ['netns', 'exec', ns, ...argv], input);
}

/** Sets sysctls inside a namespace in one `sysctl -w` call. */
export async function setSysctls(ns: string, values: Readonly<Record<string, string>>): Promise<void> {
  const kv = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  if (kv.length > 0) await nsExec(ns, ['sysctl', '-q', '-w', ...kv]);
}

/** One interface as `ip -j address show` reports it (the fields the lab reads). */
export interface LinkAddrInfo {
  ifname: string;
  flags: string[];
  operstate: string;
  master?: string;
  addr_info: { family: string; local: string; prefixlen: number; scope?: string; tentative?: boolean; dadfailed?: boolean }[];
}

/** Interfaces of a namespace with their addresses. */
export async function linkAddresses(ns: string, dev?: string): Promise<LinkAddrInfo[]> {
  const out = await ip(ns, ['-j', 'address', 'show', ...(dev ? ['dev', dev] : [])]);
  return out.trim() === '' ? [] : (JSON.parse(out) as LinkAddrInfo[]);
}

export interface RouteInfo { dst: string; gateway?: string; dev?: string }

export async function routes(ns: string): Promise<RouteInfo[]> {
  const out = await ip(ns, ['-j', 'route', 'show']);
  return out.trim() === '' ? [] : (JSON.parse(out) as RouteInfo[]);
}

/** The inode identifying a named namespace, or null if it does not exist. */
export function namespaceInode(ns: string): number | null {
  try {
    return statSync(`/run/netns/${ns}`).ino;
  } catch {
    return null;
  }
}

/** The inode of a process's network namespace, or null if the process is gone. */
export function pidNamespaceInode(pid: number): number | null {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The command line of a process, or null if it is gone. */
export function pidCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s) => s !== '');
  } catch {
    return null;
  }
}
