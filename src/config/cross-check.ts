/**
 * Checks across keys that a schema cannot express: references to interface roles,
 * duplicate VRIDs on one interface, overlapping services, nodes without an address
 * where the cluster needs one. Pure: the config in, the problems out.
 */
import { ipFamily, isLinkLocal, parsePrefix } from '../lib/ip.js';
import { advertIntervalProblem } from '../codec/vrrp/packet.js';
import type { Config } from './schema.js';
import { sharingOuter } from './sharing.js';
import { tableSizeProblem } from '../balancer/schedulers.js';
import type { ConfigIssue } from './issues.js';

/** What each check shares: the config, the roles it defines, and where the problems go. */
interface Check {
  c: Config;
  roles: Set<string>;
  roleList: string;
  issues: ConfigIssue[];
  /** A reference to an interface role: it must be defined. */
  needRole: (role: string, path: (string | number)[]) => void;
}

export function crossCheck(c: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const roles = new Set(Object.keys(c.interfaces));
  const roleList = [...roles].join(', ') || '(none)';
  const needRole = (role: string, path: (string | number)[]) => {
    if (!roles.has(role)) issues.push({ path, message: `unknown interface "${role}" (interfaces defines: ${roleList})` });
  };
  const k: Check = { c, roles, roleList, issues, needRole };

  // A role's node addresses are of one family on every node: the sync and its BEATs talk between them.
  const roleFamily = new Map<string, { family: number; node: string }>();
  for (const [name, node] of Object.entries(c.nodes)) {
    for (const role of Object.keys(node.addresses)) needRole(role, ['nodes', name, 'addresses', role]);
    for (const role of Object.keys(node.interfaces)) needRole(role, ['nodes', name, 'interfaces', role]);
    for (const [role, a] of Object.entries(node.addresses)) {
      const family = ipFamily(a.split('/')[0] ?? '');
      const first = roleFamily.get(role);
      if (!first) roleFamily.set(role, { family, node: name });
      else if (first.family !== family) issues.push({ path: ['nodes', name, 'addresses', role], message: `is IPv${family} where node ${first.node}'s address on "${role}" is IPv${first.family}: the nodes talk over it in one family` });
    }
  }
  checkVrrp(k);
  checkSharing(k);
  checkBgp(k);
  if (c.state_sync) {
    needRole(c.state_sync.interface, ['state_sync', 'interface']);
    for (const [n, node] of Object.entries(c.nodes)) {
      if (roles.has(c.state_sync.interface) && !node.addresses[c.state_sync.interface]) {
        issues.push({ path: ['nodes', n, 'addresses'], message: `has no address on the state sync interface "${c.state_sync.interface}"` });
      }
    }
  }
  c.firewall.nat.forEach((n, i) => needRole(n.out, ['firewall', 'nat', i, n.kind, 'out']));
  checkRules(k);
  checkServices(k);
  return issues;
}

/**
 * VRRP: roles exist, VRIDs unique per interface, every node has an address there (peers'
 * VRRP is accepted only from those addresses), v2 is IPv4 only.
 */
function checkVrrp({ c, roles, issues, needRole }: Check): void {
  if (!c.vrrp) return;
  const iv = advertIntervalProblem(c.vrrp.version, c.vrrp.advert_interval);
  if (iv) issues.push({ path: ['vrrp', 'advert_interval'], message: iv });
  const vridOwner = new Map<string, string>();
  for (const [g, group] of Object.entries(c.vrrp.groups)) {
    for (const [iname, inst] of Object.entries(group.instances)) {
      const at = ['vrrp', 'groups', g, 'instances', iname];
      needRole(inst.interface, [...at, 'interface']);
      const fams = new Set(inst.addresses.map((a) => ipFamily(a.split('/')[0] ?? '')));
      // IPv4 and IPv6 virtual routers are apart (RFC 9568 7.3: the VRID space is per family).
      const family = fams.has(6) ? 'IPv6' : 'IPv4';
      const key = `${inst.interface}/${family}/${inst.vrid}`;
      const prior = vridOwner.get(key);
      if (prior) issues.push({ path: [...at, 'vrid'], message: `VRID ${inst.vrid} is already used over ${family} on interface "${inst.interface}" by ${prior}` });
      else vridOwner.set(key, `vrrp.groups.${g}.instances.${iname}`);
      if (fams.size > 1) issues.push({ path: [...at, 'addresses'], message: 'mixes IPv4 and IPv6 addresses; use one instance per family' });
      if (c.vrrp.version === 2 && fams.has(6)) issues.push({ path: [...at, 'addresses'], message: 'VRRP version 2 (RFC 3768) carries IPv4 addresses only' });
      else if (fams.has(6)) {
        // RFC 9568 5.2.9: an IPv6 virtual router's first address is its link-local one.
        const first = inst.addresses[0]?.split('/')[0] ?? '';
        if (!isLinkLocal(first)) issues.push({ path: [...at, 'addresses', 0], message: `an IPv6 instance's first address must be its link-local virtual address (RFC 9568 5.2.9), e.g. "fe80::${inst.vrid.toString(16)}/64" before "${first}"` });
        if (c.vrrp.unicast) issues.push({ path: ['vrrp', 'unicast'], message: `IPv6 VRRP runs on multicast (ff02::12) only; instance ${g}.${iname} is IPv6` });
      }
      for (const [n, node] of Object.entries(c.nodes)) {
        if (roles.has(inst.interface) && !node.addresses[inst.interface]) {
          issues.push({ path: ['nodes', n, 'addresses'], message: `has no address on interface "${inst.interface}", which VRRP instance ${g}.${iname} runs on` });
        }
      }
    }
    group.track.interfaces.forEach((r, i) => needRole(r, ['vrrp', 'groups', g, 'track', 'interfaces', i]));
    group.track.services.forEach((s, i) => {
      if (!c.services[s]) issues.push({ path: ['vrrp', 'groups', g, 'track', 'services', i], message: `unknown service "${s}"` });
    });
  }
}

