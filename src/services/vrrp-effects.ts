/**
 * The VRRP groups' effects carried out (fsm/vrrp/group.ts effects): adverts on the raw
 * sockets (a master's by their own clock, renewed by each of the machine's; anything else
 * once), VIPs added and removed through rtnetlink one at a time in order (a removal during a
 * graceful stop held back by the handover), gratuitous ARPs after the addresses are in place,
 * repeated and refreshed while master, timers, counters, drops and log lines.
 */
import { VRRP_MCAST_GROUP_V4, VRRP_MCAST_GROUP_V6 } from '../codec/vrrp/constants.js';
import type { VrrpDropReason } from '../codec/vrrp/drop.js';
import { encodeAdvert } from '../codec/vrrp/packet.js';
import { initialHandover, stepHandover, type HandoverEvent, type HandoverState, type HeldRelease } from '../fsm/vrrp/handover.js';
import type { SyncGroupEffect, SyncGroupEvent, VrrpCounter, VrrpTimer } from '../fsm/vrrp/index.js';
import type { Clock } from '../lib/clock.js';
import { bareAddress, ipFamily } from '../lib/ip.js';
import type { Logger } from 'pino';
import type { VrrpLinkIO, VrrpNet } from '../ports/vrrp-net.js';
import { linkKey, type GroupRuntime, type Member } from './vrrp-groups.js';

/**
 * A master's adverts go on by their own clock for this many advert intervals after the
 * daemon's machine last renewed them: a loop held up for less misses no advert; a daemon
 * hung for longer is a dead master (as the BEATs' watchdog: fsm/liveness-core.ts).
 */
export const ADVERT_LEASE_INTERVALS = 3;
const bare = bareAddress;
/** An address with its prefix length (a bare one is a host address). */
export const withLen = (a: string) => (a.includes('/') ? a : `${a}/${ipFamily(a) === 6 ? 128 : 32}`);
const TIMER_EVENT: Record<VrrpTimer, 'master_down_timer' | 'advert_timer' | 'preempt_delay_timer'> = {
  master_down: 'master_down_timer',
  advert: 'advert_timer',
  preempt_delay: 'preempt_delay_timer',
};

/** What the effects need of the service that runs the groups. */
export interface EffectHost {
  readonly deps: { clock: Clock; log: Logger; net: VrrpNet };
  readonly links: ReadonlyMap<string, VrrpLinkIO>;
  running(): boolean;
  feed(g: GroupRuntime, event: SyncGroupEvent, at?: number): void;
  drainLinks(): void;
  count(counter: VrrpCounter): void;
  drop(reason: VrrpDropReason): void;
  notify(g: GroupRuntime, state: string): void;
}

export class VrrpEffects {
  /** Gratuitous ARPs sent by the refresh while master (not those of a takeover). */
  garpRefreshes = 0;
  /** Address changes in order per link and family (vrrp-groups.ts linkKey), the links apart. */
  private readonly addressQueues = new Map<string, Promise<void>>();
  /**
   * During a graceful stop: the VIP removals held back until the new master is heard on that
   * virtual router (or the deadline), so that the old master forwards on meanwhile and a
   * graceful handover loses nothing (fsm/vrrp/handover.ts).
   */
  private handover: HandoverState | undefined;

  constructor(private readonly h: EffectHost) {}

  /** A graceful stop begins: removals are held back from now on. */
  beginHandover(): void {
    this.handover = initialHandover();
  }

  handingOver(): boolean {
    return this.handover !== undefined;
  }

  /** The virtual routers whose removals are held. */
  held(): string[] {
    return [...(this.handover?.held.keys() ?? [])];
  }

  /** The handover's machine stepped, its releases carried out; true when nothing is held any more. */
  handoverStep(e: HandoverEvent): boolean {
    if (!this.handover) return true;
    const r = stepHandover(this.handover, e);
    this.handover = r.state;
    for (const rel of r.release) this.releaseVips(rel);
    return r.done;
  }

  /** The handover's end (confirmed or its deadline): whatever is still held goes now. */
  endHandover(): void {
    this.handoverStep({ type: 'deadline' });
    this.handover = undefined;
  }

  /** The address changes queued so far, done. */
  settled(): Promise<void> {
    return Promise.all(this.addressQueues.values()).then(() => undefined);
  }

