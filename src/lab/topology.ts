/**
 * The lab's topology as pure data: names, namespaces, interfaces and addresses of the
 * "firewall sandwich" (PRODUCT.md, "The lab topology"). No I/O here: everything the
 * orchestrator builds, verifies or tears down is derived from a {@link LabSpec}.
 *
 * ```
 *  clientN ns ── bridge "out" 198.18.0.0/24 ── fwN eth0    VIP 198.18.0.100 (outside)
 *                                              fwN eth2 ── bridge "sync" 198.18.2.0/24
 *  webN ns   ── bridge "in"  198.18.1.0/24 ── fwN eth1    VIP 198.18.1.1 (servers' gateway)
 * ```
 * All addresses are in 198.18.0.0/15 (RFC 2544's benchmarking range). Every lab is dual
 * stack: each bridge has an IPv6 subnet in 2001:2::/48 (RFC 5180's benchmarking range) with
 * the same host numbers, and clients and servers route IPv6 through the link-local virtual
 * address fe80::1 (an IPv6 VRRP instance's first address; examples/dual-stack.yaml).
 */
import { FwlbError } from '../lib/errors.js';

export type TopologyName = 'single' | 'sandwich' | 'trio' | 'active-active' | 'bgp';
export type HostRole = 'fw' | 'client' | 'web' | 'router';
export type BridgeName = 'out' | 'in' | 'sync' | 'edge';

/** Node counts of each named topology. */
export const TOPOLOGIES: Readonly<Record<TopologyName, Readonly<LabCounts>>> = {
  single: { fws: 1, clients: 1, backends: 2 },
  sandwich: { fws: 2, clients: 1, backends: 2 },
  trio: { fws: 3, clients: 2, backends: 3 },
  // The trio's hosts, for examples/active-active.yaml: `fwlb lab up` writes that cluster file.
  'active-active': { fws: 3, clients: 2, backends: 3 },
  // Issue 26: the firewalls behind a router (rt) that learns the service addresses by BGP and
  // spreads the flows by ECMP; the clients on the router's other side.
  bgp: { fws: 4, clients: 2, backends: 3 },
};

export const DEFAULT_TOPOLOGY: TopologyName = 'sandwich';
export const DEFAULT_PREFIX = 'fwlb';
/** Where labs keep their state file and logs: `<root>/<prefix>/`. */
export const LAB_STATE_ROOT = '/run/fwlb-lab';

/** The two virtual addresses the cluster serves (moved by VRRP, or pinned with `vipsOn`). */
export const LAB_VIPS = { outside: '198.18.0.100', inside: '198.18.1.1' } as const;
export const LAB_SUBNETS: Readonly<Record<BridgeName, string>> = {
  out: '198.18.0.0/24',
  in: '198.18.1.0/24',
  sync: '198.18.2.0/24',
  edge: '198.18.3.0/24',
};
const PREFIX_LEN = 24;
/**
 * The `bgp` topology's router: .1 on the clients' segment (their gateway) and on the edge
 * segment the firewalls' uplinks share (their default route; each a BGP neighbour of it).
 */
export const LAB_ROUTER = { outside: '198.18.0.1', edge: '198.18.3.1', outside6: '2001:2::1', edge6: '2001:2:3::1' } as const;
/** The IPv6 side of the lab: the same host numbers, written in IPv6 (`2001:2::10` for .10). */
export const LAB_VIPS6 = { outside: '2001:2::100', inside: '2001:2:1::1', gateway: 'fe80::1' } as const;
export const LAB_SUBNETS6: Readonly<Record<BridgeName, string>> = {
  out: '2001:2::/64',
  in: '2001:2:1::/64',
  sync: '2001:2:2::/64',
  edge: '2001:2:3::/64',
};
const PREFIX_LEN6 = 64;

/**
 * Bounds that keep the address plan free of overlaps: fw outside .2-.9 below clients
 * .10-.99 below the VIP .100; fw inside .2-.9 below webs .11 and up.
 */
export const LAB_LIMITS: Readonly<Record<keyof LabCounts, readonly [number, number]>> = {
  fws: [1, 8],
  clients: [1, 90],
  backends: [1, 200],
};

export interface LabCounts {
  /** Firewall nodes fw1..fwN. */
  fws: number;
  /** Client hosts on the outside bridge. */
  clients: number;
  /** Web servers (backends) on the inside bridge. */
  backends: number;
}

export interface LabOptions {
  /** Namespace and state prefix, `[a-z][a-z0-9_]{0,11}`; default `fwlb`. */
  prefix?: string;
  topology?: TopologyName;
  nodes?: number;
  clients?: number;
  backends?: number;
  /** Put both VIPs statically on this firewall node (e.g. `fw1`), for use before VRRP runs. */
  vipsOn?: string;
}

