/**
 * BIRD 2 in a lab (issue 26): the `bgp` topology's router (rt, AS 65000) learns the service
 * addresses from every firewall's own BIRD (AS 65010) and installs them into its kernel as one
 * ECMP route (`merge paths on`), honouring GRACEFUL_SHUTDOWN (RFC 8326) by LOCAL_PREF 0. Each
 * firewall's BIRD includes the file its fwlb writes (`<state>/fwN-bgp/*.conf`) and answers on
 * `<state>/fwN.bird.ctl`. Timers are short so that a restarted node's session is back within
 * seconds (BIRD's defaults wait 60 s after an error). The config texts are pure; `startBirds`
 * writes them and starts the daemons (in the foreground, so the lab holds their PIDs).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { Lab } from './lab.js';
import type { HostSpec, LabSpec } from './topology.js';
import { LAB_ROUTER } from './topology.js';
import { waitFor } from '../lib/wait.js';

export const ROUTER_AS = 65000;
export const NODE_AS = 65010;
const TIMERS = 'hold time 3; keepalive time 1; connect delay time 1; connect retry time 1; error wait time 1, 5;';

/** Where a host's BIRD keeps its config, socket, log, and (a firewall's) the include fwlb writes. */
export function birdPaths(stateDir: string, host: string): { conf: string; socket: string; log: string; pid: string; includeDir: string; include: string } {
  return {
    conf: `${stateDir}/${host}.bird.conf`,
    socket: `${stateDir}/${host}.bird.ctl`,
    log: `${stateDir}/${host}.bird.log`,
    pid: `${stateDir}/${host}.bird.pid`,
    includeDir: `${stateDir}/${host}-bgp`,
    include: `${stateDir}/${host}-bgp/announce.conf`,
  };
}

const edgeAddress = (h: HostSpec): string => h.ifaces.find((i) => i.bridge === 'edge')?.address ?? '';

/** The router: one BGP neighbour per firewall, the learnt routes merged into ECMP in its kernel. */
export function routerBirdConf(spec: LabSpec): string {
  const p = birdPaths(spec.stateDir, 'rt');
  const fws = spec.hosts.filter((h) => h.role === 'fw');
  const gs = 'import filter { if (65535,0) ~ bgp_community then bgp_local_pref = 0; accept; }; export none;';
  return [
    `log "${p.log}" all;`,
    `router id ${LAB_ROUTER.edge};`,
    'protocol device {}',
    'protocol kernel kernel4 { ipv4 { import none; export all; }; merge paths on; }',
    'protocol kernel kernel6 { ipv6 { import none; export all; }; merge paths on; }',
    `template bgp fws { local ${LAB_ROUTER.edge} as ${ROUTER_AS}; ${TIMERS}`,
    `  ipv4 { ${gs} };`,
    `  ipv6 { ${gs} };`,
    '}',
    ...fws.map((h) => `protocol bgp ${h.name} from fws { neighbor ${edgeAddress(h)} as ${NODE_AS}; }`),
    '',
  ].join('\n');
}

/** A firewall: what its fwlb writes (static fwlb4/fwlb6), exported to the router. */
export function nodeBirdConf(spec: LabSpec, fw: HostSpec): string {
  const p = birdPaths(spec.stateDir, fw.name);
  const me = edgeAddress(fw);
  return [
    `log "${p.log}" all;`,
    `router id ${me};`,
    'protocol device {}',
    `include "${p.includeDir}/*.conf";`,
    `protocol bgp upstream {`,
    `  local ${me} as ${NODE_AS}; neighbor ${LAB_ROUTER.edge} as ${ROUTER_AS}; ${TIMERS}`,
    '  ipv4 { import none; export where proto ~ "fwlb*"; };',
    '  ipv6 { import none; export where proto ~ "fwlb*"; };',
    '}',
    '',
  ].join('\n');
}

/** Writes every BIRD config of a `bgp` lab and starts the router's and each firewall's BIRD. */
export async function startBirds(lab: Lab): Promise<void> {
  const spec = lab.spec;
  const hosts = spec.hosts.filter((h) => h.role === 'router' || h.role === 'fw');
  for (const h of hosts) {
    const p = birdPaths(spec.stateDir, h.name);
    if (h.role === 'fw') await mkdir(p.includeDir, { recursive: true });
    await writeFile(p.conf, h.role === 'router' ? routerBirdConf(spec) : nodeBirdConf(spec, h));
    lab.spawn(h.name, ['bird', '-f', '-c', p.conf, '-s', p.socket, '-P', p.pid], { log: `${p.log}.out` });
  }
  await waitFor('BIRD sockets', async () => (hosts.every((h) => existsSync(birdPaths(spec.stateDir, h.name).socket)) ? true : undefined), 10_000);
}
