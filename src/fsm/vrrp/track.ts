/**
 * Tracking: interfaces, service health and scripts turned into what the instance machine
 * understands, an effective priority (`priority_changed`) and fault sources
 * (`fault` / `fault_cleared`). keepalived's semantics (track_interface, track_script weight):
 *
 *  - weight 0: the item is essential; while it is down the instance is in fault;
 *  - weight > 0: added to the priority while the item is up;
 *  - weight < 0: added (so subtracted) while the item is down.
 *
 * The result is kept within 1..254, so tracking never turns a backup into the address owner
 * nor silences it with 0. The owner (configured 255) keeps 255: weights do not apply to it,
 * only faults do.
 */
import { VRRP_PRIO_OWNER } from '../../codec/vrrp/constants.js';
import type { VrrpEvent } from './instance.js';

export interface TrackedItem {
  /** Unique name, e.g. "interface:outside", "service:web", "script:check_bgp". */
  name: string;
  up: boolean;
  /** 0 = fault while down (the default); otherwise the priority adjustment, -254..254. */
  weight?: number;
}

export interface TrackOutcome {
  priority: number;
  /** Fault sources, "track:<name>", sorted. */
  faults: string[];
}

/** The priority and faults that a configured priority and the tracked items give. */
export function trackOutcome(basePriority: number, items: readonly TrackedItem[]): TrackOutcome {
  const faults = items.filter((i) => !i.up && (i.weight ?? 0) === 0).map((i) => `track:${i.name}`).sort();
  if (basePriority === VRRP_PRIO_OWNER) return { priority: VRRP_PRIO_OWNER, faults };
  let p = basePriority;
  for (const i of items) {
    const w = i.weight ?? 0;
    if (w > 0 && i.up) p += w;
    if (w < 0 && !i.up) p += w;
  }
  return { priority: Math.min(VRRP_PRIO_OWNER - 1, Math.max(1, p)), faults };
}

/** The instance events that take an instance from one outcome to the next. */
export function trackEvents(prev: TrackOutcome, next: TrackOutcome): VrrpEvent[] {
  const events: VrrpEvent[] = [];
  for (const f of next.faults) if (!prev.faults.includes(f)) events.push({ type: 'fault', source: f });
  for (const f of prev.faults) if (!next.faults.includes(f)) events.push({ type: 'fault_cleared', source: f });
  if (next.priority !== prev.priority) events.push({ type: 'priority_changed', priority: next.priority });
  return events;
}