/** One interface of a host: a veth whose other end (`port`) is plugged into `bridge`. */
export interface IfaceSpec {
  /** Name inside the host's namespace: eth0, eth1, eth2. */
  name: string;
  bridge: BridgeName;
  /** Name of the peer end in the switch namespace, at most 15 characters. */
  port: string;
  /** The host's own ("base") address, without prefix length. */
  address: string;
  prefixLen: number;
  /** Extra addresses pinned on this interface by `vipsOn`. */
  vips: string[];
  /** The host's IPv6 address there (prefix length 64), without prefix length. */
  address6: string;
  /**
   * A direct link (a crossover cable) instead of a switch port: the sync link of a
   * two-firewall lab, as pfsync and conntrackd setups recommend. Either end going down is
   * carrier loss at the other. `port` is then only the name the veth is created under.
   */
  direct: boolean;
}

export interface HostSpec {
  /** Short node name: fw1, client1, web1. */
  name: string;
  role: HostRole;
  /** Network namespace: `<prefix>-<name>`. */
  ns: string;
  ifaces: IfaceSpec[];
  /** Default gateway, for clients and webs. */
  gateway: string | null;
  /** IPv6 default gateway (link-local, on the first interface), for clients and webs. */
  gateway6?: string | null;
  /** Whether the host runs the lab's backend server (clients and webs do). */
  runsServer: boolean;
  /** Sysctls set in this namespace (besides the IPv6 DAD ones every namespace gets). */
  sysctls: Record<string, string>;
}

export interface LabSpec {
  prefix: string;
  topology: TopologyName;
  counts: LabCounts;
  vipsOn: string | null;
  /** The namespace holding the bridges. */
  switchNs: string;
  bridges: BridgeName[];
  hosts: HostSpec[];
  stateDir: string;
}

/** Sysctls applied in every namespace, before any interface exists: no IPv6 DAD delays. */
export const NAMESPACE_SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv6.conf.all.accept_dad': '0',
  'net.ipv6.conf.default.accept_dad': '0',
};

const PREFIX_RE = /^[a-z][a-z0-9_]{0,11}$/;
const TOPOLOGY_NAMES = Object.keys(TOPOLOGIES) as TopologyName[];

export function isTopologyName(s: string): s is TopologyName {
  return (TOPOLOGY_NAMES as string[]).includes(s);
}

/**
 * Checks a lab prefix. No dash is allowed, so `P-` can never match another lab's
 * namespaces (prefix `a` against a lab `a-b`).
 */
export function validatePrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) {
    throw new FwlbError('ERR_LAB_PREFIX', `invalid lab prefix "${prefix}": expected ${PREFIX_RE.source}`);
  }
  return prefix;
}

export function stateDirOf(prefix: string): string {
  return `${LAB_STATE_ROOT}/${validatePrefix(prefix)}`;
}

function checkCount(what: keyof LabCounts, n: number): number {
  const [lo, hi] = LAB_LIMITS[what];
  if (!Number.isInteger(n) || n < lo || n > hi) {
    throw new FwlbError('ERR_LAB_COUNT', `invalid ${what} count ${n}: expected an integer in ${lo}..${hi}`);
  }
  return n;
}

function iface(name: string, bridge: BridgeName, port: string, hostByte: number, vips: string[] = [], direct = false): IfaceSpec {
  const subnet = LAB_SUBNETS[bridge].split('.').slice(0, 3).join('.');
  const subnet6 = LAB_SUBNETS6[bridge].replace('::/64', '');
  return { name, bridge, port, address: `${subnet}.${hostByte}`, prefixLen: PREFIX_LEN, vips, address6: `${subnet6}::${hostByte}`, direct };
}

