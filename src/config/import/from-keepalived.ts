/**
 * `fwlb import`: keepalived.conf (one per node) and conntrackd.conf into one fwlb cluster
 * file. Pure: it is handed the parsed files (config/import/keepalived-syntax.ts) and returns
 * the YAML and the list of what it could not carry over, each with the file, line and why.
 *
 * What maps (keepalived's name -> fwlb's):
 * - each keepalived file is a node, named by `router_id` (else the file's name); its
 *   priority is its instances' (the highest, noted when they differ);
 * - `vrrp_sync_group` -> a VRRP group (members from its `group` block); an instance in no
 *   sync group -> a group of its own; `vrrp_instance` -> an instance: `interface`,
 *   `virtual_router_id`, `virtual_ipaddress` (and `_excluded`); `track_interface` -> the
 *   group's track; `track_script` of a `vrrp_script` -> the group's track script and weight;
 *   `advert_int`, `vrrp_version` / `version`, `nopreempt` / `preempt_delay`,
 *   `vrrp_garp_master_repeat` / `_refresh` / `vrrp_garp_interval`, `unicast_peer`;
 * - Linux interface names become interface roles of the same name;
 * - `virtual_server ADDRESS PORT` -> a service: `protocol`, `lb_algo` (rr, wrr, sh ->
 *   source-hash, mh -> maglev), `real_server` -> backends with `weight`; the first real
 *   server's checker -> the service's health (TCP_CHECK, HTTP_GET / SSL_GET with its first
 *   url's path and status, MISC_CHECK), `delay_loop` -> interval, `connect_timeout` ->
 *   timeout, `retry` -> fall;
 * - conntrackd's `Sync` -> `state_sync` on the interface of its `Interface` (the node's
 *   address there from `IPv4_interface`), with `cluster.key_file` (fwlb authenticates its
 *   sync: `fwlb keygen -o cluster.key`).
 * keepalived does not say a node's own address on the VRRP links (fwlb needs it for the
 * ruleset and the BEATs): from `unicast_src_ip`, else given with `--address NODE:IF=ADDRESS`,
 * else left out and noted (then `fwlb check` names what is missing).
 */
import { stringify } from 'yaml';
import { ipFamily, isLinkLocal } from '../../lib/ip.js';
import { named, value, type KaStatement } from './keepalived-syntax.js';

export interface ImportSource {
  file: string;
  kind: 'keepalived' | 'conntrackd';
  statements: KaStatement[];
}

export interface ImportResult {
  yaml: string;
  /** What was not carried over, and why: `file:line: what: why`. */
  notes: string[];
}

/** keepalived or conntrackd, by what the file holds. */
export function kindOf(statements: readonly KaStatement[]): 'keepalived' | 'conntrackd' | undefined {
  const heads = new Set(statements.map((s) => s.words[0]?.toLowerCase()));
  if (heads.has('sync') || heads.has('general')) return 'conntrackd';
  if (['vrrp_instance', 'virtual_server', 'global_defs', 'vrrp_sync_group', 'vrrp_script'].some((h) => heads.has(h))) return 'keepalived';
  return undefined;
}

/** A name as fwlb takes it: lowercase, a-z 0-9 _ -, a letter first, 31 characters at most. */
export function fwlbName(s: string, fallback: string): string {
  let n = s.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^[^a-z]+/, '').slice(0, 31).replace(/-+$/, '');
  if (!n) n = fallback;
  return n;
}

/** "1" -> "1s", "0.1" -> "100ms" (keepalived's seconds, fractions for VRRPv3). */
function seconds(v: string | undefined): string | undefined {
  if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) return undefined;
  const ms = Math.round(Number(v) * 1000);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

interface Ctx {
  notes: string[];
  note(s: KaStatement | undefined, file: string, what: string, why: string): void;
  roles: Map<string, string>;
  role(ifname: string): string;
}

interface Instance {
  name: string;
  node: string;
  stmt: KaStatement;
}

