/**
 * PURE: turns a {@link LabSpec} into the iproute2 batches that build it. Kept apart from
 * the adapter so the exact commands can be read and unit-tested without root.
 */
import { NAMESPACE_SYSCTLS, bootAddresses, namespacesOf, type HostSpec, type LabSpec } from './topology.js';

export interface NamespaceBatch {
  ns: string;
  /** Lines for `ip -n NS -batch -` (arguments never contain whitespace). */
  lines: string[];
}

export interface BuildPlan {
  /** Namespaces to create, switch first. */
  namespaces: string[];
  /** Sysctls per namespace, applied before any veth is created. */
  sysctls: { ns: string; values: Record<string, string> }[];
  /** Bridges and veth pairs, run in the switch namespace (the veth peers land in the hosts). */
  switchBatch: NamespaceBatch;
  /** Addresses, links up and routes, one batch per host namespace. */
  hostBatches: NamespaceBatch[];
}

export function buildPlan(spec: LabSpec): BuildPlan {
  const namespaces = namespacesOf(spec);
  const sysctls = [
    { ns: spec.switchNs, values: { ...NAMESPACE_SYSCTLS } },
    ...spec.hosts.map((h) => ({ ns: h.ns, values: { ...NAMESPACE_SYSCTLS, ...h.sysctls } })),
  ];
  const sw: string[] = ['link set lo up'];
  for (const br of spec.bridges) {
    sw.push(`link add ${br} type bridge mcast_snooping 0`, `link set ${br} up`);
  }
  for (const h of spec.hosts) {
    for (const i of h.ifaces) {
      if (i.direct) {
        // The cable: created from the first end; the other end lands in its peer directly.
        const peer = spec.hosts.find((o) => o !== h && o.ifaces.some((x) => x.direct && x.bridge === i.bridge));
        if (peer && spec.hosts.indexOf(peer) > spec.hosts.indexOf(h)) {
          sw.push(`link add ${i.port} type veth peer name ${i.name} netns ${peer.ns}`, `link set ${i.port} netns ${h.ns}`);
        }
        continue;
      }
      sw.push(
        `link add ${i.port} type veth peer name ${i.name} netns ${h.ns}`,
        `link set ${i.port} master ${i.bridge}`,
        `link set ${i.port} up`,
      );
    }
  }
  return {
    namespaces,
    sysctls,
    switchBatch: { ns: spec.switchNs, lines: sw },
    hostBatches: spec.hosts.map((h) => ({ ns: h.ns, lines: hostLines(h, spec) })),
  };
}

/** Brings a host's interfaces up with their boot addresses and its default route. */
export function hostLines(h: HostSpec, spec?: LabSpec): string[] {
  const lines = ['link set lo up'];
  for (const i of h.ifaces) {
    // The end of a cable created here under its temporary name takes its real name.
    const peer = spec?.hosts.find((o) => o !== h && o.ifaces.some((x) => x.direct && x.bridge === i.bridge));
    if (i.direct && peer && spec && spec.hosts.indexOf(peer) > spec.hosts.indexOf(h)) lines.push(`link set ${i.port} name ${i.name}`);
    for (const a of bootAddresses(i)) lines.push(`address add ${a} dev ${i.name}`);
    lines.push(`link set ${i.name} up`);
  }
  lines.push(...routeLines(h));
  return lines;
}

/** The host's static routes, idempotent (`replace`): re-applied after a link comes back. */
export function routeLines(h: HostSpec): string[] {
  const first = h.ifaces[0];
  if (!first) return [];
  return [
    ...(h.gateway !== null ? [`route replace default via ${h.gateway} dev ${first.name}`] : []),
    ...(h.gateway6 ? [`route replace default via ${h.gateway6} dev ${first.name}`] : []),
  ];
}
