/**
 * systemd's view of the node (Type=notify; sd_notify(3)), a consumer of the cluster events
 * (services/cluster-events.ts). `SystemdNotify` is pure of I/O (it is handed the function that
 * sends); `attachSystemd` connects it to $NOTIFY_SOCKET (adapters/sd-notify.ts) and runs the
 * watchdog's timer, when systemd started the node.
 *
 * - READY=1 once, when the node first becomes ready (ruleset applied, VRRP running, the
 *   state table complete or no peer to get one from): not at the start of the process, so
 *   units ordered after fwlb and a rolling restart that waits for each node see a node that
 *   can really take over.
 * - RELOADING=1 with MONOTONIC_USEC before a reload (SIGHUP, `fwlb reload`, `systemctl
 *   reload`) and READY=1 after it, whatever its outcome (a refused reload leaves the running
 *   config, and the unit must not sit in "reloading"); only once READY=1 was sent (before,
 *   systemd still waits for the start).
 * - STOPPING=1 when the graceful stop begins.
 * - STATUS= a line a person reads in `systemctl status`: ready or why not, each VRRP group's
 *   state and VIPs held, the buckets owned, the peers; sent when it changes.
 * - WATCHDOG=1 from the main loop (node/assemble.ts runs the timer), so a hung loop is
 *   restarted by systemd (WatchdogSec=).
 */
import type { Logger } from 'pino';
import type { ClusterState, Stamped } from '../fsm/cluster.js';
import type { ClusterEvents } from '../services/cluster-events.js';
import { openSdNotify, watchdogMs, type SdNotifier } from '../adapters/sd-notify.js';

export interface SystemdNotifyDeps {
  send(message: string): void;
  /** CLOCK_MONOTONIC in microseconds (MONOTONIC_USEC). */
  monotonicUsec(): bigint;
}

/** The STATUS= line for a cluster state (one line, no newline). */
export function statusLine(s: ClusterState): string {
  const parts: string[] = [s.ready.ready ? 'ready' : `not ready: ${s.ready.reason}`];
  const groups = Object.entries(s.groups).sort(([a], [b]) => a.localeCompare(b));
  if (groups.length) parts.push(groups.map(([g, v]) => `${g} ${v.state}${v.held.length ? ` holding ${v.held.length} VIP${v.held.length === 1 ? '' : 's'}` : ''}`).join(', '));
  if (s.owned.length) parts.push(`${s.owned.length} buckets owned`);
  const peers = Object.entries(s.peers).sort(([a], [b]) => a.localeCompare(b));
  if (peers.length) parts.push(`peers ${peers.map(([p, st]) => `${p} ${st}`).join(', ')}`);
  return parts.join('; ').replace(/[\r\n]+/g, ' ');
}

export class SystemdNotify {
  private readySent = false;
  private reloading = false;
  private stopping = false;
  private lastStatus = '';

  constructor(private readonly d: SystemdNotifyDeps) {}

  /** The cluster events' subscriber. */
  readonly onEvent = (e: Stamped, s: ClusterState): void => {
    if (e.type === 'stopping') {
      this.stopping = true;
      this.d.send(`STOPPING=1\nSTATUS=stopping (${e.why.replace(/[\r\n]+/g, ' ')}): handing over`);
      this.lastStatus = '';
      return;
    }
    if (s.stopping) return;
    if (e.type === 'ready' && e.ready && !this.readySent) {
      this.readySent = true;
      this.lastStatus = statusLine(s);
      this.d.send(`READY=1\nSTATUS=${this.lastStatus}`);
      return;
    }
    // During a reload its own READY=1 carries the status.
    if (!this.reloading) this.status(s);
  };

  /** Before a reload: systemd shows the unit reloading until `reloadEnd`. */
  reloadStart(file: string): void {
    if (!this.readySent || this.reloading || this.stopping) return;
    this.reloading = true;
    this.d.send(`RELOADING=1\nMONOTONIC_USEC=${this.d.monotonicUsec()}\nSTATUS=reloading ${file}`);
  }

  /** After a reload, whatever its outcome: `outcome` is what the status line begins with. */
  reloadEnd(outcome: string, s: ClusterState): void {
    if (!this.reloading) return;
    this.reloading = false;
    this.lastStatus = statusLine(s);
    this.d.send(`READY=1\nSTATUS=${outcome.replace(/[\r\n]+/g, ' ')}; ${this.lastStatus}`);
  }

  watchdog(): void {
    this.d.send('WATCHDOG=1');
  }

  private status(s: ClusterState): void {
    const line = statusLine(s);
    if (line === this.lastStatus) return;
    this.lastStatus = line;
    this.d.send(`STATUS=${line}`);
  }
}

/** The notifications and the watchdog, when systemd started the node with Type=notify; undefined otherwise. */
export function attachSystemd(events: ClusterEvents, log: Logger): { notify: SystemdNotify; close(): void } | undefined {
  let sd: SdNotifier | undefined;
  try {
    sd = openSdNotify();
  } catch (e) {
    log.warn({ event: 'sd_notify_failed', err: (e as Error).message }, 'cannot use $NOTIFY_SOCKET: systemd will not hear that the node is ready');
    return undefined;
  }
  if (!sd) return undefined;
  const socket = sd;
  const notify = new SystemdNotify({ send: (m) => socket.send(m), monotonicUsec: () => process.hrtime.bigint() / 1000n });
  const unsubscribe = events.subscribe(notify.onEvent);
  const wd = watchdogMs();
  // Fed from the main loop: a loop that hangs stops feeding it, and systemd restarts the node.
  const timer = wd ? setInterval(() => notify.watchdog(), Math.max(1, Math.floor(wd / 2))) : undefined;
  timer?.unref();
  log.info({ event: 'systemd', watchdogMs: wd ?? null }, `systemd: notify socket ${process.env.NOTIFY_SOCKET}${wd ? `, watchdog fed every ${Math.floor(wd / 2)} ms` : ''}`);
  return {
    notify,
    close: () => {
      if (timer) clearInterval(timer);
      unsubscribe();
      socket.close();
    },
  };
}
