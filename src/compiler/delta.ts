/**
 * A reload as a delta: from the objects of the running ruleset and those of the new one,
 * one nft transaction that changes only what differs, instead of replacing the table.
 * Still one transaction: the kernel commits all of it or none.
 *
 *  - a chain whose rules changed is flushed and its rules added again (a base chain keeps
 *    its hook; if the hook line itself changed, the delta gives up: full replace);
 *  - a set or map whose elements changed is flushed and filled again (a changed type or
 *    flags: full replace);
 *  - new objects are declared, in the compiler's order (counters before the maps that name
 *    them, chains before the verdict maps that jump to them);
 *  - objects gone are deleted after the chains and maps that referred to them were flushed.
 * Unchanged objects are not touched at all: their named counters keep counting.
 */
import { TABLE_FAMILY, TABLE_NAME, render, type Block } from './ruleset.js';

type Kind = 'chain' | 'set' | 'map' | 'counter';

function kindOf(b: Block): { kind: Kind; name: string } | undefined {
  const m = /^(chain|set|map|counter) (\S+)$/.exec(b.head);
  return m ? { kind: m[1] as Kind, name: m[2]! } : undefined;
}

const isElements = (line: string) => line.startsWith('elements = ');
const isHook = (line: string | undefined) => !!line && /\bhook\b/.test(line) && line.trim().endsWith(';');
const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The delta script from `prev` to `next`, or undefined when only a full replace will do. Empty string: nothing changed. */
export function rulesetDelta(prev: readonly Block[], next: readonly Block[]): string | undefined {
  const before = new Map(prev.map((b) => [b.head, b]));
  const after = new Map(next.map((b) => [b.head, b]));
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const flush: string[] = [];
  const del: { order: number; line: string }[] = [];
  const declare: Block[] = [];

  for (const b of next) {
    const k = kindOf(b);
    if (!k) return undefined;
    const old = before.get(b.head);
    if (old && same(old.body, b.body)) continue;
    if (!old) {
      declare.push(b);
      continue;
    }
    switch (k.kind) {
      case 'chain': {
        const wasBase = isHook(old.body[0]);
        const isBase = isHook(b.body[0]);
        if (wasBase !== isBase || (isBase && old.body[0] !== b.body[0])) return undefined;
        flush.push(`flush chain ${t} ${k.name}`);
        declare.push(b);
        break;
      }
      case 'set':
      case 'map': {
        if (!same(old.body.filter((l) => !isElements(l)), b.body.filter((l) => !isElements(l)))) return undefined;
        flush.push(`flush ${k.kind} ${t} ${k.name}`);
        declare.push(b);
        break;
      }
      case 'counter':
        return undefined; // a counter has no body: it cannot differ
    }
  }
  // Deleted last, chains first (they name maps, sets and other chains), counters at the end.
  const rank: Record<Kind, number> = { chain: 0, map: 1, set: 2, counter: 3 };
  for (const b of prev) {
    if (after.has(b.head)) continue;
    const k = kindOf(b);
    if (!k) return undefined;
    // A chain to delete is emptied first, so nothing it holds still refers to anything.
    if (k.kind === 'chain') flush.push(`flush chain ${t} ${k.name}`);
    del.push({ order: rank[k.kind], line: `delete ${k.kind} ${t} ${k.name}` });
  }
  // A chain may only be deleted once nothing jumps to it: the rules that did are in the
  // flushed chains (verdict maps are anonymous, inside the rules), or in a flushed map.
  if (!flush.length && !del.length && !declare.length) return '';
  const lines = [
    '# fwlb ruleset delta: only what changed, in one transaction',
    ...flush,
    ...del.sort((a, b) => a.order - b.order).map((d) => d.line),
  ];
  if (declare.length) lines.push(`table ${t} {`, render(declare), '}');
  return lines.join('\n') + '\n';
}

/**
 * Fills every service's slot map again (flush, then its elements), in one transaction: for
 * a restart that finds its ruleset already in the kernel, whose maps the last run may have
 * changed at runtime (health, drain). Empty string when there is no service.
 */
export function mapsRefresh(blocks: readonly Block[]): string {
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const maps = blocks.filter((b) => /^map svc_\S+$/.test(b.head));
  if (!maps.length) return '';
  return [...maps.map((b) => `flush ${b.head.replace(/^map /, `map ${t} `)}`), `table ${t} {`, render(maps), '}'].join('\n') + '\n';
}
