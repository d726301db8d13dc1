/**
 * Failure injection, named as in PRODUCT.md ("Failure modes"): crash, link down, daemon
 * kill, graceful stop, and recovery after a crash.
 */
import { FwlbError } from '../lib/errors.js';
import type { Lab } from './lab.js';
import { ipBatch, linkAddresses } from './netns.js';
import { routeLines } from './plan.js';
import { killNamespaceProcesses, type ExitInfo } from './processes.js';
import { bootAddresses, findIface } from './topology.js';

const DEFAULT_GRACEFUL_TIMEOUT_MS = 20_000;

/**
 * Crash (power loss): every interface of the node down first, so not one more frame leaves
 * it, then every process in its namespace SIGKILLed. The kernel state of the namespace
 * (addresses, nftables, conntrack) stays until `recover`, like RAM until the reboot.
 */
export async function crash(lab: Lab, node: string): Promise<{ killed: number[] }> {
  const h = lab.host(node);
  await ipBatch(h.ns, h.ifaces.map((i) => `link set ${i.name} down`));
  const killed = await killNamespaceProcesses(h.ns);
  lab.setCrashed(h.name, true);
  lab.pruneDead(h.name);
  return { killed };
}

/**
 * Crash behind a switch (a hung or powered-off node, a VM): every process in the namespace
 * SIGKILLed first, then the node falls silent with its links up — nftables tables that drop
 * every IP packet and ARP frame in and out of the namespace — so no peer sees a carrier
 * change, not even on a direct sync cable. What is left for a peer to notice is silence.
 * `recover` flushes the tables with the rest of the ruleset.
 */
export async function crashSwitched(lab: Lab, node: string): Promise<{ killed: number[] }> {
  const h = lab.host(node);
  const killed = await killNamespaceProcesses(h.ns);
  const chains = (hooks: string[]) => hooks.map((k) => `  chain ${k} { type filter hook ${k} priority -400; policy drop; }`).join('\n');
  await lab.exec(h.name, ['nft', '-f', '-'], `table inet lab_silence {\n${chains(['input', 'output', 'forward'])}\n}\ntable arp lab_silence {\n${chains(['input', 'output'])}\n}\n`);
  lab.setCrashed(h.name, true);
  lab.pruneDead(h.name);
  return { killed };
}

/**
 * One interface down. By default on the node's side (admin down, as `ip link set down`);
 * with `cable` the switch port goes down instead, so the node sees carrier loss.
 */
export async function linkDown(lab: Lab, node: string, iface: string, opts: { cable?: boolean } = {}): Promise<void> {
  const h = lab.host(node);
  const i = findIface(h, iface);
  // A direct link has no switch port: either end down is carrier loss at the other.
  if (opts.cable && !i.direct) await ipBatch(lab.spec.switchNs, [`link set ${i.port} down`]);
  else await ipBatch(h.ns, [`link set ${i.name} down`]);
}

/**
 * Both ends of the interface up again; the node's static routes restored (admin down drops
 * them), and its IPv6 address (admin down drops IPv6 addresses, IPv4 ones stay).
 */
export async function linkUp(lab: Lab, node: string, iface: string): Promise<void> {
  const h = lab.host(node);
  const i = findIface(h, iface);
  if (!i.direct) await ipBatch(lab.spec.switchNs, [`link set ${i.port} up`]);
  await ipBatch(h.ns, [`link set ${i.name} up`, ...(i.address6 ? [`address replace ${i.address6}/64 dev ${i.name}`] : []), ...routeLines(h)]);
}

function daemonOf(lab: Lab, node: string) {
  const d = lab.daemon(node);
  if (!d) throw new FwlbError('ERR_LAB_NO_DAEMON', `no daemon running on ${lab.host(node).name}`);
  return d;
}

/** kill -9 of the daemon alone; the kernel keeps forwarding with whatever it was given. */
export async function daemonKill(lab: Lab, node: string): Promise<ExitInfo> {
  const d = daemonOf(lab, node);
  d.kill('SIGKILL');
  const e = await d.wait(5000);
  lab.forget(d.pid);
  return e;
}

/**
 * SIGTERM to the daemon and wait for it to exit. If it is still running after
 * `timeoutMs`, it is SIGKILLed and ERR_LAB_TIMEOUT is thrown: a graceful stop that hangs
 * is a failure.
 */
export async function gracefulStop(lab: Lab, node: string, timeoutMs = DEFAULT_GRACEFUL_TIMEOUT_MS): Promise<ExitInfo> {
  const d = daemonOf(lab, node);
  d.kill('SIGTERM');
  try {
    return await d.wait(timeoutMs);
  } catch (e) {
    d.kill('SIGKILL');
    await d.wait(5000).catch(() => undefined);
    throw new FwlbError('ERR_LAB_TIMEOUT', `daemon on ${lab.host(node).name} (pid ${d.pid}) ignored SIGTERM for ${timeoutMs} ms; killed`, { cause: e });
  } finally {
    lab.forget(d.pid);
  }
}

/**
 * The node comes back as after a reboot. A node that was not crashed goes down first, as a
 * rebooting machine stops forwarding before its state is gone: links down, so no frame
 * crosses it while its addresses, ruleset and conntrack are cleared (a half-cleared node
 * forwarding, its NAT hooks gone, sent a server's reply un-NATed to the client and the
 * client's reset killed the session). Then: links up, only its boot addresses (its own, plus
 * the VIPs pinned by `vipsOn`), the nftables ruleset flushed (a reboot keeps no table,
 * `inet fwlb` included), conntrack flushed, static routes back, and on clients and webs
 * the backend server started again. The fwlb daemon is not restarted: tests do that.
 */
export async function recover(lab: Lab, node: string): Promise<void> {
  const h = lab.host(node);
  await ipBatch(h.ns, h.ifaces.map((i) => `link set ${i.name} down`));
  // Anything left running is from before the "reboot".
  await killNamespaceProcesses(h.ns);
  lab.pruneDead(h.name);
  const ports = h.ifaces.filter((i) => !i.direct).map((i) => `link set ${i.port} up`);
  if (ports.length) await ipBatch(lab.spec.switchNs, ports);

  const extra: string[] = [];
  for (const l of await linkAddresses(h.ns)) {
    const i = h.ifaces.find((x) => x.name === l.ifname);
    if (!i) continue;
    const want = bootAddresses(i);
    for (const a of l.addr_info) {
      if (a.family === 'inet6' && a.scope === 'link') continue;
      const cidr = `${a.local}/${a.prefixlen}`;
      if (!want.includes(cidr)) extra.push(`address del ${cidr} dev ${i.name}`);
    }
  }
  await ipBatch(h.ns, extra);
  // Re-read: deleting a primary address may take secondaries with it.
  const after = await linkAddresses(h.ns);
  const addrs: string[] = [];
  for (const i of h.ifaces) {
    const have = (after.find((l) => l.ifname === i.name)?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
    for (const a of bootAddresses(i)) if (!have.includes(a)) addrs.push(`address add ${a} dev ${i.name}`);
  }
  await ipBatch(h.ns, addrs);
  // The tables go while the links are still down; only a clean node comes up.
  await lab.exec(h.name, ['nft', 'flush', 'ruleset']);
  await lab.exec(h.name, ['conntrack', '-F']);
  await ipBatch(h.ns, ['link set lo up', ...h.ifaces.map((i) => `link set ${i.name} up`), ...routeLines(h)]);
  lab.setCrashed(h.name, false);
  if (h.runsServer) await lab.startServers([h]);
}
