/**
 * The firewall compiler: a pure function from the cluster config and one node's
 * view of it to an nftables script. The script replaces fwlb's own table
 * (`inet fwlb`) in one transaction and never touches any other table.
 *
 * The ruleset is "well-formed":
 *  - default drop on input and forward; `ct state established,related accept` first,
 *    `ct state invalid drop` next;
 *  - a new TCP flow that does not start with a bare SYN is dropped, so sessions survive
 *    a failover only through state sync, never by loose pickup;
 *  - nothing is rejected: what is not allowed is dropped (a reject during a failover
 *    kills sessions the peer could have carried);
 *  - VRRP and state sync are accepted only from the peers, on their interfaces;
 *  - blocked prefixes are dropped before connection tracking (priority raw), so they
 *    cost no conntrack entry;
 *  - address and port lists are sets and maps, not chains of rules.
 * Output is deterministic: the same input gives byte-identical output.
 */
import { bgpAddresses } from '../config/bgp.js';
import { defaultSeed, natPortRange } from '../fsm/sharing.js';
import { livenessPort } from '../config/schema.js';
import { createHash } from 'node:crypto';
import type { Config, RuleConfig, ServiceConfig } from '../config/schema.js';
import type { NodeView } from '../config/node.js';
import { sharingOuter } from '../config/sharing.js';
import { bareAddress, ipFamily, isLinkLocal, parsePrefix, prefixContains, prefixText, type Prefix } from '../lib/ip.js';
import type { BackendSlot } from '../balancer/table.js';
import { schedulerFor, type SchedBackend } from '../balancer/schedulers.js';
import { serviceSeed } from '../balancer/hash.js';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'fwlb';

export interface CompileInput {
  config: Config;
  node: NodeView;
  blocklist: readonly string[];
  /**
   * The slot table per service as the load balancer keeps it at runtime (health,
   * drain, runtime changes). Without it, every enabled backend of weight > 0 takes flows.
   */
  serviceSlots?: Readonly<Record<string, readonly (BackendSlot | null)[]>>;
  /**
   * Sharing: the buckets this node owns now, as conntrack marks (fsm/sharing.ts). Without
   * it the set starts empty and the sharing service fills it.
   */
  sharedOwned?: readonly number[];
}

/** The default shared MAC of an interface role: 01:00:5e:7f:fb:NN, NN its index among the roles (sorted). */
export function defaultSharedMac(roles: readonly string[], role: string): string {
  const i = [...roles].sort().indexOf(role);
  return `01:00:5e:7f:fb:${Math.max(0, i).toString(16).padStart(2, '0')}`;
}

/** The links besides the sync link that carry BEATs: those with shared addresses (sharing with liveness). */
export function beatRoles(c: Config): string[] {
  if (!c.sharing || !c.state_sync || c.state_sync.liveness === false) return [];
  return Object.keys(c.sharing.addresses).filter((r) => r !== c.state_sync!.interface).sort();
}

/** The shared MAC of each role that carries shared addresses. */
export function sharedMacs(c: Config): Record<string, string> {
  const out: Record<string, string> = {};
  if (!c.sharing) return out;
  for (const role of Object.keys(c.sharing.addresses).sort()) out[role] = c.sharing.mac[role] ?? defaultSharedMac(Object.keys(c.interfaces), role);
  return out;
}

