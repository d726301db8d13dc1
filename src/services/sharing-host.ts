/**
 * The host side of active-active sharing (issue 14): what a node sets up to take its share
 * and takes down when it stops. Pure of I/O: main.ts hands it the kernel.
 *
 * Start, in this order (the ruleset is already in: it drops every shared frame until the
 * gate exists, and every bucket until the node is ready):
 *  1. the owned set emptied (a restart may find the last run's set in the kernel);
 *  2. the ARP table: the shared addresses answer with the shared MACs; for IPv6 ones, the
 *     neighbour discovery table (compiler/sharing-nd.ts) does the same;
 *  3. the gate, a table owned by this process: its death closes the node (ruleset.ts);
 *  4. the shared MACs joined on their interfaces, so the NIC takes their frames;
 *  5. the shared addresses added (the kernel answers ARP for them, and they are local).
 * The node takes buckets when it is ready (SharingService.setReady, from main.ts).
 *
 * Stop: gives the buckets up (the peers have already been told by the BEAT that says we
 * leave, and take them), then undoes 5, 4 and 3. The ruleset and the ARP table stay.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { NodeView } from '../config/node.js';
import { compileAliveGate, sharedMacs, SHARED_CARRIED_COUNTER, SHARED_DEAD_COUNTER, SHARED_OTHERS_COUNTER } from '../compiler/ruleset.js';
import { compileSharingArp } from '../compiler/sharing-arp.js';
import { compileSharingNd } from '../compiler/sharing-nd.js';
import type { NftTableSpec } from '../codec/netlink/nft-batch.js';
import type { SharingService, SharingStatus } from './sharing.js';
import type { Clock } from '../lib/clock.js';

export interface SharingHostDeps {
  log: Logger;
  clock: Clock;
  service: SharingService;
  addAddress(ifname: string, cidr: string): Promise<void>;
  delAddress(ifname: string, cidr: string): Promise<void>;
  joinMac(ifname: string, mac: string): void;
  leaveMac(ifname: string, mac: string): void;
  /** Applies a script to the kernel (the ARP table), in the kernel queue. */
  apply(script: string): Promise<void>;
  /** Replaces a table the kernel gets over netlink (the IPv6 neighbour discovery rewrite), in the kernel queue. */
  replaceTable(spec: NftTableSpec): Promise<void>;
  /** Creates the gate in a table this process owns; close() deletes it. */
  openGate(script: string): { close(): void };
  /** The script that sets the owned set to these marks (compiler/map-update.ts ownedSetScript). */
  ownedScript(marks: readonly number[]): string;
  /** The links with shared addresses that are down now (the node carries nothing meanwhile). */
  linksDown?(): string[];
  /** How long the peers get to take our buckets after the BEAT that says we leave. */
  handoverMs: number;
  /** A config was applied (a reload): what is compiled from it after the start, BGP's relay, takes it. */
  onConfig?(config: Config): void;
}

export interface SharingHostStatus extends SharingStatus {
  addresses: string[];
  macs: Record<string, string>;
  gate: boolean;
  /** Links with shared addresses that are down: the node carries nothing until they are up. */
  linksDown: string[];
  /**
   * Packets of shared flows this node forwarded, dropped as another node's, dropped with no
   * daemon (its counters), and when they were read (ms since the epoch): a rate is the
   * difference of two readings over the difference of their `at`, not over the time between
   * two status calls, which a busy daemon answers late.
   */
  packets: { carried: number; others: number; noDaemon: number; at: number };
}

export class SharingHost {
  private gate: { close(): void } | undefined;
  private held: { ifname: string; cidr: string }[] = [];
  private joined: { ifname: string; mac: string }[] = [];
  private macs: Record<string, string> = {};

  constructor(private readonly deps: SharingHostDeps) {}

  async start(c: Config, view: NodeView): Promise<void> {
    const sh = c.sharing;
    if (!sh) return;
    const { log } = this.deps;
    this.deps.service.resync();
    await this.deps.service.settled();
    await this.deps.apply(compileSharingArp(c, view));
    const nd = compileSharingNd(c, view);
    if (nd) await this.deps.replaceTable(nd);
    this.gate = this.deps.openGate(compileAliveGate(c));
    this.macs = sharedMacs(c);
    for (const [role, mac] of Object.entries(this.macs)) {
      const ifname = view.interfaces[role] ?? role;
      this.deps.joinMac(ifname, mac);
      this.joined.push({ ifname, mac });
    }
    for (const [role, list] of Object.entries(sh.addresses)) {
      const ifname = view.interfaces[role] ?? role;
      for (const cidr of list) {
        await this.deps.addAddress(ifname, cidr);
        this.held.push({ ifname, cidr });
      }
    }
    log.info({ event: 'sharing_up', addresses: this.held.map((h) => `${h.cidr} on ${h.ifname}`), macs: this.macs }, `sharing: ${this.held.length} shared address(es) up; the node takes its share once it is ready`);
  }

  /** What a full ruleset apply appends, in its transaction, so that the owned set is never empty meanwhile. */
  ownedScript(): string {
    return this.deps.ownedScript(this.deps.service.wantedMarks());
  }

  carries(): boolean {
    return this.deps.service.status().owned > 0;
  }

  /**
   * The ruleset was applied: the owned set is written again (a full apply resets it), and the
   * relay again from the config applied (its announced addresses may have changed).
   */
  afterCommit(config: Config): void {
    this.deps.onConfig?.(config);
    this.deps.service.resync();
  }

  async stop(): Promise<void> {
    if (!this.gate && !this.held.length) return;
    const { log, service } = this.deps;
    // The peers heard that we leave (main.ts: liveness.announceLeaving) and take our buckets
    // now; until then ours stay ours, so that nothing falls between the two.
    await new Promise<void>((r) => void this.deps.clock.after(this.deps.handoverMs, r));
    service.setReady(false);
    await service.settled();
    for (const h of this.held.splice(0)) await this.deps.delAddress(h.ifname, h.cidr).catch((e: Error) => log.warn({ err: e.message }, `cannot remove shared address ${h.cidr}`));
    for (const j of this.joined.splice(0)) {
      try {
        this.deps.leaveMac(j.ifname, j.mac);
      } catch (e) {
        log.warn({ err: (e as Error).message }, `cannot leave multicast MAC ${j.mac}`);
      }
    }
    this.gate?.close();
    this.gate = undefined;
    log.info({ event: 'sharing_down' }, 'sharing: buckets given up, shared addresses removed');
  }

  status(counters: ReadonlyMap<string, number>, countersAt: number): SharingHostStatus {
    return {
      ...this.deps.service.status(),
      addresses: this.held.map((h) => h.cidr),
      macs: this.macs,
      gate: !!this.gate,
      linksDown: this.deps.linksDown?.() ?? [],
      packets: { carried: counters.get(SHARED_CARRIED_COUNTER) ?? 0, others: counters.get(SHARED_OTHERS_COUNTER) ?? 0, noDaemon: counters.get(SHARED_DEAD_COUNTER) ?? 0, at: countersAt },
    };
  }
}
