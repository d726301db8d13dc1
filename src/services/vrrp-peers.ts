/**
 * What the liveness says of the fwlb peers, applied to VRRP: a peer gone releases the
 * instances it was master of (releaseGonePeer), and adverts in a peer's name are held to what that peer says itself in its authenticated
 * BEATs (fsm/liveness.ts checkAdvert, through the liveness service): one that claims a
 * priority or a VRID the peer does not report is refused as forged; a priority 0 (a release)
 * that its BEATs do not confirm yet is held until the peer's next BEAT decides it (taken if
 * the peer now says it released or is leaving; refused if it still says it is master), or
 * refused once older than the BEATs' detection time. Without the liveness: plain RFC, every
 * advert taken. Refusals are counted by reason and logged at most every 10 s.
 */
import type { Logger } from 'pino';
import type { VrrpAdvert } from '../codec/vrrp/packet.js';
import type { AdvertCheck } from '../fsm/liveness.js';
import type { Clock } from '../lib/clock.js';
import type { SyncGroupEvent } from '../fsm/vrrp/index.js';
import type { GroupRuntime } from './vrrp-groups.js';

export type AdvertChecker = (address: string, vrid: number, priority: number) => AdvertCheck;
type ForgedReason = 'forged_priority' | 'forged_vrid' | 'forged_release';

export class ForgedAdverts<O> {
  private check: AdvertChecker | undefined;
  /** Asks for the peers' next BEATs (a held release waits for one). */
  private wantBeat: (() => void) | undefined;
  /** Priority-0 adverts waiting for their sender's next BEAT, by interface/VRID/source. */
  private readonly held = new Map<string, { owner: O; ifname: string; advert: VrrpAdvert; from: string; atMs: number }>();
  private lastLogAt = -Infinity;

  constructor(private readonly d: { clock: Clock; log: Logger; drop: (reason: ForgedReason) => void; accept: (owner: O, advert: VrrpAdvert, from: string) => void }) {}

  use(check: AdvertChecker, wantBeat?: () => void): void {
    this.check = check;
    this.wantBeat = wantBeat;
  }

  /** An advert for one of our instances from `from`: true to take it now (else held or refused). */
  judge(owner: O, ifname: string, advert: VrrpAdvert, from: string): boolean {
    const check = this.check?.(from, advert.vrid, advert.priority) ?? 'ok';
    if (check === 'ok') return true;
    if (check === 'release_unconfirmed') {
      // Perhaps genuine, and its BEAT not here yet: the next BEAT of that peer decides.
      this.held.set(`${ifname}/${advert.vrid}/${from}`, { owner, ifname, advert, from, atMs: this.d.clock.now() });
      this.wantBeat?.();
      return false;
    }
    this.refuse(check === 'priority_mismatch' ? 'forged_priority' : 'forged_vrid', from, ifname, advert.vrid, advert.priority);
    return false;
  }

  /** A BEAT came from the peer at these addresses: its held releases are decided now; those older than `maxAgeMs` are refused. */
  recheck(addresses: ReadonlySet<string>, maxAgeMs: number): void {
    if (this.held.size === 0) return;
    const now = this.d.clock.now();
    for (const [key, h] of this.held) {
      if (!addresses.has(h.from) && now - h.atMs < maxAgeMs) continue;
      this.held.delete(key);
      const check = this.check?.(h.from, h.advert.vrid, h.advert.priority) ?? 'ok';
      if (check === 'ok') this.d.accept(h.owner, h.advert, h.from);
      else this.refuse('forged_release', h.from, h.ifname, h.advert.vrid, 0);
    }
    // Still waiting for one: every BEAT looks again, until none is held.
    if (this.held.size > 0) this.wantBeat?.();
  }

  private refuse(reason: ForgedReason, from: string, ifname: string, vrid: number, priority: number): void {
    this.d.drop(reason);
    const now = this.d.clock.now();
    if (now - this.lastLogAt < 10_000) return;
    this.lastLogAt = now;
    this.d.log.warn({ event: 'forged_advert', reason, from, ifname, vrid, priority }, `advert in the name of fwlb peer ${from} refused: it contradicts the peer's own authenticated state (${reason})`);
  }
}

/**
 * The instances of `groups` whose master is the gone peer (an advert from one of its
 * addresses) are released as if by its priority 0: at once if no live peer outranks us for
 * that VRID, else after Skew_Time; each only once one advert interval has passed since the
 * master's last advert, with none since and the peer still gone (VrrpService.peerGone).
 * Returns how many instances were released or are waiting to be.
 */
export function releaseGonePeer(
  groups: readonly GroupRuntime[],
  now: number,
  gone: { addresses: ReadonlySet<string>; why: string; outranked: (vrid: number, priority: number) => boolean; stillGone: () => boolean },
  host: { running: () => boolean; feed: (g: GroupRuntime, e: SyncGroupEvent) => void },
): number {
  let n = 0;
  for (const g of groups) {
    for (const name of g.members.keys()) {
      const st = g.state.members[name];
      if (!st || st.state !== 'backup' || !st.master || !gone.addresses.has(st.master.address)) continue;
      n++;
      const heardAt = st.master.seenAtMs;
      const release = () => {
        const cur = g.state.members[name];
        // An advert since (the master lives), another master, or the peer back: nothing to do.
        if (!host.running() || !cur || cur.state !== 'backup' || cur.master?.address !== st.master!.address || cur.master.seenAtMs !== heardAt || !gone.stillGone()) return;
        const skewMs = gone.outranked(cur.config.vrid, cur.priority) ? undefined : 0;
        host.feed(g, { type: 'member', member: name, event: { type: 'master_released', why: gone.why, ...(skewMs === undefined ? {} : { skewMs }) } });
      };
      const wait = heardAt + st.masterAdverIntervalMs - now;
      if (wait > 0) g.timers.after(`${name}/peer-gone`, Math.ceil(wait), release);
      else release();
    }
  }
  return n;
}