/** Builds the full description of a lab from options; throws FwlbError on bad options. */
export function describeLab(opts: LabOptions = {}): LabSpec {
  const prefix = validatePrefix(opts.prefix ?? DEFAULT_PREFIX);
  const topology = opts.topology ?? DEFAULT_TOPOLOGY;
  if (!isTopologyName(topology)) {
    throw new FwlbError('ERR_LAB_TOPOLOGY', `unknown topology "${String(topology)}": expected ${TOPOLOGY_NAMES.join(', ')}`);
  }
  const base = TOPOLOGIES[topology];
  const counts: LabCounts = {
    fws: checkCount('fws', opts.nodes ?? base.fws),
    clients: checkCount('clients', opts.clients ?? base.clients),
    backends: checkCount('backends', opts.backends ?? base.backends),
  };
  const vipsOn = opts.vipsOn ?? null;
  if (vipsOn !== null && !/^fw[1-9]$/.test(vipsOn)) {
    throw new FwlbError('ERR_LAB_VIPS_ON', `--vips-on must name a firewall node (fw1..fw${counts.fws}), got "${vipsOn}"`);
  }
  if (vipsOn !== null && Number(vipsOn.slice(2)) > counts.fws) {
    throw new FwlbError('ERR_LAB_VIPS_ON', `--vips-on ${vipsOn}: the lab has only fw1..fw${counts.fws}`);
  }

  const ns = (name: string): string => `${prefix}-${name}`;
  const hosts: HostSpec[] = [];
  // Two firewalls: their sync link is a cable between them; more: a switch.
  const directSync = counts.fws === 2;
  const routed = topology === 'bgp';
  const forwarding = { 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '1' };
  if (routed) {
    // ECMP over the ports too (L4 hash), both families: the setting is per namespace.
    hosts.push({
      name: 'rt', role: 'router', ns: ns('rt'),
      ifaces: [iface('eth0', 'out', 'rt-out', 1), iface('eth1', 'edge', 'rt-edge', 1)],
      gateway: null, runsServer: false,
      sysctls: { ...forwarding, 'net.ipv4.fib_multipath_hash_policy': '1', 'net.ipv6.fib_multipath_hash_policy': '1' },
    });
  }
  for (let n = 1; n <= counts.fws; n++) {
    const name = `fw${n}`;
    const pinned = vipsOn === name;
    hosts.push({
      name,
      role: 'fw',
      ns: ns(name),
      ifaces: [
        routed ? iface('eth0', 'edge', `${name}-edge`, 1 + n) : iface('eth0', 'out', `${name}-out`, 1 + n, pinned ? [LAB_VIPS.outside] : []),
        iface('eth1', 'in', `${name}-in`, 1 + n, pinned ? [LAB_VIPS.inside] : []),
        iface('eth2', 'sync', `${name}-sync`, n, [], directSync),
      ],
      ...(routed ? { gateway: LAB_ROUTER.edge, gateway6: LAB_ROUTER.edge6 } : { gateway: null }),
      runsServer: false,
      sysctls: forwarding,
    });
  }
  for (let i = 1; i <= counts.clients; i++) {
    const name = `client${i}`;
    hosts.push({
      name, role: 'client', ns: ns(name), ifaces: [iface('eth0', 'out', name, 9 + i)],
      ...(routed ? { gateway: LAB_ROUTER.outside, gateway6: LAB_ROUTER.outside6 } : { gateway: LAB_VIPS.outside, gateway6: LAB_VIPS6.gateway }),
      runsServer: true, sysctls: {},
    });
  }
  for (let i = 1; i <= counts.backends; i++) {
    const name = `web${i}`;
    hosts.push({
      name, role: 'web', ns: ns(name), ifaces: [iface('eth0', 'in', name, 10 + i)],
      gateway: LAB_VIPS.inside, gateway6: LAB_VIPS6.gateway, runsServer: true, sysctls: {},
    });
  }
  return {
    prefix,
    topology,
    counts,
    vipsOn,
    switchNs: ns('sw'),
    bridges: [...(directSync ? ['out', 'in'] : ['out', 'in', 'sync']), ...(routed ? ['edge'] : [])] as BridgeName[],
    hosts,
    stateDir: stateDirOf(prefix),
  };
}

/** Finds a host by node name (`fw1`) or namespace name (`fwlb-fw1`); throws if unknown. */
export function findHost(spec: LabSpec, nodeOrNs: string): HostSpec {
  const h = spec.hosts.find((x) => x.name === nodeOrNs || x.ns === nodeOrNs);
  if (!h) {
    throw new FwlbError('ERR_LAB_NODE', `no node "${nodeOrNs}" in lab ${spec.prefix} (nodes: ${spec.hosts.map((x) => x.name).join(', ')})`);
  }
  return h;
}

/** Finds an interface of a host; throws if unknown. */
export function findIface(host: HostSpec, name: string): IfaceSpec {
  const i = host.ifaces.find((x) => x.name === name);
  if (!i) {
    throw new FwlbError('ERR_LAB_IFACE', `node ${host.name} has no interface "${name}" (has ${host.ifaces.map((x) => x.name).join(', ')})`);
  }
  return i;
}

/** Every address a host has when it boots: its base addresses plus pinned VIPs, as CIDRs. */
export function bootAddresses(iface: IfaceSpec): string[] {
  return [...[iface.address, ...iface.vips].map((a) => `${a}/${iface.prefixLen}`), ...(iface.address6 ? [`${iface.address6}/${PREFIX_LEN6}`] : [])];
}

/** All namespaces of the lab, switch first. */
export function namespacesOf(spec: LabSpec): string[] {
  return [spec.switchNs, ...spec.hosts.map((h) => h.ns)];
}

/** Two specs describe the same lab (so `up` may keep the running one). */
export function sameLab(a: LabSpec, b: LabSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
