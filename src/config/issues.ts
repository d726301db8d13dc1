/**
 * Config problems carry the key path and the line they were found at, so that
 * `fwlb check` can say "cluster.yaml:12:7: services.web.listen: ...".
 */
import { isMap, isScalar, isSeq, LineCounter, type Document, type Node, type Pair } from 'yaml';
import type { z } from 'zod';
import { FwlbError } from '../lib/errors.js';

export type KeyPath = readonly (string | number)[];

export interface ConfigIssue {
  path: KeyPath;
  message: string;
  /** Where it was found: the config file unless a referenced file is to blame. */
  file?: string;
  line?: number;
  col?: number;
}

export function pathText(path: KeyPath): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s || '(top level)';
}

export function formatIssue(i: ConfigIssue, file: string): string {
  const where = i.line !== undefined ? `${i.file ?? file}:${i.line}:${i.col ?? 1}` : (i.file ?? file);
  return `${where}: ${pathText(i.path)}: ${i.message}`;
}

export class ConfigError extends FwlbError {
  readonly issues: readonly ConfigIssue[];
  readonly file: string;
  constructor(file: string, issues: readonly ConfigIssue[]) {
    super('ERR_CONFIG', `${file}: ${issues.length} error(s)\n` + issues.map((i) => '  ' + formatIssue(i, file)).join('\n'));
    this.issues = issues;
    this.file = file;
    this.name = 'ConfigError';
  }
}

/** Finds the YAML node for a key path: the value, or for `key: true` the key itself. */
function nodeAt(doc: Document, path: KeyPath, key?: string): Node | undefined {
  let node: unknown = doc.contents;
  for (const p of path) {
    if (isMap(node)) {
      const pair = node.items.find((it: Pair) => keyOf(it) === String(p));
      if (!pair) return node as Node;
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof p === 'number') {
      const item = node.items[p];
      if (item === undefined) return node as Node;
      node = item;
    } else {
      return node as Node;
    }
  }
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((it: Pair) => keyOf(it) === key);
    if (pair) return pair.key as Node;
  }
  return node as Node;
}

function keyOf(p: Pair): string {
  const k = p.key as { value?: unknown } | null;
  return k && typeof k === 'object' && 'value' in k ? String(k.value) : String(k);
}

/** The scalar at exactly this key path, as written (undefined when the path ends elsewhere). */
function scalarAt(doc: Document, path: KeyPath): string | undefined {
  let node: unknown = doc.contents;
  for (const p of path) {
    if (isMap(node)) {
      const pair = node.items.find((it: Pair) => keyOf(it) === String(p));
      if (!pair) return undefined;
      node = pair.value;
    } else if (isSeq(node) && typeof p === 'number') {
      node = node.items[p];
    } else return undefined;
  }
  return isScalar(node) && node.value !== null && typeof node.value !== 'object' ? String(node.value) : undefined;
}

/**
 * Adds line and column to an issue from the document's node ranges, and the offending value
 * where the issue is about one scalar and does not quote it already ("is not an IP address"
 * says which).
 */
export function locate(doc: Document, lc: LineCounter, issue: ConfigIssue, key?: string): ConfigIssue {
  const value = key === undefined ? scalarAt(doc, issue.path) : undefined;
  const quoted = value !== undefined && value !== '' && !issue.message.includes(value) ? { ...issue, message: `${issue.message} (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value)})` } : issue;
  const node = key !== undefined ? nodeAt(doc, issue.path.slice(0, -1), key) : nodeAt(doc, issue.path);
  const offset = node?.range?.[0];
  if (offset === undefined) return quoted;
  const pos = lc.linePos(offset);
  return { ...quoted, line: pos.line, col: pos.col };
}

/** Turns zod issues into config issues; a failed union reports its most plausible branch. */
export function fromZod(issues: readonly z.core.$ZodIssue[], base: KeyPath = []): { issue: ConfigIssue; key?: string }[] {
  const out: { issue: ConfigIssue; key?: string }[] = [];
  for (const i of issues) {
    const path = [...base, ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    if (i.code === 'invalid_union' && i.errors.length > 0) {
      // Prefer the branch that got furthest: the one whose issues are not a type mismatch at its root.
      const ranked = [...i.errors].sort((a, b) => score(a) - score(b));
      out.push(...fromZod(ranked[0] ?? [], path));
    } else if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) out.push({ issue: { path: [...path, k], message: `unknown key "${k}"` }, key: k });
    } else if (i.code === 'invalid_key') {
      const k = path[path.length - 1];
      out.push({ issue: { path, message: `the name "${String(k)}" ${i.issues.map((x) => x.message).join('; ')}` }, key: String(k) });
    } else if (i.code === 'invalid_type' && i.input === undefined) {
      out.push({ issue: { path, message: `is required (expected ${i.expected})` } });
    } else {
      out.push({ issue: { path, message: i.message } });
    }
  }
  return out;
}

function score(branch: readonly z.core.$ZodIssue[]): number {
  return branch.reduce((s, i) => s + (i.code === 'invalid_type' && i.path.length === 0 ? 100 : 1), 0);
}