export function importKeepalived(sources: readonly ImportSource[], opts: { addresses?: Record<string, Record<string, string>>; clusterName?: string } = {}): ImportResult {
  const notes: string[] = [];
  const roles = new Map<string, string>();
  const ctx: Ctx = {
    notes,
    note: (s, file, what, why) => notes.push(`${s ? `${s.file}:${s.line}` : file}: ${what}: ${why}`),
    roles,
    role: (ifname) => {
      if (!roles.has(ifname)) roles.set(ifname, fwlbName(ifname, `if${roles.size}`));
      return roles.get(ifname)!;
    },
  };
  const ka = sources.filter((s) => s.kind === 'keepalived');
  const ct = sources.filter((s) => s.kind === 'conntrackd');
  if (!ka.length) throw new Error('fwlb import: no keepalived configuration among the files (one per node: vrrp_instance, virtual_server...)');

  const nodes: Record<string, { priority: number; addresses: Record<string, string> }> = {};
  const nodeNames: string[] = [];
  const instances: Instance[] = [];
  ka.forEach((src, i) => {
    const gd = named(src.statements, 'global_defs')[0]?.block;
    const base = src.file.split('/').pop()!.replace(/\.conf$/, '').replace(/[._]?keepalived$/, '');
    let name = fwlbName(value(gd, 'router_id') ?? base, `node${i + 1}`);
    while (nodeNames.includes(name)) name = `${name}-${i + 1}`;
    nodeNames.push(name);
    const own = named(src.statements, 'vrrp_instance');
    const prios = own.map((s) => Number(value(s.block, 'priority') ?? 100));
    const priority = Math.max(1, Math.min(254, ...(prios.length ? prios : [100])));
    if (new Set(prios).size > 1) ctx.note(own[0], src.file, `priority of node ${name}`, `its instances have priorities ${prios.join(', ')}: fwlb has one per node, ${priority} is used`);
    if (prios.includes(255)) ctx.note(own[0], src.file, 'priority 255', 'the address owner of VRRP; fwlb nodes are never owners: 254 is used');
    nodes[name] = { priority, addresses: {} };
    for (const s of own) instances.push({ name: fwlbName(s.words[1] ?? 'vi', 'vi'), node: name, stmt: s });
    notCarried(ctx, src);
  });

  const vrrp = vrrpSection(ctx, ka, instances, nodes, nodeNames);
  const services = servicesSection(ctx, ka);
  const sync = syncSection(ctx, ct, nodes, nodeNames);
  // Addresses given on the command line (NODE -> Linux interface -> address).
  for (const [node, per] of Object.entries(opts.addresses ?? {})) {
    if (!nodes[node]) throw new Error(`--address ${node}:...: no node ${node} (the nodes are ${nodeNames.join(', ')})`);
    for (const [ifname, addr] of Object.entries(per)) nodes[node]!.addresses[ctx.role(ifname)] = addr;
  }
  for (const n of nodeNames) {
    for (const r of vrrp.roles) {
      if (!nodes[n]!.addresses[r]) ctx.note(undefined, ka[nodeNames.indexOf(n)]!.file, `nodes.${n}.addresses.${r}`, `keepalived does not say the node's own address on ${r} (fwlb's ruleset and BEATs need it): give it with --address ${n}:${[...roles].find(([, v]) => v === r)?.[0] ?? r}=ADDRESS/LEN`);
    }
  }

  const config: Record<string, unknown> = {
    cluster: { name: fwlbName(opts.clusterName ?? vrrp.clusterName ?? 'imported', 'imported'), ...(sync ? { key_file: 'cluster.key' } : {}) },
    nodes,
    interfaces: Object.fromEntries([...roles].map(([ifname, role]) => [role, ifname])),
    ...(vrrp.section ? { vrrp: vrrp.section } : {}),
    ...(sync ? { state_sync: sync } : {}),
    ...(Object.keys(services).length ? { services } : {}),
  };
  const header = [
    ` Imported by fwlb import from ${sources.map((s) => s.file).join(', ')}.`,
    ...(sync ? [' cluster.key: make it once with `fwlb keygen -o cluster.key` and copy it to every node.'] : []),
    ...(notes.length ? [' Not carried over (also printed on stderr):', ...notes.map((n) => ` - ${n}`)] : [' Everything was carried over.']),
  ].join('\n');
  return { yaml: `${header.split('\n').map((l) => `#${l}`).join('\n')}\n${stringify(config, { lineWidth: 0 })}`, notes };
}

/** What a keepalived file holds that fwlb has no place for. */
function notCarried(ctx: Ctx, src: ImportSource): void {
  for (const s of src.statements) {
    const h = s.words[0]?.toLowerCase();
    if (h === 'virtual_server_group') ctx.note(s, src.file, 'virtual_server_group', 'not carried: give each service its own listen address');
    else if (h === 'static_ipaddress' || h === 'static_routes' || h === 'static_rules') ctx.note(s, src.file, h, 'not carried: addresses and routes outside VRRP are the host\'s (ifupdown, systemd-networkd)');
    else if (h === 'vrrp_track_process' || h === 'vrrp_track_file' || h === 'track_bfd' || h === 'bfd_instance') ctx.note(s, src.file, h, 'not carried: fwlb tracks interfaces, services and one script per group');
  }
  const gd = named(src.statements, 'global_defs')[0];
  for (const s of gd?.block ?? []) {
    const k = s.words[0]?.toLowerCase() ?? '';
    if (['router_id', 'vrrp_version', 'vrrp_garp_master_repeat', 'vrrp_garp_master_refresh', 'vrrp_garp_interval', 'script_user', 'enable_script_security'].includes(k)) continue;
    if (k === 'vrrp_garp_master_delay') ctx.note(s, src.file, k, 'not carried: fwlb repeats its gratuitous ARPs `vrrp.garp.repeat` times, `interval` apart, and refreshes them every `refresh`');
    else ctx.note(s, src.file, `global_defs.${k}`, 'not carried (no fwlb equivalent)');
  }
}

function vrrpSection(ctx: Ctx, ka: readonly ImportSource[], instances: readonly Instance[], nodes: Record<string, { addresses: Record<string, string> }>, nodeNames: readonly string[]) {
  const roles = new Set<string>();
  if (!instances.length) return { section: undefined, roles, clusterName: undefined };
  const first = ka[0]!;
  const gd = named(first.statements, 'global_defs')[0]?.block;
  const versions = new Set(instances.map((i) => value(i.stmt.block, 'version') ?? value(named(ka.find((k) => k.statements.includes(i.stmt))?.statements, 'global_defs')[0]?.block, 'vrrp_version') ?? '2'));
  if (versions.size > 1) ctx.note(undefined, first.file, 'VRRP version', `the instances use versions ${[...versions].join(' and ')}: fwlb runs one, ${[...versions].sort().pop()} is used`);
  const version = Number([...versions].sort().pop()) === 3 ? 3 : 2;
  const adverts = new Set(instances.map((i) => value(i.stmt.block, 'advert_int') ?? '1'));
  if (adverts.size > 1) ctx.note(undefined, first.file, 'advert_int', `the instances use ${[...adverts].join(', ')} s: fwlb has one interval, the shortest is used`);
  const advert = [...adverts].sort((a, b) => Number(a) - Number(b))[0]!;
  if (version === 2 && !Number.isInteger(Number(advert))) ctx.note(undefined, first.file, 'advert_int', `${advert} s with VRRP version 2, which counts whole seconds`);

  // Groups from the first node's file (every node's file names the same ones).
  const groups: Record<string, Record<string, unknown>> = {};
  const grouped = new Set<string>();
  let clusterName: string | undefined;
  for (const sg of named(first.statements, 'vrrp_sync_group')) {
    const gname = fwlbName(sg.words[1] ?? 'group', 'group');
    clusterName ??= gname;
    const members = named(sg.block, 'group')[0]?.block?.flatMap((s) => s.words) ?? [];
    groups[gname] = { members: members.map((m) => fwlbName(m, 'vi')), stmt: sg };
    members.forEach((m) => grouped.add(fwlbName(m, 'vi')));
    for (const k of ['notify_master', 'notify_backup', 'notify_fault', 'notify_stop', 'notify']) {
      const n = named(sg.block, k)[0];
      if (n) ctx.note(n, first.file, `${k} "${n.words.slice(1).join(' ')}"`, 'not carried as is: fwlb runs a group\'s `notify` hook as HOOK GROUP STATE (master, backup, fault...) with FWLB_* in its environment; point it at a script that calls yours');
    }
  }
  const firstNode = nodeNames[0]!;
  const mine = instances.filter((i) => i.node === firstNode);
  for (const i of mine) if (!grouped.has(i.name)) groups[i.name] = { members: [i.name], stmt: i.stmt };

  const out: Record<string, unknown> = {};
  for (const [gname, g] of Object.entries(groups)) {
    const section = groupSection(ctx, first, mine, g.members as string[], g.stmt as KaStatement, roles);
    if (section) out[gname] = section;
  }
  // Node addresses known to keepalived: unicast_src_ip on an instance's interface.
  for (const i of instances) {
    const src = value(i.stmt.block, 'unicast_src_ip');
    const ifname = value(i.stmt.block, 'interface');
    if (src && ifname) nodes[i.node]!.addresses[ctx.role(ifname)] = src;
  }
  const b0 = mine[0]?.stmt.block;
  const repeat = value(gd, 'vrrp_garp_master_repeat');
  const refresh = value(gd, 'vrrp_garp_master_refresh');
  const interval = value(gd, 'vrrp_garp_interval');
  const garp = {
    ...(repeat !== undefined ? { repeat: Number(repeat) } : {}),
    ...(interval !== undefined && seconds(interval) ? { interval: seconds(interval) } : {}),
    ...(refresh !== undefined ? { refresh: Number(refresh) === 0 ? false : seconds(refresh) } : {}),
  };
  const nopreempt = mine.some((i) => named(i.stmt.block, 'nopreempt').length > 0);
  const delay = seconds(value(b0, 'preempt_delay'));
  const section = {
    version,
    advert_interval: seconds(advert) ?? '1s',
    ...(nopreempt ? { preempt: false } : delay ? { preempt: { delay } } : {}),
    ...(Object.keys(garp).length ? { garp } : {}),
    ...(mine.some((i) => named(i.stmt.block, 'unicast_peer').length > 0) ? { unicast: true } : {}),
    groups: out,
  };
  return { section, roles, clusterName };
}

/** One VRRP group: its members' instances, VIPs and tracking (from the first node's file). */
function groupSection(ctx: Ctx, first: ImportSource, mine: readonly Instance[], members: readonly string[], stmt: KaStatement, roles: Set<string>): Record<string, unknown> | undefined {
  const insts: Record<string, unknown> = {};
  const track = new Set<string>();
  let script: { path: string; weight?: number; interval?: string } | undefined;
  for (const m of members) {
    const inst = mine.find((i) => i.name === m);
    if (!inst) {
      ctx.note(stmt, first.file, `sync group member ${m}`, 'no vrrp_instance of that name');
      continue;
    }
    const b = inst.stmt.block;
    const ifname = value(b, 'interface');
    if (!ifname) {
      ctx.note(inst.stmt, first.file, `vrrp_instance ${m}`, 'has no interface: left out');
      continue;
    }
    const role = ctx.role(ifname);
    roles.add(role);
    const vips = [...named(b, 'virtual_ipaddress'), ...named(b, 'virtual_ipaddress_excluded')].flatMap((s) => s.block ?? []).map((s) => {
      const dev = s.words.indexOf('dev');
      if (dev > 0 && s.words[dev + 1] !== ifname) ctx.note(s, first.file, `VIP ${s.words[0]} dev ${s.words[dev + 1]}`, `fwlb adds an instance's VIPs on its own interface (${ifname})`);
      const extra = s.words.slice(1).filter((w, k, all) => w !== 'dev' && all[k - 1] !== 'dev');
      if (extra.length) ctx.note(s, first.file, `VIP ${s.words[0]} ${extra.join(' ')}`, 'only the address and prefix length are carried');
      return s.words[0]!;
    });
    if (ipFamily(vips[0]?.split('/')[0] ?? '') === 6 && !isLinkLocal(vips[0]!)) ctx.note(inst.stmt, first.file, `vrrp_instance ${m}`, 'an IPv6 instance\'s first address must be its link-local virtual address in fwlb (RFC 9568 5.2.9): add one first, e.g. fe80::1/64');
    insts[m] = { interface: role, vrid: Number(value(b, 'virtual_router_id') ?? 0), addresses: vips };
    for (const s of named(b, 'track_interface')) for (const t of s.block ?? []) track.add(ctx.role(t.words[0]!));
    for (const s of named(b, 'track_script')) {
      for (const t of s.block ?? []) {
        const def = named(first.statements, 'vrrp_script').find((v) => v.words[1] === t.words[0]);
        const path = value(def?.block, 'script');
        if (!def || !path) ctx.note(t, first.file, `track_script ${t.words[0]}`, 'no vrrp_script of that name with a script');
        else if (script && script.path !== path.trim().split(/\s+/)[0]) ctx.note(t, first.file, `track_script ${t.words[0]}`, 'fwlb tracks one script per group: only the first is carried');
        else {
          const argv = path.trim().split(/\s+/);
          if (argv.length > 1) ctx.note(def, first.file, `vrrp_script ${t.words[0]} "${path}"`, `fwlb runs a track script without arguments: ${argv[0]} is carried; wrap the command in a script of its own`);
          script = { path: argv[0]!, ...(value(def.block, 'weight') ? { weight: Number(value(def.block, 'weight')) } : {}), ...(seconds(value(def.block, 'interval')) ? { interval: seconds(value(def.block, 'interval'))! } : {}) };
        }
      }
    }
    for (const s of b ?? []) {
      const k = s.words[0]?.toLowerCase() ?? '';
      if (k === 'state') ctx.note(s, first.file, `state ${s.words[1]}`, 'not carried: fwlb elects by priority, as keepalived does below 255');
      else if (k === 'authentication') ctx.note(s, first.file, 'authentication', 'not carried: RFC 5798 removed VRRP authentication; fwlb authenticates its peers by the BEATs and the state sync (cluster.key_file)');
      else if (k === 'use_vmac' || k === 'vmac_xmit_base') ctx.note(s, first.file, k, 'not carried: fwlb uses the interface\'s own MAC and gratuitous ARP');
      else if (k === 'virtual_routes' || k === 'virtual_rules') ctx.note(s, first.file, k, 'not carried: routes follow the host\'s config');
      else if (k === 'notify_master' || k === 'notify_backup' || k === 'notify_fault' || k === 'notify') ctx.note(s, first.file, `${k} of an instance`, 'not carried: fwlb runs a notify hook per group (vrrp.groups.NAME.notify)');
    }
  }
  if (!Object.keys(insts).length) return undefined;
  const weight = script?.weight !== undefined && script.weight < 0 ? script.weight : undefined;
  if (script?.weight !== undefined && script.weight >= 0) ctx.note(undefined, first.file, `vrrp_script ${script.path} weight ${script.weight}`, 'fwlb lowers the priority of a failing node (a negative weight); -50 is used');
  return {
    instances: insts,
    ...(track.size || script ? { track: { ...(track.size ? { interfaces: [...track] } : {}), ...(script ? { script: script.path, ...(script.interval ? { script_interval: script.interval } : {}), ...(weight !== undefined ? { weight } : {}) } : {}) } } : {}),
  };
}

const SCHEDULERS: Record<string, string> = { rr: 'rr', wrr: 'wrr', sh: 'source-hash', mh: 'maglev' };

function servicesSection(ctx: Ctx, ka: readonly ImportSource[]): Record<string, unknown> {
  const src = ka[0]!;
  const out: Record<string, unknown> = {};
  for (const vs of named(src.statements, 'virtual_server')) {
    const [, addr, port] = vs.words;
    if (!addr || !port || ipFamily(addr) === 0) {
      ctx.note(vs, src.file, `virtual_server ${vs.words.slice(1).join(' ')}`, 'not carried: fwlb services listen on ADDRESS PORT (no fwmark, no group)');
      continue;
    }
    const b = vs.block;
    const proto = (value(b, 'protocol') ?? 'TCP').toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') {
      ctx.note(vs, src.file, `virtual_server ${addr} ${port} protocol ${proto}`, 'not carried: TCP and UDP only');
      continue;
    }
    const algo = (value(b, 'lb_algo') ?? 'rr').toLowerCase();
    const scheduler = SCHEDULERS[algo] ?? 'rr';
    if (!SCHEDULERS[algo]) ctx.note(named(b, 'lb_algo')[0], src.file, `lb_algo ${algo}`, 'fwlb has rr, wrr, source-hash and maglev (no least-connection): rr is used');
    const kind = (value(b, 'lb_kind') ?? 'NAT').toUpperCase();
    if (kind !== 'NAT') ctx.note(named(b, 'lb_kind')[0], src.file, `lb_kind ${kind}`, 'fwlb load-balances by DNAT (NAT): the real servers must route their replies through the firewall');
    for (const k of ['persistence_timeout', 'sorry_server', 'quorum', 'hysteresis', 'ops', 'alpha', 'omega', 'inhibit_on_failure']) {
      const s = named(b, k)[0];
      if (s) ctx.note(s, src.file, `${k} of virtual_server ${addr} ${port}`, k === 'persistence_timeout' ? 'not carried: use scheduler source-hash or maglev for a client to stay on its server' : 'not carried (no fwlb equivalent)');
    }
    const backends: Record<string, unknown> = {};
    let health: Record<string, unknown> | undefined;
    named(b, 'real_server').forEach((rs, k) => {
      const [, raddr, rport] = rs.words;
      if (!raddr || ipFamily(raddr) === 0) return void ctx.note(rs, src.file, `real_server ${rs.words.slice(1).join(' ')}`, 'not an address: left out');
      const weight = Number(value(rs.block, 'weight') ?? 1);
      const address = ipFamily(raddr) === 6 ? `[${raddr}]:${rport ?? port}` : `${raddr}:${rport ?? port}`;
      backends[fwlbName(`r${k + 1}-${raddr}`, `r${k + 1}`)] = { address, ...(weight !== 1 ? { weight: Math.min(1000, Math.max(0, weight)) } : {}) };
      const h = checker(ctx, src.file, rs, b);
      if (h && !health) health = h;
      else if (h && JSON.stringify(h) !== JSON.stringify(health)) ctx.note(rs, src.file, `the checker of real_server ${raddr}`, 'fwlb checks every backend of a service the same way: the first real server\'s checker is used');
    });
    if (!Object.keys(backends).length) continue;
    const name = fwlbName(`vs-${addr}-${port}-${proto}`, 'vs');
    out[name] = {
      listen: ipFamily(addr) === 6 ? `[${addr}]:${port}/${proto}` : `${addr}:${port}/${proto}`,
      scheduler,
      backends,
      ...(health ? { health } : {}),
    };
  }
  return out;
}

