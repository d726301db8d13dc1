/**
 * Reads the host's interfaces, addresses and routes for the host checks.
 * Uses iproute2's JSON output for now; the rtnetlink adapter of the VRRP work
 * (which adds and removes VIPs) will take this over.
 */
import { run, runRaw } from '../lib/exec.js';
import type { HostState } from '../config/host-check.js';

interface IpAddrJson {
  ifname: string;
  operstate?: string;
  flags?: string[];
  addr_info?: { local: string; prefixlen: number }[];
}

export async function readHostState(routeTargets: readonly string[]): Promise<HostState> {
  const links: HostState['links'] = {};
  const addrs = JSON.parse(await run('ip', ['-j', 'addr', 'show'])) as IpAddrJson[];
  for (const l of addrs) {
    links[l.ifname] = {
      up: (l.flags ?? []).includes('UP'),
      addresses: (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`),
    };
  }
  const routes: HostState['routes'] = {};
  for (const t of routeTargets) {
    const r = await runRaw('ip', ['-j', 'route', 'get', t]);
    if (r.status !== 0) {
      routes[t] = null;
      continue;
    }
    const parsed = JSON.parse(r.stdout) as { dev?: string; type?: string }[];
    const first = parsed[0];
    routes[t] = first?.dev && first.type !== 'local' ? first.dev : null;
  }
  return { links, routes };
}