const q = (s: string) => `"${s}"`;
const set = (items: readonly string[]) => (items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`);
const bare = bareAddress;

/** Drops prefixes contained in another (nft rejects overlapping interval elements) and sorts. */
export function aggregatePrefixes(prefixes: readonly string[]): { v4: string[]; v6: string[] } {
  const parsed = prefixes.map((p) => parsePrefix(p)).filter((p): p is Prefix => p !== undefined);
  parsed.sort((a, b) => a.family - b.family || (a.net < b.net ? -1 : a.net > b.net ? 1 : a.len - b.len));
  const out: { v4: string[]; v6: string[] } = { v4: [], v6: [] };
  let last: Prefix | undefined;
  for (const p of parsed) {
    if (last && prefixContains(last, p)) continue;
    last = p;
    (p.family === 4 ? out.v4 : out.v6).push(prefixText(p));
  }
  return out;
}

/** A rule's match expression for one side, split by kind: interfaces and each family. */
interface Side {
  roles: string[];
  v4: string[];
  v6: string[];
  any: boolean;
}

function side(values: readonly string[] | undefined, roles: ReadonlySet<string>): Side {
  const s: Side = { roles: [], v4: [], v6: [], any: values === undefined || values.includes('any') };
  for (const v of values ?? []) {
    if (v === 'any' || v === 'self') continue;
    if (roles.has(v)) s.roles.push(v);
    else {
      const p = parsePrefix(v);
      if (p) (p.family === 4 ? s.v4 : s.v6).push(prefixText(p));
    }
  }
  return s;
}

/** Alternatives of one side: [interface match | v4 match | v6 match], each with its family (0 = any). */
function alternatives(s: Side, dir: 'saddr' | 'daddr', ifkey: 'iifname' | 'oifname', ifnames: (r: string) => string): [string, 0 | 4 | 6][] {
  if (s.any) return [['', 0]];
  const alts: [string, 0 | 4 | 6][] = [];
  if (s.roles.length) alts.push([`${ifkey} ${set(s.roles.map((r) => q(ifnames(r))))}`, 0]);
  if (s.v4.length) alts.push([`ip ${dir} ${set(s.v4)}`, 4]);
  if (s.v6.length) alts.push([`ip6 ${dir} ${set(s.v6)}`, 6]);
  return alts;
}

function compileRule(r: RuleConfig, index: number, roles: ReadonlySet<string>, ifname: (r: string) => string): { chain: 'input' | 'forward'; lines: string[] } {
  const chain = r.to?.includes('self') ? 'input' : 'forward';
  const from = alternatives(side(r.from, roles), 'saddr', 'iifname', ifname);
  const to = chain === 'input' ? ([['', 0]] as [string, 0][]) : alternatives(side(r.to, roles), 'daddr', 'oifname', ifname);
  const protoFamily: 0 | 4 | 6 = r.proto === 'icmp' ? 4 : r.proto === 'icmpv6' ? 6 : 0;
  let l4 = '';
  if (r.proto === 'tcp' || r.proto === 'udp') {
    l4 = r.port ? `${r.proto} dport ${set(r.port.map(String))}` : `meta l4proto ${r.proto}`;
  } else if (r.proto === 'icmp') l4 = 'meta l4proto icmp';
  else if (r.proto === 'icmpv6') l4 = 'meta l4proto ipv6-icmp';
  const lines: string[] = [];
  for (const [f, ff] of from) {
    for (const [t, tf] of to) {
      const fams = new Set([ff, tf, protoFamily].filter((x) => x !== 0));
      if (fams.size > 1) continue; // an IPv4 source never meets an IPv6 destination
      const parts = [f, t, l4].filter(Boolean);
      const label = r.comment ? `rules[${index}]: ${r.comment}` : `rules[${index}]`;
      lines.push(`${parts.join(' ')}${parts.length ? ' ' : ''}counter ${r.action} comment ${q(label.replace(/"/g, "'"))}`);
    }
  }
  return { chain, lines };
}

/** One object of the table: its head (`chain input`, `map svc_web`, `counter be_...`) and body lines. */
export interface Block {
  head: string;
  body: string[];
}

/** A compiled ruleset: the table's objects in declaration order, and their digest. */
export interface CompiledRuleset {
  blocks: Block[];
  /** sha256 of the rendered objects (the digest chain itself excluded). */
  digest: string;
  /** The whole script: replaces the table in one transaction. */
  script: string;
}

/** The name of the empty chain that records which ruleset the table holds. */
export const DIGEST_CHAIN_PREFIX = 'digest_';
export const digestChainName = (digest: string) => `${DIGEST_CHAIN_PREFIX}${digest.slice(0, 24)}`;

export function render(blocks: readonly Block[]): string {
  return blocks.map((b) => (b.body.length ? `\t${b.head} {\n${b.body.map((l) => `\t\t${l}`).join('\n')}\n\t}` : `\t${b.head} {\n\t}`)).join('\n\n');
}

/** The names of a service's kernel objects: its slot map and its chain. */
export function serviceMapName(name: string): string {
  return `svc_${name.replace(/-/g, '_')}`;
}

/** A backend's new-connection counter (per backend address and port). */
export function backendCounterName(address: string, port: number): string {
  return `be_${address.replace(/[.:]/g, '_')}_${port}`;
}

/** The backends of a service as configured, for the scheduler. */
export function configuredBackends(svc: ServiceConfig): SchedBackend[] {
  return Object.entries(svc.backends).map(([name, b]) => ({
    name,
    address: b.address.address,
    port: b.address.port ?? svc.listen.port,
    weight: b.weight,
    available: b.state === 'enabled' && b.weight > 0,
  }));
}

/** Map elements of a slot table: "i : address . port" for every slot with a backend. */
export function slotElements(slots: readonly (BackendSlot | null)[]): string[] {
  const out: string[] = [];
  slots.forEach((s, i) => {
    if (s) out.push(`${i} : ${s.address} . ${s.port}`);
  });
  return out;
}

/**
 * Sharing (issue 14): frames sent to a shared MAC reach every node as multicast and are
 * taken as addressed to us; a new flow arriving that way gets its bucket in its conntrack
 * mark (a keyed hash of the first packet's addresses and ports, the same seed on every
 * node: jhash, not symhash, whose secret is per boot), so that every later packet of the
 * flow, both directions and its related flows (ICMP errors, helpers) carry it; a packet of
 * a bucket this node does not own is dropped before conntrack confirms it. The mark is
 * replicated with the entry by the state sync, so a bucket's next owner already holds its
 * flows. Marks 1..N are buckets 0..N-1; mark 0 is not shared traffic.
 */
/** The packets of shared flows this node forwarded, dropped as another node's, dropped with no live daemon. */
export const SHARED_CARRIED_COUNTER = 'shared_carried';
export const SHARED_OTHERS_COUNTER = 'shared_others';
export const SHARED_DEAD_COUNTER = 'shared_no_daemon';

/**
 * The gate that closes a node whose daemon died (kill -9, a crash of the process): a table
 * the daemon creates through its own netlink socket with the `owner` flag, which the kernel
 * deletes when that socket closes, whatever way the process ends. Its one rule marks every
 * frame sent to a shared MAC; the main table drops such frames unmarked. Without it a dead
 * daemon's kernel would go on forwarding its buckets while the survivors take them over.
 */
export const ALIVE_TABLE = 'fwlb_alive';
export const ALIVE_MARK = 0x40000000;
const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** The distinct shared MACs, sorted (for nft sets). */
function sharedMacList(c: Config): string[] {
  return [...new Set(Object.values(sharedMacs(c)))].sort();
}

export function compileAliveGate(c: Config): string {
  if (!c.sharing) return '';
  const macs = sharedMacList(c);
  return [
    `table ${TABLE_FAMILY} ${ALIVE_TABLE} {`,
    '\tflags owner',
    '\tchain gate {',
    '\t\ttype filter hook prerouting priority mangle - 10; policy accept;',
    `\t\tether daddr ${set(macs)} meta mark set meta mark | ${hex(ALIVE_MARK)} comment "this node's fwlb daemon is alive"`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

function sharingBlocks(c: Config, node: NodeView, owned: readonly number[]): Block[] {
  const sh = c.sharing!;
  const outer = sharingOuter(c) ?? Object.keys(sh.addresses).sort()[0]!;
  const outerIf = node.interfaces[outer] ?? outer;
  const macs = sharedMacList(c);
  const seed = `0x${(sh.seed ?? defaultSeed(c.cluster.name)).toString(16).padStart(8, '0')}`;
  const elements = [...owned].sort((a, b) => a - b);
  return [
    ...[SHARED_DEAD_COUNTER, SHARED_OTHERS_COUNTER, SHARED_CARRIED_COUNTER].map((n) => ({ head: `counter ${n}`, body: [] })),
    { head: 'set shared_owned', body: ['type mark', ...(elements.length ? [`elements = { ${elements.join(', ')} }`] : [])] },
    {
      head: 'chain share_prerouting',
      body: [
        'type filter hook prerouting priority mangle; policy accept;',
        `ether daddr ${set(macs)} meta pkttype set host comment "shared MAC: the frame is for every node"`,
        `ether daddr ${set(macs)} meta mark & ${hex(ALIVE_MARK)} == 0 counter name ${SHARED_DEAD_COUNTER} drop comment "no live fwlb daemon holds table ${ALIVE_TABLE}: this node carries no share"`,
        `ether daddr ${set(macs)} meta mark set meta mark & ${hex(~ALIVE_MARK >>> 0)} comment "the gate's mark is ours alone"`,
        // The far endpoint: the source of what arrives from the outer side, the destination of
        // the rest; TCP and UDP with their port, anything else by address alone; each family
        // by its own addresses (the same buckets for both).
        ...(['ip', 'ip6'] as const).flatMap((k) => {
          const fam = `meta nfproto ${k === 'ip' ? 'ipv4' : 'ipv6'}`;
          const hash = (what: string) => `ct mark set jhash ${what} mod ${sh.buckets} seed ${seed} offset 1`;
          return [
            `ct state new ether daddr ${set(macs)} iifname ${q(outerIf)} ${fam} meta l4proto { tcp, udp } ${hash(`${k} saddr . th sport`)} comment "a new shared flow's bucket: its outer endpoint, the source"`,
            `ct state new ether daddr ${set(macs)} iifname ${q(outerIf)} ${fam} meta l4proto != { tcp, udp } ${hash(`${k} saddr`)}`,
            `ct state new ether daddr ${set(macs)} iifname != ${q(outerIf)} ${fam} meta l4proto { tcp, udp } ${hash(`${k} daddr . th dport`)} comment "a new shared flow's bucket: its outer endpoint, the destination"`,
            `ct state new ether daddr ${set(macs)} iifname != ${q(outerIf)} ${fam} meta l4proto != { tcp, udp } ${hash(`${k} daddr`)}`,
          ];
        }),
        ...relayBucketRules(c, node, outerIf, seed),
        `ct mark 1-${sh.buckets} ct mark != @shared_owned counter name ${SHARED_OTHERS_COUNTER} drop comment "another node's bucket"`,
        `ct mark 1-${sh.buckets} counter name ${SHARED_CARRIED_COUNTER} comment "a packet of this node's share"`,
      ],
    },
  ];
}

/**
 * BGP with a relay (compiler/relay.ts): a new flow to an announced address arrives unicast,
 * from the router on the outer link or relayed by another node, not to a shared MAC; its
 * bucket is the one the relay computed (its source endpoint), so that a relayed flow is
 * carried here only if it is ours: relayed at most once, never back.
 */
function relayBucketRules(c: Config, node: NodeView, outerIf: string, seed: string): string[] {
  const relay = c.bgp?.relay;
  const announced = bgpAddresses(c, 4);
  if (!relay || announced.length === 0) return [];
  const relayIf = node.interfaces[relay] ?? relay;
  return [
    `ct state new iifname { ${q(outerIf)}, ${q(relayIf)} } ip daddr ${set(announced)} meta l4proto { tcp, udp } ct mark set jhash ip saddr . th sport mod ${c.sharing!.buckets} seed ${seed} offset 1 comment "a new flow to an announced address, from the router or relayed: its bucket by its source"`,
  ];
}

export function compileRuleset(input: CompileInput): string {
  return compileRulesetParts(input).script;
}

/**
 * The ruleset as objects. Besides the script, the objects let a reload apply only what
 * changed (compiler/delta.ts); the digest, recorded in the table as the name of an empty
 * chain, lets a restart see that the kernel already holds this very ruleset.
 */
export function compileRulesetParts(input: CompileInput): CompiledRuleset {
  const { c, blocks } = compileBlocks(input);
  const digest = createHash('sha256').update(render(blocks)).digest('hex');
  const all = [...blocks, { head: `chain ${digestChainName(digest)}`, body: [] }];
  const header = [
    `# fwlb ruleset for cluster ${q(c.cluster.name)}, node ${q(input.node.name)}. Generated: do not edit.`,
    `# Replaces table ${TABLE_FAMILY} ${TABLE_NAME} in one transaction; no other table is touched.`,
    `table ${TABLE_FAMILY} ${TABLE_NAME}`,
    `delete table ${TABLE_FAMILY} ${TABLE_NAME}`,
  ];
  return { blocks: all, digest, script: `${header.join('\n')}\ntable ${TABLE_FAMILY} ${TABLE_NAME} {\n${render(all)}\n}\n` };
}

/** What the parts of one compile share: the config, the node, its interface names, its peers' addresses. */
interface Ctx {
  c: Config;
  node: CompileInput['node'];
  ifname: (role: string) => string;
  /** The peers' addresses of one family on an interface role, sorted. */
  peerAddrs: (role: string, fam: 4 | 6) => string[];
}

function compileBlocks(input: CompileInput): { c: Config; blocks: Block[] } {
  const { config: c, node } = input;
  const ctx: Ctx = {
    c,
    node,
    ifname: (role) => node.interfaces[role] ?? role,
    peerAddrs: (role, fam) => node.peers.map((p) => p.addresses[role]).filter((a): a is string => !!a && ipFamily(a) === fam).sort(),
  };
  const blocks: Block[] = [];
  const blocked = aggregatePrefixes(input.blocklist);
  for (const [fam, list] of [['v4', blocked.v4], ['v6', blocked.v6]] as const) {
    if (!list.length) continue;
    blocks.push({
      head: `set blocklist_${fam}`,
      body: [`type ${fam === 'v4' ? 'ipv4_addr' : 'ipv6_addr'}`, 'flags interval', `elements = { ${list.join(', ')} }`],
    });
  }
  const svc = serviceParts(ctx, input);
  blocks.push(...svc.counterBlocks, ...svc.serviceBlocks);
  blocks.push(...rawChains(ctx, blocked));
  blocks.push(...filterChains(ctx, clusterRules(ctx), svc.counterRules));
  blocks.push(...natChains(ctx, svc.dispatch));
  if (c.sharing) blocks.push(...sharingBlocks(c, node, input.sharedOwned ?? []));
  return { c, blocks };
}

/** The VRRP roles of the config (the interfaces its instances run on), sorted. */
function vrrpRoles(c: Config): string[] {
  return c.vrrp ? [...new Set(Object.values(c.vrrp.groups).flatMap((g) => Object.values(g.instances).map((i) => i.interface)))].sort() : [];
}

/** The address families of the VRRP instances on an interface role. */
function vrrpFamilies(c: Config, role: string): Set<4 | 6> {
  const out = new Set<4 | 6>();
  for (const g of Object.values(c.vrrp?.groups ?? {})) for (const i of Object.values(g.instances)) if (i.interface === role) for (const a of i.addresses) out.add(a.includes(':') ? 6 : 4);
  return out;
}

/** The state sync's ports: its own, and its liveness BEATs' (the next one) unless they are off. */
function syncPorts(sync: NonNullable<Config['state_sync']>): string {
  return sync.liveness === false ? String(sync.port) : `{ ${sync.port}, ${livenessPort(sync.port)} }`;
}

/** Input rules for the cluster's own traffic from the peers: VRRP, the state sync and its BEATs. */
function clusterRules({ c, ifname, peerAddrs }: Ctx): string[] {
  const rules: string[] = [];
  for (const role of vrrpRoles(c)) {
    const v4 = peerAddrs(role, 4);
    if (v4.length) rules.push(`iifname ${q(ifname(role))} ip saddr ${set(v4)} ip protocol vrrp accept comment "VRRP from peers"`);
    // IPv6 adverts leave from the sender's link-local address (RFC 9568 5.1.2.1), which no
    // config names: any link-local source, with the hop limit only a neighbour can send.
    if (vrrpFamilies(c, role).has(6)) rules.push(`iifname ${q(ifname(role))} ip6 saddr fe80::/10 ip6 hoplimit 255 ip6 nexthdr vrrp accept comment "VRRP (IPv6) from link-local sources"`);
  }
  if (c.state_sync) {
    const role = c.state_sync.interface;
    const v4 = peerAddrs(role, 4);
    const v6 = peerAddrs(role, 6);
    // The sync, and its liveness BEATs on the next port (services/liveness.ts).
    const ports = syncPorts(c.state_sync);
    if (v4.length) rules.push(`iifname ${q(ifname(role))} ip saddr ${set(v4)} udp dport ${ports} accept comment "state sync from peers"`);
    if (v6.length) rules.push(`iifname ${q(ifname(role))} ip6 saddr ${set(v6)} udp dport ${ports} accept comment "state sync from peers"`);
    // Config distribution (services/config-dist.ts): TCP on the sync port, both ways, untracked.
    const p = c.state_sync.port;
    if (v4.length) rules.push(`iifname ${q(ifname(role))} ip saddr ${set(v4)} tcp dport ${p} accept comment "config from peers"`, `iifname ${q(ifname(role))} ip saddr ${set(v4)} tcp sport ${p} accept comment "config: the peers' answers"`);
    if (v6.length) rules.push(`iifname ${q(ifname(role))} ip6 saddr ${set(v6)} tcp dport ${p} accept comment "config from peers"`, `iifname ${q(ifname(role))} ip6 saddr ${set(v6)} tcp sport ${p} accept comment "config: the peers' answers"`);
  }
  // Sharing: the BEATs also cross every link with shared addresses (a node is live while it
  // is heard on any of them: services/sharing.ts, the partition rule).
  for (const role of beatRoles(c)) {
    const v4 = peerAddrs(role, 4);
    if (v4.length) rules.push(`iifname ${q(ifname(role))} ip saddr ${set(v4)} udp dport ${livenessPort(c.state_sync!.port)} accept comment "liveness BEATs from peers"`);
  }
  return rules;
}

/**
 * Services: one dispatch verdict map per family; per service a slot map (slot -> backend)
 * behind the scheduler's selector, so a backend change is a map update; and the new
 * connections per backend, counted in the kernel by named counters.
 */
function serviceParts({ c }: Ctx, input: CompileInput): { dispatch: Record<4 | 6, string[]>; counterBlocks: Block[]; serviceBlocks: Block[]; counterRules: string[] } {
  const services = Object.entries(c.services).sort(([a], [b]) => a.localeCompare(b));
  const dispatch: Record<4 | 6, string[]> = { 4: [], 6: [] };
  const counters: Record<4 | 6, Map<string, string>> = { 4: new Map(), 6: new Map() };
  const serviceBlocks: Block[] = [];
  for (const [name, svc] of services) {
    const map = serviceMapName(name);
    const sched = schedulerFor(svc);
    const slots = input.serviceSlots?.[name] ?? sched.table(configuredBackends(svc));
    const ipk = svc.listen.family === 4 ? 'ip' : 'ip6';
    const l4 = svc.listen.proto;
    dispatch[svc.listen.family].push(`${svc.listen.address} . ${l4} . ${svc.listen.port} : goto ${map}`);
    for (const b of configuredBackends(svc)) counters[svc.listen.family].set(`${b.address} . ${b.port}`, backendCounterName(b.address, b.port));
    for (const s of new Set(slots)) if (s) counters[svc.listen.family].set(`${s.address} . ${s.port}`, backendCounterName(s.address, s.port));
    const elements = slotElements(slots);
    serviceBlocks.push({
      head: `map ${map}`,
      body: [`typeof numgen inc mod 2 : ${ipk} daddr . ${l4} dport`, ...(elements.length ? [`elements = { ${elements.join(', ')} }`] : [])],
    });
    serviceBlocks.push({
      head: `chain ${map}`,
      body: [
        `meta l4proto ${l4} dnat ${ipk} to ${sched.selector(svc.listen, serviceSeed(c.cluster.name, name))} map @${map} comment ${q(`service ${name}, ${sched.name}`)}`,
      ],
    });
  }
  const counterBlocks: Block[] = [];
  const counterRules: string[] = [];
  for (const fam of [4, 6] as const) {
    const m = counters[fam];
    if (!m.size) continue;
    const keys = [...m.keys()].sort();
    for (const k of keys) counterBlocks.push({ head: `counter ${m.get(k)!}`, body: [] });
    counterBlocks.push({
      head: `map backend_counters_v${fam}`,
      body: [`type ${fam === 4 ? 'ipv4_addr' : 'ipv6_addr'} . inet_service : counter`, `elements = { ${keys.map((k) => `${k} : ${q(m.get(k)!)}`).join(', ')} }`],
    });
    counterRules.push(`ct state new ct status dnat counter name ${fam === 4 ? 'ip' : 'ip6'} daddr . th dport map @backend_counters_v${fam}`);
  }
  return { dispatch, counterBlocks, serviceBlocks, counterRules };
}

/** The raw chains: the blocklist, and no conntrack entry for the cluster's own traffic. */
function rawChains({ c, ifname, peerAddrs }: Ctx, blocked: { v4: string[]; v6: string[] }): Block[] {
  const rawPre: string[] = ['type filter hook prerouting priority raw; policy accept;'];
  if (blocked.v4.length) rawPre.push('ip saddr @blocklist_v4 counter drop comment "blocklist"');
  if (blocked.v6.length) rawPre.push('ip6 saddr @blocklist_v6 counter drop comment "blocklist"');
  // The cluster's own traffic (VRRP, the state sync, its BEATs) never takes a conntrack entry:
  // a full table drops the packets that would need a new one, and two nodes that stop
  // hearing each other's adverts are two masters. (Found by the soak: a table filled by a
  // sync burst made the backup master for good.) The input rules accept them by address,
  // without conntrack.
  const notrack: { pre: string[]; out: string[] } = { pre: [], out: [] };
  if (vrrpRoles(c).length) {
    for (const k of ['pre', 'out'] as const) notrack[k].push('ip protocol vrrp notrack comment "VRRP: no conntrack entry"', 'ip6 nexthdr vrrp notrack comment "VRRP: no conntrack entry"');
  }
  if (c.state_sync) {
    const ports = syncPorts(c.state_sync);
    const sif = q(ifname(c.state_sync.interface));
    notrack.pre.push(`iifname ${sif} udp dport ${ports} notrack comment "state sync: no conntrack entry"`);
    notrack.out.push(`oifname ${sif} udp dport ${ports} notrack comment "state sync: no conntrack entry"`);
    for (const dir of ['dport', 'sport']) {
      notrack.pre.push(`iifname ${sif} tcp ${dir} ${c.state_sync.port} notrack comment "config distribution: no conntrack entry"`);
      notrack.out.push(`oifname ${sif} tcp ${dir} ${c.state_sync.port} notrack comment "config distribution: no conntrack entry"`);
    }
    for (const role of beatRoles(c)) {
      const v4 = peerAddrs(role, 4);
      if (!v4.length) continue;
      notrack.pre.push(`iifname ${q(ifname(role))} ip saddr ${set(v4)} udp dport ${livenessPort(c.state_sync.port)} notrack comment "liveness BEATs: no conntrack entry"`);
      notrack.out.push(`oifname ${q(ifname(role))} ip daddr ${set(v4)} udp dport ${livenessPort(c.state_sync.port)} notrack comment "liveness BEATs: no conntrack entry"`);
    }
  }
  rawPre.push(...notrack.pre);
  const out: Block[] = [{ head: 'chain raw_prerouting', body: rawPre }];
  if (notrack.out.length) out.push({ head: 'chain raw_output', body: ['type filter hook output priority raw; policy accept;', ...notrack.out] });
  return out;
}

/** The input and forward chains: stateful first, the cluster's own traffic, the user's rules, a counted drop. */
function filterChains({ c, ifname }: Ctx, cluster: string[], counterRules: string[]): Block[] {
  const roles = new Set(Object.keys(c.interfaces));
  const stateful = [
    'ct state established,related accept',
    'ct state invalid counter drop comment "invalid"',
    'tcp flags & (fin | syn | rst | ack) != syn ct state new counter drop comment "new TCP without SYN"',
  ];
  const userInput: string[] = [];
  const userForward: string[] = [];
  c.firewall.rules.forEach((r, i) => {
    const { chain, lines } = compileRule(r, i, roles, ifname);
    (chain === 'input' ? userInput : userForward).push(...lines);
  });
  return [
    {
      head: 'chain input',
      body: [
        'type filter hook input priority filter; policy drop;',
        'iif "lo" accept',
        ...stateful,
        'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept comment "neighbour discovery"',
        // MLD (RFC 2710, 3810): from link-local sources with hop limit 1; conntrack tracks none of it.
        'icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } ip6 saddr fe80::/10 ip6 hoplimit 1 accept comment "multicast listener discovery"',
        ...(c.firewall.ping ? ['icmp type echo-request limit rate 100/second accept', 'icmpv6 type echo-request limit rate 100/second accept'] : []),
        ...cluster,
        ...userInput,
        'counter comment "policy drop"',
      ],
    },
    {
      head: 'chain forward',
      body: [
        'type filter hook forward priority filter; policy drop;',
        ...stateful,
        ...counterRules,
        'ct status dnat counter accept comment "virtual services"',
        ...userForward,
        'counter comment "policy drop"',
      ],
    },
  ];
}

/** The NAT chains: the services' dispatch, and the user's source NAT (under sharing, in this node's port range). */
function natChains({ c, node, ifname }: Ctx, dispatch: Record<4 | 6, string[]>): Block[] {
  const natPre: string[] = ['type nat hook prerouting priority dstnat; policy accept;'];
  if (dispatch[4].length) natPre.push(`ip daddr . meta l4proto . th dport vmap { ${dispatch[4].join(', ')} }`);
  if (dispatch[6].length) natPre.push(`ip6 daddr . meta l4proto . th dport vmap { ${dispatch[6].join(', ')} }`);

  const natPost: string[] = ['type nat hook postrouting priority srcnat; policy accept;'];
  // Sharing: every node translates to the same shared addresses, each within its own port
  // range, so that two nodes never pick the same (address, port) for two flows.
  const ports = c.sharing ? (() => {
    const names = Object.keys(c.nodes).sort();
    const r = natPortRange(names.indexOf(node.name), names.length);
    return `:${r.from}-${r.to}`;
  })() : '';
  for (const n of c.firewall.nat) {
    const from = aggregatePrefixes(n.from);
    // Sharing: masquerading out an interface with shared addresses translates to the first of
    // them of the family (not to this node's own address, which dies with it; never a
    // link-local one), within this node's ports.
    const sharedOut = (fam: 4 | 6) => c.sharing?.addresses[n.out]?.map(bare).find((a) => ipFamily(a) === fam && !isLinkLocal(a));
    for (const [k, list] of [['ip', from.v4], ['ip6', from.v6]] as const) {
      if (!list.length) continue;
      const shared = sharedOut(k === 'ip' ? 4 : 6);
      const to = n.kind === 'snat' ? n.to : shared;
      if (to !== undefined && (k === 'ip') !== (ipFamily(to) === 4)) continue;
      // An IPv6 address before a port range is written in brackets.
      const toPorts = to === undefined ? '' : ports && k === 'ip6' ? `[${bare(to)}]${ports}` : `${bare(to)}${ports}`;
      const action = to === undefined ? `masquerade${ports ? ` to ${ports}` : ''}` : `snat ${k} to ${toPorts}`;
      const plain = to === undefined ? 'masquerade' : `snat ${k} to ${bare(to)}`;
      if (ports) {
        // Ports exist for TCP and UDP only; the rest (ICMP) is translated as before.
        natPost.push(`oifname ${q(ifname(n.out))} ${k} saddr ${set(list)} meta l4proto { tcp, udp } ${action}`);
        natPost.push(`oifname ${q(ifname(n.out))} ${k} saddr ${set(list)} ${plain}`);
      } else natPost.push(`oifname ${q(ifname(n.out))} ${k} saddr ${set(list)} ${action}`);
    }
  }
  return [
    { head: 'chain nat_prerouting', body: natPre },
    { head: 'chain nat_postrouting', body: natPost },
  ];
}
