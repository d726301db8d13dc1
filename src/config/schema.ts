/**
 * The cluster config schema: one YAML file for the whole cluster (PRODUCT.md).
 * Shape and value checks live here; checks across keys live in cross-check.ts,
 * checks against the running host in host-check.ts.
 */
import { z } from 'zod';
import { parseDuration } from '../lib/duration.js';
import { ipFamily, parseAddressPort, parsePrefix } from '../lib/ip.js';

/** Names that end up inside nftables identifiers and file names. */
const Name = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,30}$/, 'must start with a lowercase letter and use only a-z, 0-9, "_" and "-" (at most 31 characters)');

/** A Linux interface name (IFNAMSIZ 16 with the NUL). */
const IfName = z.string().regex(/^[A-Za-z0-9_.@-]{1,15}$/, 'is not a valid interface name (1-15 characters of A-Z a-z 0-9 _ . @ -)');

/** "100ms", "1s", "1.5s", "2m", or a bare number of milliseconds. */
const Duration = z.unknown().transform((v, ctx): number => {
  const ms = typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : typeof v === 'string' ? parseDuration(v) : undefined;
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration (use e.g. 100ms, 1s, 1.5s, 2m)` });
    return z.NEVER;
  }
  return ms;
});

const Address = z.string().refine((s) => ipFamily(s) !== 0, { message: 'is not an IPv4 or IPv6 address' });

/** "a.b.c.d" or "a.b.c.d/len"; the length is kept for interface addresses. */
const AddressWithLen = z.string().refine((s) => parsePrefix(s) !== undefined, {
  message: 'is not an IP address or address/prefix-length',
});

/** A network prefix; host bits may be set (nft accepts and masks them; we warn in cross-check). */
const Cidr = z.string().refine((s) => parsePrefix(s) !== undefined, { message: 'is not an IP prefix (e.g. 198.18.0.0/24)' });

const Port = z.number().int().min(1).max(65535);
const PortSpec = z.union([
  Port,
  z.string().regex(/^\d{1,5}-\d{1,5}$/, 'is not a port or a port range like 1000-2000').refine((s) => {
    const [a, b] = s.split('-').map(Number) as [number, number];
    return a >= 1 && b <= 65535 && a < b;
  }, 'is not a valid port range (1-65535, low-high)'),
]);


/** "ip:port/proto"; IPv6 as "[addr]:port/proto". */
const Listen = z.string().transform((s, ctx) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})\/(tcp|udp)$/.exec(s);
  const address = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !address || ipFamily(address) === 0 || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not a listen address (use ADDRESS:PORT/tcp or /udp, e.g. 198.18.0.100:80/tcp)` });
    return z.NEVER;
  }
  return { address, port, proto: m[4] as 'tcp' | 'udp', family: ipFamily(address) as 4 | 6 };
});