/** BGP: the relay role exists, needs sharing, and every node has an IPv4 address on it (the next hop). */
function checkBgp({ c, roles, issues, needRole }: Check): void {
  const relay = c.bgp?.relay;
  if (relay === undefined) return;
  needRole(relay, ['bgp', 'relay']);
  if (!c.sharing) issues.push({ path: ['bgp', 'relay'], message: 'relays to the owner of a flow\'s bucket: it needs sharing:' });
  const v6 = [...Object.entries(c.services).filter(([, s]) => s.listen.family === 6).map(([n]) => `services.${n}`), ...c.bgp!.addresses.filter((a) => ipFamily(a) === 6)];
  if (v6.length) issues.push({ path: ['bgp', 'relay'], message: `relays IPv4 only so far; announced IPv6 addresses would lose the flows of other nodes' buckets: ${v6.join(', ')}` });
  for (const [nn, node] of Object.entries(c.nodes)) {
    const a = node.addresses[relay];
    if (roles.has(relay) && (!a || ipFamily(a.split('/')[0] ?? '') !== 4)) issues.push({ path: ['nodes', nn, 'addresses', relay], message: `needs an IPv4 address on interface "${relay}": the other nodes relay the flows of its buckets to it (bgp.relay)` });
  }
}

/**
 * Sharing: every node carries the shared addresses; the state sync with its liveness decides
 * who is live; an address is shared or VRRP's, never both.
 */
function checkSharing({ c, roles, issues, needRole }: Check): void {
  if (!c.sharing) return;
  const n = Object.keys(c.nodes).length;
  if (!c.state_sync || c.state_sync.liveness === false) issues.push({ path: ['sharing'], message: 'needs state_sync with its liveness on: the nodes learn who is live from the BEATs, and each must hold the flows of the others' });
  if (!c.cluster.key_file) issues.push({ path: ['sharing'], message: 'needs cluster.key_file: the state sync and the BEATs that decide who carries which flows are authenticated with it' });
  if (n < 2 || n > 8) issues.push({ path: ['sharing'], message: `shares between 2 and 8 nodes; ${n} are configured` });
  if (c.sharing.buckets < 8 * n) issues.push({ path: ['sharing', 'buckets'], message: `${c.sharing.buckets} buckets are too few for ${n} nodes (at least 8 per node, for an even share)` });
  // A link-local address is one per link: the same one on two links is two addresses.
  const key = (role: string, a: string) => (isLinkLocal(a) ? `${role} ${a}` : a);
  const vrrpAddresses = new Set(Object.values(c.vrrp?.groups ?? {}).flatMap((g) => Object.values(g.instances).flatMap((i) => i.addresses.map((a) => key(i.interface, a.split('/')[0]!)))));
  const macs = new Map<string, string>();
  for (const [role, list] of Object.entries(c.sharing.addresses)) {
    needRole(role, ['sharing', 'addresses', role]);
    list.forEach((a, i) => {
      if (vrrpAddresses.has(key(role, a.split('/')[0]!))) issues.push({ path: ['sharing', 'addresses', role, i], message: `${a} is also a VRRP address: an address is shared or VRRP's, not both` });
    });
    for (const [nn, node] of Object.entries(c.nodes)) {
      if (roles.has(role) && !node.addresses[role]) issues.push({ path: ['nodes', nn, 'addresses'], message: `has no address on interface "${role}", which carries shared addresses (its BEATs and ARP use it)` });
    }
  }
  if (c.sharing.outer !== undefined) needRole(c.sharing.outer, ['sharing', 'outer']);
  for (const [name, svc] of Object.entries(c.services)) {
    if (svc.scheduler === 'rr' || svc.scheduler === 'wrr') {
      issues.push({ path: ['services', name, 'scheduler'], message: `${svc.scheduler} is not for sharing: each node would pick its own backend, and a flow that changes node before its entry is replicated would change backend; use maglev (the default with sharing) or source-hash` });
    }
  }
  if (!sharingOuter(c)) issues.push({ path: ['sharing'], message: 'cannot tell which interface faces the clients (the flows are hashed on their endpoint there): set sharing.outer to its role' });
  for (const [role, mac] of Object.entries(c.sharing.mac)) {
    if (!c.sharing.addresses[role]) issues.push({ path: ['sharing', 'mac', role], message: `interface "${role}" has no shared addresses` });
    const prior = macs.get(mac);
    if (prior) issues.push({ path: ['sharing', 'mac', role], message: `${mac} is already the shared MAC of "${prior}"` });
    macs.set(mac, role);
  }
}

