/**
 * Announcements by BGP through BIRD 2 (issue 26). The node's answer to "what do I announce"
 * (fsm/bgp.ts, from the cluster events' readiness, the services' availability and the stop's
 * phase) is put in place in one order that never announces what it should not:
 *
 *   withdraw all (device down) first when nothing may be announced;
 *   the include file rewritten (compiler/bird.ts) and `configure` sent over BIRD's socket,
 *   only when its text changes;
 *   the device up last, so a route appears only with the file that allows it.
 *
 * One application at a time; what changes meanwhile is applied next, the latest state only.
 * A BIRD that cannot be reached or refuses the file leaves the node withdrawn (device down:
 * no stale announcement survives an error) and is tried again every RETRY_MS; a node that
 * withdraws loses no flow, the peers carry them. A graceful stop drains: the routes tagged
 * GRACEFUL_SHUTDOWN for `bgp.drain`, then withdrawn, then the stop goes on.
 */
import type { Logger } from 'pino';
import type { Clock, Timer } from '../lib/clock.js';
import type { BgpConfig } from '../config/schema.js';
import type { Stamped } from '../fsm/cluster.js';
import { desiredAnnouncement, sameAnnouncement, type BgpDesired, type BgpPhase } from '../fsm/bgp.js';
import { compileBirdAnnouncement } from '../compiler/bird.js';
import { birdMessage, isBirdError, type BirdReply } from '../codec/bird/reply.js';
import { bgpSession, exportedRoutes, parseBfdSessions, parseProtocols } from '../codec/bird/show.js';
import type { BgpMachine } from '../ports/bgp.js';
import { RELAY_LOCAL_COUNTER, RELAY_SEEN_COUNTER } from '../compiler/relay.js';

/** A BIRD that failed is tried again this often (an error path only: an idle node does not poll BIRD). */
export const RETRY_MS = 2000;
/** A status waits this long for BIRD's word on its protocols. */
const STATUS_WAIT_MS = 500;
/**
 * BIRD is asked for its protocols at most this often: status calls within it (the status page
 * polls each second; many clients at once) share one answer. A `configure` forgets it.
 */
export const PROTOCOLS_FRESH_MS = 1000;

/** The node's part of `bgp:`: the file and socket of its BIRD, and what it announces. */
export interface BgpSettings {
  node: string;
  socket: string;
  include: string;
  device: string;
  communities: BgpConfig['communities'];
  drainMs: number;
  extra: readonly string[];
  /** Each service's name and address. */
  services: readonly { name: string; address: string }[];
}

export interface BgpStatus {
  socket: string;
  include: string;
  device: string;
  deviceUp: boolean;
  phase: BgpPhase;
  ready: boolean;
  /** In the file now (announced while the device is up). */
  announced: string[];
  gracefulShutdown: boolean;
  why: string;
  /** The last `configure`: when (ISO), BIRD's word. */
  lastConfigure: { at: string; ok: boolean; message: string } | null;
  /** What failed last, while it still does; null once it works. */
  error: string | null;
  configures: number;
  /** BIRD's protocols as it says now (null: it did not answer within the status's wait). */
  protocols: { name: string; proto: string; state: string; session: string | null; info: string; exported: Record<string, number> }[] | null;
  /** BIRD's BFD sessions (empty: it runs no BFD; null: it did not answer). */
  bfd: { address: string; iface: string; state: string; since: string }[] | null;
  /**
   * With `bgp.relay`: packets to the announced addresses that came in on the outer link since
   * the relay table was made, and of those the ones relayed to their bucket's owner; when read
   * (ms since the epoch). Null without a relay, or when the kernel did not answer.
   */
  relay: { seen: number; relayed: number; at: number } | null;
}

export class BgpService {
  private ready = false;
  private notReadyReason = 'starting';
  private phase: BgpPhase = 'running';
  private readonly available = new Map<string, boolean>();
  private applied: BgpDesired | undefined;
  /** The last question to BIRD about its protocols: when, and its answer (shared while fresh). */
  private protocolsAsked: { at: number; answer: Promise<Pick<BgpStatus, 'protocols' | 'bfd'>> } | undefined;
  private deviceUp = false;
  private fileText: string | undefined;
  private running = false;
  private retry: Timer | undefined;
  private drainTimer: Timer | undefined;
  private drainDone: (() => void) | undefined;
  /** The drain under way, joined by a second call. */
  private draining: Promise<void> | undefined;
  /** Something changed while an application ran: it looks again before it ends. */
  private again = false;
  private lastConfigure: BgpStatus['lastConfigure'] = null;
  private error: string | null = null;
  private configures = 0;
  private closed = false;
  /** Callers of settled() waiting for the application under way. */
  private waiters: (() => void)[] = [];

