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
