/**
 * The smallest nft transaction that turns one slot table into another: delete the
 * changed slots and add them back with their new backend, in one batch (one kernel
 * transaction: a new flow sees either the old table or the new one, never a gap).
 */
import type { BackendSlot } from '../balancer/table.js';
import { TABLE_FAMILY, TABLE_NAME } from './ruleset.js';

const same = (a: BackendSlot | null | undefined, b: BackendSlot | null | undefined) =>
  (!a && !b) || (!!a && !!b && a.address === b.address && a.port === b.port);

export interface MapDelta {
  script: string;
  changed: number;
}

export function mapDelta(map: string, from: readonly (BackendSlot | null)[], to: readonly (BackendSlot | null)[]): MapDelta {
  const del: number[] = [];
  const add: string[] = [];
  const n = Math.max(from.length, to.length);
  for (let i = 0; i < n; i++) {
    const a = from[i];
    const b = to[i];
    if (same(a, b)) continue;
    if (a) del.push(i);
    if (b) add.push(`${i} : ${b.address} . ${b.port}`);
  }
  const lines: string[] = [];
  if (del.length) lines.push(`delete element ${TABLE_FAMILY} ${TABLE_NAME} ${map} { ${del.join(', ')} }`);
  if (add.length) lines.push(`add element ${TABLE_FAMILY} ${TABLE_NAME} ${map} { ${add.join(', ')} }`);
  return { script: lines.length ? lines.join('\n') + '\n' : '', changed: Math.max(del.length, add.length) };
}

/** The name of the set of buckets this node owns (sharing; compiler/ruleset.ts). */
export const SHARED_OWNED_SET = 'shared_owned';

/**
 * The nft transaction that changes the owned buckets (conntrack marks) by element, or
 * replaces the whole set (flush and fill in one transaction: no packet sees it empty).
 */
export function ownedSetScript(change: { add: readonly number[]; remove: readonly number[] } | { replace: readonly number[] }): string {
  const at = `${TABLE_FAMILY} ${TABLE_NAME} ${SHARED_OWNED_SET}`;
  const lines: string[] = [];
  if ('replace' in change) {
    lines.push(`flush set ${at}`);
    if (change.replace.length) lines.push(`add element ${at} { ${change.replace.join(', ')} }`);
  } else {
    if (change.remove.length) lines.push(`delete element ${at} { ${change.remove.join(', ')} }`);
    if (change.add.length) lines.push(`add element ${at} { ${change.add.join(', ')} }`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}