  constructor(
    private settings: BgpSettings,
    private readonly deps: { machine: BgpMachine; clock: Clock; log: Logger },
  ) {}

  /** The cluster events: readiness. */
  readonly onClusterEvent = (e: Stamped): void => {
    if (e.type !== 'ready') return;
    this.ready = e.ready;
    this.notReadyReason = e.ready ? '' : `not ready (${e.reason})`;
    this.kick();
  };

  /** A service gained its first or lost its last available backend. */
  setServiceAvailable(service: string, available: boolean): void {
    if (this.available.get(service) === available) return;
    this.available.set(service, available);
    this.kick();
  }

  /** A reload's new settings (the routes follow at once). */
  reconfigure(s: BgpSettings): void {
    this.settings = s;
    this.kick();
  }

  /**
   * Drains (a graceful stop, maintenance): the routes tagged GRACEFUL_SHUTDOWN, then after
   * `drain` withdrawn. Resolves once withdrawn (at once with `now`: a forced stop; and when
   * nothing is announced: a node not announcing has nothing to drain). A drain under way is
   * joined, not restarted.
   */
  drain(why: string, now = false): Promise<void> {
    if (this.draining) {
      if (now) this.endDrain();
      return this.draining;
    }
    if (this.phase === 'withdrawn') return Promise.resolve();
    const atOnce = now || !this.deviceUp;
    this.phase = atOnce ? 'withdrawn' : 'draining';
    this.deps.log.info({ event: 'bgp_drain', why, drainMs: atOnce ? 0 : this.settings.drainMs }, atOnce ? `BGP: withdrawing at once (${why})` : `BGP: draining for ${this.settings.drainMs} ms before withdrawing (${why})`);
    this.kick();
    if (atOnce) return this.settled();
    this.draining = new Promise<void>((resolve) => {
      this.drainDone = () => {
        this.drainDone = undefined;
        this.drainTimer?.cancel();
        this.phase = 'withdrawn';
        this.kick();
        void this.settled().then(() => {
          this.draining = undefined;
          resolve();
        });
      };
      this.drainTimer = this.deps.clock.after(this.settings.drainMs, () => this.drainDone?.());
    });
    return this.draining;
  }

  /** Ends a drain under way now (`fwlb stop --force`, a second SIGTERM). */
  endDrain(): boolean {
    if (!this.drainDone) return false;
    this.drainDone();
    return true;
  }

  /** Announces again after a drain (maintenance off); a drain under way ends as if done. */
  resume(): void {
    if (this.phase === 'running') return;
    this.endDrain();
    this.phase = 'running';
    this.kick();
  }

  /** Stops for good: the device closed (gone: BIRD withdraws whatever is left), BIRD's socket closed. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
    this.retry?.cancel();
    this.drainTimer?.cancel();
    this.deps.machine.device.close();
    this.deps.machine.bird.close();
  }

  async status(): Promise<BgpStatus> {
    const s = this.settings;
    const d = this.desired();
    return {
      socket: s.socket,
      include: s.include,
      device: s.device,
      deviceUp: this.deviceUp,
      phase: this.phase,
      ready: this.ready,
      announced: this.applied?.addresses ?? [],
      gracefulShutdown: this.applied?.gracefulShutdown ?? false,
      why: this.applied?.why ?? d.why,
      lastConfigure: this.lastConfigure,
      error: this.error,
      configures: this.configures,
      ...(await this.protocols()),
      relay: await this.relayCounters(),
    };
  }

  private async relayCounters(): Promise<BgpStatus['relay']> {
    const read = this.deps.machine.relayCounters;
    if (!read) return null;
    const at = this.deps.clock.now();
    const m = await read().catch(() => undefined);
    if (!m?.has(RELAY_SEEN_COUNTER)) return null;
    const seen = m.get(RELAY_SEEN_COUNTER)!;
    return { seen, relayed: Math.max(0, seen - (m.get(RELAY_LOCAL_COUNTER) ?? 0)), at };
  }

  private protocols(): Promise<Pick<BgpStatus, 'protocols' | 'bfd'>> {
    const now = this.deps.clock.now();
    if (this.protocolsAsked && now - this.protocolsAsked.at < PROTOCOLS_FRESH_MS) return this.protocolsAsked.answer;
    // Both at once: each waits STATUS_WAIT_MS at most, so a silent BIRD holds a status that long, not twice.
    const answer = Promise.all([this.askProtocols(), this.askBfd()]).then(([protocols, bfd]) => ({ protocols, bfd }));
    this.protocolsAsked = { at: now, answer };
    return answer;
  }

  /** One `show` command to BIRD, its reply or undefined when it did not answer within STATUS_WAIT_MS. */
  private async ask(line: string): Promise<BirdReply | undefined> {
    let t: Timer | undefined;
    const late = new Promise<undefined>((resolve) => (t = this.deps.clock.after(STATUS_WAIT_MS, () => resolve(undefined))));
    try {
      return await Promise.race([this.deps.machine.bird.command(line), late]);
    } catch {
      return undefined;
    } finally {
      t?.cancel();
    }
  }