/** "ip:port" or just "ip" (the service's port is used). */
const BackendAddress = z.string().transform((s, ctx) => {
  const a = parseAddressPort(s);
  if (!a) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not a backend address (use ADDRESS:PORT, e.g. 198.18.1.11:80)` });
    return z.NEVER;
  }
  return { address: a.address, port: a.port, family: ipFamily(a.address) as 4 | 6 };
});

/** The file fwlb writes for BIRD to include: BIRD would read a relative name from its own directory. */
const BirdInclude = z.string().refine((f) => f.startsWith('/') && !/["\n]/.test(f), 'must be an absolute path without quotes or newlines (BIRD includes it by that name)');

const oneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

const NodeSchema = z
  .object({
    priority: z.number().int().min(1).max(255),
    /** The node's own address on each interface role ("198.18.0.2/24" or "198.18.0.2"). */
    addresses: z.record(Name, AddressWithLen).default({}),
    /** Per-node interface names, where they differ from the cluster-wide `interfaces`. */
    interfaces: z.record(Name, IfName).default({}),
    /** Where this node's BIRD differs from the cluster-wide `bgp:` (a lab runs one BIRD per node on one machine). */
    bgp: z.object({ socket: z.string().min(1).optional(), include: BirdInclude.optional() }).strict().optional(),
  })
  .strict();

const InstanceSchema = z
  .object({
    interface: Name,
    vrid: z.number().int().min(1).max(255),
    addresses: z.array(AddressWithLen).min(1),
    priority: z.number().int().min(1).max(255).optional(),
  })
  .strict();

const GroupSchema = z
  .object({
    instances: z.record(Name, InstanceSchema).refine((r) => Object.keys(r).length > 0, 'a group needs at least one instance'),
    /**
     * A tracked interface that goes down puts the whole group in fault. A tracked service
     * with no available backend, or a tracked script that fails (exit != 0), adds `weight`
     * to the priority (negative: lowers it), so that a healthier peer takes over.
     */
    track: z
      .object({
        interfaces: z.array(Name).default([]),
        services: z.array(Name).default([]),
        script: z.string().optional(),
        script_interval: Duration.default(1000),
        weight: z.number().int().min(-254).max(-1).default(-50),
      })
      .strict()
      .default({ interfaces: [], services: [], script_interval: 1000, weight: -50 }),
    notify: z.string().optional(),
  })
  .strict();

const VrrpSchema = z
  .object({
    version: z.union([z.literal(2), z.literal(3)]).default(3),
    /** Default: 100 ms for v3, 1 s for v2 (whole seconds only); see VrrpConfig below. */
    advert_interval: Duration.optional(),
    preempt: z
      .union([z.boolean(), z.object({ delay: Duration }).strict()])
      .default(true)
      .transform((p) => (p === false ? { enabled: false, delayMs: 0 } : { enabled: true, delayMs: p === true ? 0 : p.delay })),
    /**
     * Gratuitous ARP when an instance becomes master (`repeat` of them, `interval` apart), and
     * again every `refresh` while it stays master (false: never), so that a switch that lost
     * its table (a reboot, a split brain healed) learns the VIPs again.
     */
    garp: z
      .object({ repeat: z.number().int().min(0).max(100).default(5), interval: Duration.default(100), refresh: z.union([z.literal(false), Duration]).default(60_000) })
      .strict()
      .default({ repeat: 5, interval: 100, refresh: 60_000 }),
    unicast: z.boolean().default(false),
    groups: z.record(Name, GroupSchema).default({}),
  })
  .strict()
  .transform((v) => ({ ...v, advert_interval: v.advert_interval ?? (v.version === 2 ? 1000 : 100) }));

const SyncSchema = z
  .object({
    interface: Name,
    port: Port.default(3780),
    /** A joining node waits this long for a peer to sync from before it goes on alone. */
    wait_for_peer: Duration.default(3000),
    /** The same when its own conntrack table is empty (it may be the one that lost the sessions). */
    wait_for_peer_empty: Duration.default(10_000),
    /** A master being stopped waits this long for a peer that is ready to take over (0: never). */
    stop_wait: Duration.default(10_000),
    /**
     * A peer whose oldest change not yet acknowledged is older than this is behind: logged
     * and counted (`sync_peer_behind`, `peers_behind`), shown in status; the peer says so on
     * its BEATs.
     */
    lag_bound: Duration.refine((ms) => ms > 0 && ms <= 16_383, { message: 'must be above 0 and at most 16383 ms (the BEATs carry a lag in 14 bits), e.g. 1s' }).default(1000),
    /**
     * Liveness BEATs to the peers over this link (services/liveness.ts): every `interval`; a
     * peer unheard for interval x multiplier is gone and its mastership is taken at once
     * (false: VRRP's own timers only).
     */
    liveness: z
      .union([z.literal(false), z.object({ interval: Duration.default(15), multiplier: z.number().int().min(2).max(255).default(5) }).strict()])
      .default({ interval: 15, multiplier: 5 }),
  })
  .strict()
  .refine((s) => s.liveness === false || s.port < 65535, { message: 'the liveness BEATs use the port after state_sync.port: it must be below 65535', path: ['port'] });

/**
 * Active-active sharing (issue 14): every node carries these addresses at once, and each
 * forwards the flows whose bucket it owns (fsm/sharing.ts). `buckets`: how many (many more
 * than nodes); `seed`: of the flow hash, the same on every node (default: from the cluster's
 * name); `mac`: per interface role, the multicast MAC the shared addresses answer ARP with,
 * so the switch floods their frames to every node (default 01:00:5e:7f:fb:NN, NN the role's
 * index).
 */
const MulticastMac = z
  .string()
  .regex(/^01:00:5e:[0-7][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$/i, 'is not an IPv4 multicast MAC (01:00:5e:00:00:00 to 01:00:5e:7f:ff:ff)')
  .transform((m) => m.toLowerCase());
const SharingSchema = z
  .object({
    addresses: z.record(Name, oneOrMany(AddressWithLen)).refine((r) => Object.keys(r).length > 0, 'sharing needs at least one interface with shared addresses'),
    buckets: z.number().int().min(16).max(65536).default(4096),
    seed: z.number().int().min(0).max(0xffffffff).optional(),
    mac: z.record(Name, MulticastMac).default({}),
    /**
     * The interface role facing the clients (and the rest of the world). A flow's bucket is a
     * hash of its endpoint on that side (address and port): the one endpoint NAT leaves alone,
     * the source of what arrives there and the destination of what leaves by it, so that both
     * directions of a flow, its reply included, land in one bucket even on a node that has not
     * heard of the flow yet. Default: the role of the NAT rules' `out`, else the one carrying
     * the services' addresses, else the only role with shared addresses.
     */
    outer: Name.optional(),
  })
  .strict();

/**
 * Announcements by BGP through BIRD 2 (issue 26): the node announces each service's address
 * (/32, /128) while it is ready and the service has an available backend, and `addresses`
 * while it is ready. fwlb writes BIRD's static protocols `fwlb4` and `fwlb6` into `include`
 * (BIRD's config includes that file) and has BIRD re-read its config over `socket`; every
 * route points through `device`, a TUN device the daemon holds open, so that BIRD withdraws
 * them all when the daemon dies, however it dies. A graceful stop first tags the routes with
 * GRACEFUL_SHUTDOWN (65535:0, RFC 8326) and waits `drain` before it withdraws them.
 */
const Community = z
  .string()
  .regex(/^\d{1,5}:\d{1,5}$/, 'is not a BGP community (use ASN:VALUE, each 0-65535, e.g. 65010:100)')
  .refine((s) => s.split(':').every((n) => Number(n) <= 65535), 'is not a BGP community: each half is at most 65535')
  .transform((s) => s.split(':').map(Number) as [number, number]);
const BgpSchema = z
  .object({
    socket: z.string().min(1).default('/run/bird/bird.ctl'),
    include: BirdInclude.default('/run/fwlb/bird/announce.conf'),
    device: IfName.default('fwlb-bgp'),
    communities: z.array(Community).default([]),
    drain: Duration.default(3000),
    addresses: z.array(Address).default([]),
    /**
     * With `sharing:`: the interface role over which a node relays a packet the router sent it
     * but whose bucket another node owns, once and unchanged, to that owner (its address on
     * this role is the next hop; IPv4 for now). Without it each node carries only what it owns.
     */
    relay: Name.optional(),
  })
  .strict();

/** The UDP port of the liveness BEATs: the one after the state sync's. */
export function livenessPort(syncPort: number): number {
  return syncPort + 1;
}

const NatSchema = z
  .object({
    masquerade: z.object({ from: oneOrMany(Cidr), out: Name }).strict().optional(),
    snat: z.object({ from: oneOrMany(Cidr), out: Name, to: Address }).strict().optional(),
  })
  .strict()
  .refine((n) => (n.masquerade ? 1 : 0) + (n.snat ? 1 : 0) === 1, 'a nat entry is exactly one of "masquerade" or "snat"')
  .transform((n) =>
    n.masquerade
      ? { kind: 'masquerade' as const, from: n.masquerade.from, out: n.masquerade.out }
      : { kind: 'snat' as const, from: n.snat!.from, out: n.snat!.out, to: n.snat!.to },
  );

/**
 * One filter rule. `to: self` filters traffic to the firewall itself (input);
 * anything else filters traffic through it (forward). `from`/`to` take prefixes or
 * interface roles. There is deliberately no "reject": during a failover a reject
 * kills sessions the peer could have carried; unknown traffic is dropped.
 */
const RuleBody = z
  .object({
    proto: z.enum(['tcp', 'udp', 'icmp', 'icmpv6', 'any']).default('any'),
    port: oneOrMany(PortSpec).optional(),
    from: oneOrMany(z.string()).optional(),
    to: oneOrMany(z.string()).optional(),
    /** Carried into the ruleset as the rule's comment: nft takes 128 bytes at most. */
    comment: z
      .string()
      .refine((c) => Buffer.byteLength(c) <= 120, 'is longer than 120 bytes (nftables keeps 128 bytes of comment)')
      .refine((c) => !/[\x00-\x1f\x7f"]/.test(c), 'may not contain control characters or double quotes')
      .optional(),
  })
  .strict();

const RuleSchema = z
  .object({ allow: RuleBody.optional(), drop: RuleBody.optional() })
  .strict()
  .refine((r) => (r.allow ? 1 : 0) + (r.drop ? 1 : 0) === 1, 'a rule is exactly one of "allow" or "drop"')
  .transform((r) => (r.allow ? { action: 'accept' as const, ...r.allow } : { action: 'drop' as const, ...r.drop! }));

const FirewallSchema = z
  .object({
    /** Source prefixes dropped before connection tracking (a block list). */
    block: z.array(Cidr).default([]),
    /** Files of prefixes to block, one per line; '#' starts a comment. */
    block_files: z.array(z.string()).default([]),
    /** Answer ping on the firewall itself. */
    ping: z.boolean().default(true),
    nat: z.array(NatSchema).default([]),
    rules: z.array(RuleSchema).default([]),
  })
  .strict();

const HealthSchema = z
  .object({
    tcp: z.object({ port: Port.optional() }).strict().optional(),
    http: z.object({ path: z.string().startsWith('/').default('/'), status: z.number().int().min(100).max(599).default(200), port: Port.optional() }).strict().optional(),
    script: z.object({ path: z.string().min(1), args: z.array(z.string()).default([]) }).strict().optional(),
    interval: Duration.default(1000),
    timeout: Duration.default(500),
    rise: z.number().int().min(1).max(100).default(2),
    fall: z.number().int().min(1).max(100).default(3),
  })
  .strict();

const BackendSchema = z
  .object({
    address: BackendAddress,
    weight: z.number().int().min(0).max(1000).default(1),
    /** Start drained/disabled: takes no new flows. */
    state: z.enum(['enabled', 'drain', 'disabled']).default('enabled'),
  })
  .strict();

const ServiceSchema = z
  .object({
    listen: Listen,
    /**
     * Default: rr; with `sharing:`, maglev (a hash of the flow with the cluster's seed: every
     * node picks the same backend for a flow, so a flow that changes node before its entry
     * is replicated keeps its backend).
     */
    scheduler: z.enum(['rr', 'wrr', 'source-hash', 'maglev']).optional(),
    /** Slots of the scheduler's table (default: sized to the backends; a prime for maglev and source-hash). */
    table_size: z.number().int().min(1).max(65537).optional(),
    backends: z.record(Name, BackendSchema).refine((r) => Object.keys(r).length > 0, 'a service needs at least one backend'),
    health: HealthSchema.optional(),
  })
  .strict();

export const ConfigSchema = z
  .object({
    cluster: z.object({ name: Name, key_file: z.string().optional() }).strict(),
    nodes: z.record(Name, NodeSchema).refine((r) => Object.keys(r).length > 0, 'at least one node is needed'),
    interfaces: z.record(Name, IfName),
    vrrp: VrrpSchema.optional(),
    state_sync: SyncSchema.optional(),
    sharing: SharingSchema.optional(),
    bgp: BgpSchema.optional(),
    firewall: FirewallSchema.default({ block: [], block_files: [], ping: true, nat: [], rules: [] }),
    services: z.record(Name, ServiceSchema).default({}),
  })
  .strict()
  .transform((c) => ({
    ...c,
    services: Object.fromEntries(Object.entries(c.services).map(([k, s]) => [k, { ...s, scheduler: s.scheduler ?? (c.sharing ? ('maglev' as const) : ('rr' as const)) }])),
  }));

export type Config = z.output<typeof ConfigSchema>;
export type NodeConfig = Config['nodes'][string];
export type VrrpConfig = NonNullable<Config['vrrp']>;
export type SharingConfig = NonNullable<Config['sharing']>;
export type BgpConfig = NonNullable<Config['bgp']>;
export type ServiceConfig = Config['services'][string];
export type BackendConfig = ServiceConfig['backends'][string];
export type RuleConfig = Config['firewall']['rules'][number];
export type NatConfig = Config['firewall']['nat'][number];
export type HealthConfig = NonNullable<ServiceConfig['health']>;
