/**
 * What the kernel dropped on a UDP socket because its receive buffer was full (the `drops`
 * column of /proc/net/udp and /proc/net/udp6, per socket of this network namespace): a flood
 * on the sync port that outruns the daemon is seen and counted, not silent. Read from procfs,
 * nothing spawned.
 */
import { readFileSync } from 'node:fs';

/**
 * Sums the drops of the sockets bound to `port` in a /proc/net/udp{,6} text (any local
 * address: the daemon binds one socket per port). Lines that do not parse are skipped.
 */
export function udpDropsOf(text: string, port: number): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (f.length < 13 || !/^\d+:$/.test(f[0] ?? '')) continue;
    const local = f[1] ?? '';
    const colon = local.lastIndexOf(':');
    if (colon < 0 || Number.parseInt(local.slice(colon + 1), 16) !== port) continue;
    const d = Number(f[12]);
    if (Number.isSafeInteger(d) && d >= 0) sum += d;
  }
  return sum;
}

/** Receive-buffer drops of this namespace's UDP sockets on `port`; undefined without procfs. */
export function readUdpDrops(port: number): number | undefined {
  let found = false;
  let sum = 0;
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      sum += udpDropsOf(readFileSync(file, 'utf8'), port);
      found = true;
    } catch {
      // no IPv6, or no procfs
    }
  }
  return found ? sum : undefined;
}