  private async askProtocols(): Promise<BgpStatus['protocols']> {
    const r = await this.ask('show protocols all');
    const p = r ? parseProtocols(r) : undefined;
    if (!p?.ok) return null;
    return p.value.map((x) => ({ name: x.name, proto: x.proto, state: x.state, session: bgpSession(x) ?? null, info: x.info, exported: exportedRoutes(x) }));
  }

  private async askBfd(): Promise<BgpStatus['bfd']> {
    const r = await this.ask('show bfd sessions');
    const p = r ? parseBfdSessions(r) : undefined;
    if (!p?.ok) return null;
    return p.value.map((s) => ({ address: s.address, iface: s.iface, state: s.state, since: s.since }));
  }

  private desired(): BgpDesired {
    const services = this.settings.services.map((s) => ({ ...s, available: this.available.get(s.name) ?? false }));
    return desiredAnnouncement({ ready: this.ready, phase: this.phase, services, extra: this.settings.extra }, this.notReadyReason || 'not ready');
  }

  /** Applies the latest state unless an application is under way (it applies it next). */
  private kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.again = false;
    void this.applyLoop().finally(() => {
      this.running = false;
      if (this.again && !this.closed) return this.kick();
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once what is wanted now is in place (or failed and waits for its retry). */
  private settled(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private async applyLoop(): Promise<void> {
    for (let d = this.desired(); !this.closed && !(this.applied && sameAnnouncement(d, this.applied)); d = this.desired()) {
      try {
        await this.apply(d);
        this.applied = d;
        if (this.error) this.deps.log.info({ event: 'bgp_recovered' }, 'BGP: BIRD answers again');
        this.error = null;
        this.retry?.cancel();
      } catch (e) {
        this.fail((e as Error).message);
        break;
      }
    }
  }

  private async apply(d: BgpDesired): Promise<void> {
    const { machine, log } = this.deps;
    if (!d.deviceUp) await this.setDevice(false);
    const text = compileBirdAnnouncement({ node: this.settings.node, device: this.settings.device, addresses: d.addresses, communities: this.settings.communities, gracefulShutdown: d.gracefulShutdown });
    if (text !== this.fileText) {
      this.fileText = undefined;
      await machine.writeInclude(this.settings.include, text);
      const r = await machine.bird.command('configure');
      this.configures++;
      this.protocolsAsked = undefined;
      const message = birdMessage(r);
      this.lastConfigure = { at: new Date(this.deps.clock.now()).toISOString(), ok: !isBirdError(r), message };
      if (isBirdError(r)) throw new Error(`BIRD refused its config (${r.code} ${message}): check ${this.settings.include} and BIRD's own file`);
      this.fileText = text;
      log.info({ event: 'bgp_configured', addresses: d.addresses, gracefulShutdown: d.gracefulShutdown, bird: message }, `BGP: ${d.why}`);
    }
    if (d.deviceUp) await this.setDevice(true);
  }

  private async setDevice(up: boolean): Promise<void> {
    if (this.deviceUp === up && this.applied) return;
    await this.deps.machine.device.setUp(up);
    this.deviceUp = up;
  }

  /** Withdraws everything (an error must not leave a stale announcement) and tries again later. */
  private fail(why: string): void {
    if (why !== this.error) this.deps.log.error({ event: 'bgp_failed', err: why }, `BGP: ${why}; everything withdrawn, trying again every ${RETRY_MS} ms`);
    this.error = why;
    this.applied = undefined;
    void this.deps.machine.device.setUp(false).then(
      () => (this.deviceUp = false),
      () => undefined,
    );
    this.retry?.cancel();
    this.retry = this.deps.clock.after(RETRY_MS, () => this.kick());
  }
}