/** A real server's first checker as fwlb's health section. */
function checker(ctx: Ctx, file: string, rs: KaStatement, vs: KaStatement[] | undefined): Record<string, unknown> | undefined {
  const c = (rs.block ?? []).find((s) => ['tcp_check', 'http_get', 'ssl_get', 'misc_check', 'smtp_check', 'dns_check', 'ping_check', 'udp_check', 'file_check', 'bfd_check'].includes(s.words[0]?.toLowerCase() ?? ''));
  if (!c) return undefined;
  const kind = c.words[0]!.toLowerCase();
  const interval = seconds(value(c.block, 'delay_loop') ?? value(vs, 'delay_loop'));
  const timeout = seconds(value(c.block, 'connect_timeout'));
  const retry = value(c.block, 'retry') ?? value(c.block, 'nb_get_retry');
  const port = value(c.block, 'connect_port');
  const common = { ...(interval ? { interval } : {}), ...(timeout ? { timeout } : {}), ...(retry ? { fall: Math.max(1, Math.min(100, Number(retry))) } : {}) };
  if (kind === 'tcp_check') return { tcp: port ? { port: Number(port) } : {}, ...common };
  if (kind === 'http_get' || kind === 'ssl_get') {
    const url = named(c.block, 'url')[0]?.block;
    if (kind === 'ssl_get') ctx.note(c, file, 'SSL_GET', 'checked as plain HTTP (fwlb has no TLS check): point it at a plain HTTP path or use a script');
    if (named(url, 'digest').length) ctx.note(c, file, 'url digest', 'not carried: fwlb checks the status code');
    const status = value(url, 'status_code');
    return { http: { path: value(url, 'path') ?? '/', ...(status && /^\d{3}$/.test(status) ? { status: Number(status) } : {}), ...(port ? { port: Number(port) } : {}) }, ...common };
  }
  if (kind === 'misc_check') {
    const path = named(c.block, 'misc_path')[0]?.words.slice(1) ?? [];
    const argv = path.length === 1 ? path[0]!.split(/\s+/) : path;
    if (!argv[0]) return undefined;
    return { script: { path: argv[0], ...(argv.length > 1 ? { args: argv.slice(1) } : {}) }, ...common };
  }
  ctx.note(c, file, c.words[0]!, 'not carried: fwlb checks by TCP connect, HTTP or a script');
  return undefined;
}

