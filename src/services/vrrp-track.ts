/**
 * What a VRRP group tracks (its interfaces, services with no available backend, a script) and
 * how a change moves its members' priorities and faults (fsm/vrrp/track.ts): a tracked item
 * that goes down or up is logged and fed to every member as the events its new outcome
 * differs by; the tracking script runs every interval, each result belonging to the run that
 * started it.
 */
import type { Logger } from 'pino';
import { trackEvents, trackOutcome, type SyncGroupEvent } from '../fsm/vrrp/index.js';
import type { Clock } from '../lib/clock.js';
import type { ScriptRunner } from '../ports/vrrp-net.js';
import type { GroupRuntime } from './vrrp-groups.js';

export interface TrackHost {
  log: Logger;
  clock: Clock;
  scripts: ScriptRunner;
  running(): boolean;
  /** Bumped at every start and stop of the service. */
  generation(): number;
  feed(g: GroupRuntime, e: SyncGroupEvent): void;
}

export function setTracked(g: GroupRuntime, key: string, up: boolean, h: TrackHost): void {
  const item = g.track.get(key);
  if (!item || item.up === up) return;
  g.track.set(key, { ...item, up });
  h.log.info({ event: 'vrrp_track', group: g.name, item: item.name, up }, `tracked ${item.name} is ${up ? 'up' : 'down'}`);
  for (const m of g.members.values()) {
    const next = trackOutcome(m.configuredPriority, [...g.track.values()]);
    for (const event of trackEvents(m.outcome, next)) h.feed(g, { type: 'member', member: m.name, event });
    m.outcome = next;
  }
}

export function scheduleScript(g: GroupRuntime, delayMs: number, h: TrackHost): void {
  const s = g.script;
  const gen = h.generation();
  if (!s || !h.running()) return;
  s.timer = h.clock.after(delayMs, () => {
    void h.scripts.check(s.path, Math.max(100, s.intervalMs - 50)).then((ok) => {
      // A check that ends after a stop or restart belongs to a run that is over.
      if (gen !== h.generation()) return;
      setTracked(g, 'script', ok, h);
      scheduleScript(g, s.intervalMs, h);
    });
  });
}

/** The member of a group on an interface (the first member when none is: a tracked interface). */
export function memberOn(g: GroupRuntime, ifname: string): string {
  for (const m of g.members.values()) if (m.ifname === ifname) return m.name;
  return g.members.keys().next().value as string;
}