  run(g: GroupRuntime, e: SyncGroupEffect): void {
    const h = this.h;
    const { log, net } = h.deps;
    if (e.type === 'log') {
      log[e.level]({ ...e.fields, group: g.name }, e.msg);
      return;
    }
    if (e.type === 'notify') {
      g.transitions++;
      h.notify(g, e.state);
      return;
    }
    const m = g.members.get(e.member);
    if (!m) return;
    const fx = e.effect;
    switch (fx.type) {
      case 'send_advert': {
        const link = h.links.get(m.link);
        if (!link) return;
        const dsts = m.unicast.length ? m.unicast : [m.family === 6 ? VRRP_MCAST_GROUP_V6 : VRRP_MCAST_GROUP_V4];
        const st = g.state.members[m.name];
        // A master's advert goes on by its own clock, renewed by each of ours; anything else
        // (priority 0, the advert of a machine no longer master) goes once, the clock stopped.
        const periodic = st?.state === 'master' && fx.advert.priority > 0;
        if (!periodic) link.stopAdvertising(fx.advert.vrid);
        for (const dst of dsts) {
          try {
            const payload = encodeAdvert(fx.advert, { src: m.primary, dst });
            // The machine's own advert timer only renews; any other advert (a new master, an
            // answer to a release) leaves now.
            if (periodic) link.advertise(fx.advert.vrid, payload, dst, st.config.advertIntervalMs, ADVERT_LEASE_INTERVALS * st.config.advertIntervalMs, !fx.scheduled);
            else link.send(payload, dst);
          } catch (err) {
            log.warn({ group: g.name, member: m.name, err: (err as Error).message }, 'advert not sent');
          }
        }
        return;
      }
      case 'add_vips':
        for (const a of fx.addresses) this.addressOp(m.link, () => net.addAddress(m.ifname, withLen(a)), `add ${a} on ${m.ifname}`);
        return;
      case 'remove_vips': {
        const release = { ifname: m.ifname, addresses: fx.addresses };
        if (this.handover) this.handoverStep({ type: 'hold', key: `${m.link}/${g.state.members[m.name]!.config.vrid}`, release });
        else this.releaseVips(release);
        return;
      }
      case 'send_garp': {
        const addrs = fx.addresses.map(bare);
        // After the addresses are in place: a GARP for an address we do not hold yet would mislead.
        this.addressOp(m.link, async () => {
          if (g.state.members[m.name]?.state !== 'master') return; // left master while the addresses were being added
          h.links.get(m.link)?.garp(addrs);
          for (let i = 1; i < g.garp.repeat; i++) {
            const key = `${m.name}/garp/${i}`;
            // Only while still master: a repeat that went out after the instance left master
            // (fault, a higher priority back) pointed the hosts at a node that no longer holds
            // the addresses.
            g.timers.after(key, i * g.garp.intervalMs, () => {
              if (h.running() && g.state.members[m.name]?.state === 'master') h.links.get(m.link)?.garp(addrs);
            });
          }
          this.garpRefresh(g, m, addrs);
        }, `gratuitous ARP on ${m.ifname}`);
        return;
      }
      case 'arm_timer': {
        const key = `${m.name}/${fx.timer}`;
        g.timers.at(key, fx.atMs, (now) => {
          if (fx.timer === 'master_down') {
            // The adverts that came while this loop was held up are read before the master
            // is declared down: after a stall, timers run before the sockets are read, and
            // a master advertising on time would be taken for dead. One that re-armed the
            // timer leaves nothing to do.
            h.drainLinks();
            if (g.timers.has(key) || !h.running()) return;
          }
          h.feed(g, { type: 'member', member: m.name, event: { type: TIMER_EVENT[fx.timer] } }, now);
        });
        return;
      }
      case 'cancel_timer': {
        g.timers.cancel(`${m.name}/${fx.timer}`);
        return;
      }
      case 'notify':
        return; // the group's own notify speaks for its members
      case 'log':
        log[fx.level]({ ...fx.fields, group: g.name, instance: m.name }, fx.msg);
        return;
      case 'released_heard':
        return; // the sync group's to read (fsm/vrrp/group.ts)
      case 'count':
        h.count(fx.counter);
        return;
      case 'drop':
        h.drop(fx.reason);
        return;
      default: {
        const never: never = fx;
        log.warn({ effect: never }, 'unknown VRRP effect');
      }
    }
  }

  /**
   * While the instance stays master, a gratuitous ARP for its addresses every refresh
   * interval (keepalived's vrrp_garp_master_refresh, on here by default): a switch that lost
   * its table relearns where the VIPs are without waiting for a client to ask.
   */
  private garpRefresh(g: GroupRuntime, m: Member, addrs: string[]): void {
    if (g.garp.refreshMs <= 0) return;
    g.timers.after(`${m.name}/garp-refresh`, g.garp.refreshMs, () => {
      if (!this.h.running() || g.state.members[m.name]?.state !== 'master') return;
      this.h.links.get(m.link)?.garp(addrs);
      this.garpRefreshes++;
      this.garpRefresh(g, m, addrs);
    });
  }

  releaseVips(r: HeldRelease): void {
    const lane = linkKey(r.ifname, r.addresses[0]?.includes(':') ? 6 : 4);
    for (const a of r.addresses) this.addressOp(lane, () => this.h.deps.net.delAddress(r.ifname, withLen(a)), `remove ${a} from ${r.ifname}`);
  }

  /**
   * Address changes of one link and family (`lane`) run one at a time, in order (a GARP after
   * the addresses it speaks for); the lanes run side by side, so that a takeover's IPv6
   * neighbour advertisements do not wait for every IPv4 address of the group, nor one link's
   * for another's. A failure is logged, never thrown.
   */
  private addressOp(lane: string, op: () => Promise<void>, what: string): void {
    const q = (this.addressQueues.get(lane) ?? Promise.resolve()).then(op).catch((err: Error) => this.h.deps.log.error({ err: err.message, what }, 'address change failed'));
    this.addressQueues.set(lane, q);
  }
}
