/**
 * A graceful stop's handover, as a pure machine: a master that stops sends priority 0 and
 * keeps its VIPs (it forwards on) until a new master is heard on that virtual router, so
 * that the handover loses nothing; at the deadline (Master_Down_Interval's worth) whatever is
 * still held is released anyway.
 *
 *   stepHandover(state, event) -> { state, release, done }
 *
 * Events: `hold` (the machine removed an instance's VIPs: held back instead), `master_heard`
 * (an advert with a priority above 0 on that virtual router), `deadline`. `release` lists the
 * removals to carry out now; `done` says nothing is held any more.
 */

/** A held removal: where, and which addresses. */
export interface HeldRelease {
  ifname: string;
  addresses: readonly string[];
}

export interface HandoverState {
  /** By `${ifname}/${vrid}`. */
  held: ReadonlyMap<string, HeldRelease>;
}

export type HandoverEvent =
  | { type: 'hold'; key: string; release: HeldRelease }
  | { type: 'master_heard'; key: string; priority: number }
  | { type: 'deadline' };

export interface HandoverStep {
  state: HandoverState;
  release: HeldRelease[];
  done: boolean;
}

export const initialHandover = (): HandoverState => ({ held: new Map() });

export function stepHandover(s: HandoverState, e: HandoverEvent): HandoverStep {
  switch (e.type) {
    case 'hold': {
      const held = new Map(s.held);
      held.set(e.key, e.release);
      return { state: { held }, release: [], done: false };
    }
    case 'master_heard': {
      const r = s.held.get(e.key);
      // A priority 0 is another node leaving too: not a new master.
      if (!r || e.priority === 0) return { state: s, release: [], done: s.held.size === 0 };
      const held = new Map(s.held);
      held.delete(e.key);
      return { state: { held }, release: [r], done: held.size === 0 };
    }
    case 'deadline':
      return { state: { held: new Map() }, release: [...s.held.values()], done: true };
    default: {
      const never: never = e;
      throw new Error(`unknown handover event ${JSON.stringify(never)}`);
    }
  }
}