/** Firewall rules: ports only with TCP or UDP; each side a prefix, a role, "any", or (as a destination only, alone) "self". */
function checkRules({ c, roles, roleList, issues }: Check): void {
  c.firewall.rules.forEach((r, i) => {
    const key = r.action === 'accept' ? 'allow' : 'drop';
    const at = ['firewall', 'rules', i, key];
    const ports = r.port !== undefined;
    if (ports && r.proto !== 'tcp' && r.proto !== 'udp') issues.push({ path: [...at, 'port'], message: `ports need proto tcp or udp (proto is ${r.proto})` });
    for (const side of ['from', 'to'] as const) {
      const values = r[side] ?? [];
      values.forEach((v) => {
        const p = [...at, side];
        if (v === 'any' || roles.has(v) || parsePrefix(v)) return;
        if (v === 'self') {
          if (side === 'from') issues.push({ path: p, message: '"self" is allowed only in "to" (traffic to the firewall itself)' });
          else if (values.length > 1) issues.push({ path: p, message: '"self" cannot be combined with other destinations' });
          return;
        }
        issues.push({ path: p, message: `"${v}" is neither a prefix, an interface (${roleList}), "any" nor "self"` });
      });
    }
  });
}

/**
 * Services: no two on the same address, port and protocol; backends unique and of the
 * service's family; kernel object names (svc_<name>, "-" becoming "_") distinct; a health
 * check of one kind, its timeout shorter than its interval.
 */
function checkServices({ c, issues }: Check): void {
  const listens = new Map<string, string>();
  const objects = new Map<string, string>();
  for (const [s, svc] of Object.entries(c.services)) {
    const key = `${svc.listen.address}|${svc.listen.port}|${svc.listen.proto}`;
    const prior = listens.get(key);
    if (prior) issues.push({ path: ['services', s, 'listen'], message: `overlaps service "${prior}" (same address, port and protocol)` });
    else listens.set(key, s);
    const obj = s.replace(/-/g, '_');
    const clash = objects.get(obj);
    if (clash) issues.push({ path: ['services', s], message: `the name is too close to service "${clash}" (both become svc_${obj} in the kernel)` });
    else objects.set(obj, s);
    if (svc.table_size !== undefined) {
      const problem = tableSizeProblem(svc.scheduler, svc.table_size);
      if (problem) issues.push({ path: ['services', s, 'table_size'], message: problem });
    }
    const seen = new Map<string, string>();
    for (const [b, be] of Object.entries(svc.backends)) {
      if (be.address.family !== svc.listen.family) {
        issues.push({ path: ['services', s, 'backends', b, 'address'], message: `is IPv${be.address.family} but the service listens on IPv${svc.listen.family}` });
      }
      const target = `${be.address.address}:${be.address.port ?? svc.listen.port}`;
      const dup = seen.get(target);
      if (dup) issues.push({ path: ['services', s, 'backends', b, 'address'], message: `${target} is already backend "${dup}"` });
      else seen.set(target, b);
    }
    if (Object.values(svc.backends).every((be) => be.weight === 0)) {
      issues.push({ path: ['services', s, 'backends'], message: 'every backend has weight 0: the service could never send a flow anywhere' });
    }
    const h = svc.health;
    if (h) {
      const kinds = (h.tcp ? 1 : 0) + (h.http ? 1 : 0) + (h.script ? 1 : 0);
      if (kinds !== 1) issues.push({ path: ['services', s, 'health'], message: 'needs exactly one of "tcp", "http" or "script"' });
      if (h.timeout >= h.interval) issues.push({ path: ['services', s, 'health', 'timeout'], message: `(${h.timeout} ms) must be shorter than the interval (${h.interval} ms)` });
    }
  }
}