function syncSection(ctx: Ctx, ct: readonly ImportSource[], nodes: Record<string, { addresses: Record<string, string> }>, nodeNames: readonly string[]): Record<string, unknown> | undefined {
  if (!ct.length) return undefined;
  let role: string | undefined;
  ct.forEach((src, i) => {
    const sync = named(src.statements, 'sync')[0]?.block;
    const link = named(sync, 'multicast')[0] ?? named(sync, 'udp')[0] ?? named(sync, 'tcp')[0];
    const ifname = value(link?.block, 'interface');
    const addr = value(link?.block, 'ipv4_interface') ?? value(link?.block, 'ipv4_source_address') ?? value(link?.block, 'ipv6_source_address');
    if (!link || !ifname) {
      ctx.note(named(src.statements, 'sync')[0], src.file, 'Sync', 'no Multicast, UDP or TCP section with an Interface: state_sync left out');
      return;
    }
    role ??= ctx.role(ifname);
    const node = nodeNames[i];
    if (node && addr) nodes[node]!.addresses[ctx.role(ifname)] = addr;
    else if (!node) ctx.note(link, src.file, 'conntrackd file', 'more conntrackd files than keepalived ones: the conntrackd files are matched to the nodes in the order given');
    if (i === 0) {
      const mode = named(sync, 'mode')[0];
      if (mode && mode.words[1]?.toUpperCase() !== 'FTFW') ctx.note(mode, src.file, `Mode ${mode.words[1]}`, 'fwlb\'s sync always acknowledges and resends (as FTFW)');
      if (link.words[0]?.toLowerCase() === 'multicast') ctx.note(link, src.file, 'Multicast', 'fwlb sends to each peer\'s address on the sync interface (unicast UDP, authenticated with cluster.key_file)');
      const filter = named(named(src.statements, 'general')[0]?.block, 'filter')[0];
      if (filter) ctx.note(filter, src.file, 'Filter', 'not carried: fwlb replicates every entry (its own sync and VRRP traffic is never tracked)');
    }
  });
  return role ? { interface: role } : undefined;
}
