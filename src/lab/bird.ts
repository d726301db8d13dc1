/**
 * BIRD 2 in a lab (issue 26): the `bgp` topology's router (rt, AS 65000) learns the service
 * addresses from every firewall's own BIRD (AS 65010) and installs them into its kernel as one
 * ECMP route (`merge paths on`), honouring GRACEFUL_SHUTDOWN (RFC 8326) by LOCAL_PREF 0. Each
 * firewall's BIRD includes the file its fwlb writes (`<state>/fwN-bgp/*.conf`) and answers on
 * `<state>/fwN.bird.ctl`. Timers are short so that a restarted node's session is back within
 * seconds (BIRD's defaults wait 60 s after an error). BFD runs beside every BGP session
 * (100 ms, 5 missed: a dead node's routes go in half a second, not the 3 s hold time). The
 * config texts are pure; `startBirds` writes them and starts the daemons (in the foreground, so
 * the lab holds their PIDs). Also what the tests, the bench and the demo ask of a `bgp` lab:
 * its cluster file, the router's next hops, when a node said it was ready.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { Lab } from './lab.js';
import type { HostSpec, LabSpec } from './topology.js';
import { LAB_ROUTER } from './topology.js';
import { waitFor } from '../lib/wait.js';
import { writeSyncedCluster } from './cluster-file.js';
import { REPO_ROOT } from './paths.js';

export const ROUTER_AS = 65000;
export const NODE_AS = 65010;
const TIMERS = 'hold time 3; keepalive time 1; connect delay time 1; connect retry time 1; error wait time 1, 5; bfd on;';
/** BFD on the edge: 100 ms both ways, down after 5 missed (BIRD's default is 1 s x 5). */
const BFD = 'protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; idle tx interval 300 ms; multiplier 5; }; }';

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
    BFD,
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
    BFD,
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

/** The service address of examples/bgp.yaml, and each firewall's address on the edge. */
export const BGP_SERVICE = '198.18.30.100';
export const BGP_EDGE: Readonly<Record<string, string>> = { fw1: '198.18.3.2', fw2: '198.18.3.3', fw3: '198.18.3.4', fw4: '198.18.3.5' };

/**
 * examples/bgp.yaml for this lab (its BIRD paths, a fresh key); with `beatMs`, BEATs that often
 * and a peer gone after 5 missed (a 2-core lab's, test/sharing.test.ts says why).
 */
export async function writeBgpCluster(lab: Lab, beatMs?: number): Promise<string> {
  const line = 'state_sync: { interface: sync, port: 3780 }';
  let text = (await readFile(`${REPO_ROOT}/examples/bgp.yaml`, 'utf8')).replaceAll('/run/fwlb-lab/fwlb/', `${lab.stateDir}/`);
  if (beatMs !== undefined) {
    if (!text.includes(line)) throw new Error(`examples/bgp.yaml has no line "${line}"`);
    text = text.replace(line, `state_sync: { interface: sync, port: 3780, liveness: { interval: ${beatMs}, multiplier: 5 } }`);
  }
  return writeSyncedCluster(lab, text);
}

/** The next hops of the router's kernel route to `prefix` (one, or an ECMP set), sorted. */
export async function routerNextHops(lab: Lab, prefix = `${BGP_SERVICE}/32`): Promise<string[]> {
  const out = await lab.exec('rt', ['ip', '-4', 'route', 'show', prefix]);
  return [...out.matchAll(/via (\S+)/g)].map((m) => m[1]!).sort();
}

/** When a node's daemon log last said the node is ready (epoch ms; its cluster event). */
export async function readyAt(lab: Lab, fw: string): Promise<number | undefined> {
  const text = await readFile(`${lab.stateDir}/${fw}.daemon.log`, 'utf8').catch(() => '');
  let at: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.includes('"cluster_event"') || !line.includes('"type":"ready"')) continue;
    const j = JSON.parse(line) as { ready?: boolean; time: string };
    if (j.ready) at = Date.parse(j.time);
  }
  return at;
}

/** The router's `ip -ts monitor route`, logged (for `hopAddedAt`). */
export function monitorRouterRoutes(lab: Lab): string {
  const log = `${lab.stateDir}/rt.routes.log`;
  lab.spawn('rt', ['env', 'TZ=UTC', 'ip', '-ts', 'monitor', 'route'], { log });
  return log;
}

/** When the router's kernel first had a next hop via `addr` at or after `since` (epoch ms), from the monitor's log. */
export async function hopAddedAt(log: string, addr: string, since: number): Promise<number | undefined> {
  const text = await readFile(log, 'utf8').catch(() => '');
  // A multipath route is printed over several lines, the stamp and "Deleted" on the first
  // only: "[stamp] SERVICE via ADDR ..." or "[stamp] SERVICE proto bird" then "nexthop via ADDR ...".
  let stamp = 0;
  let deleted = false;
  for (const line of text.split('\n')) {
    const m = /^\[(\S+)\]/.exec(line);
    if (m) [stamp, deleted] = [Date.parse(`${m[1]}Z`), line.includes('Deleted')];
    if (stamp >= since && !deleted && line.includes(`via ${addr} `)) return stamp;
  }
  return undefined;
}

/** The router's BFD sessions: neighbour address -> state (Up, Down, Init, AdminDown), as its BIRD says. */
export async function routerBfdSessions(lab: Lab): Promise<Record<string, string>> {
  const out = await lab.exec('rt', ['birdc', '-s', birdPaths(lab.stateDir, 'rt').socket, 'show', 'bfd', 'sessions']);
  return Object.fromEntries([...out.matchAll(/^(\d+\.\d+\.\d+\.\d+|[0-9a-f:]+:[0-9a-f:]*)\s+\S+\s+(Up|Down|Init|AdminDown)\b/gm)].map((m) => [m[1]!, m[2]!]));
}
