/**
 * The config pipeline's front half: YAML text -> schema -> cross-checks -> Config.
 * Every problem is collected (not just the first) with its key path and line;
 * a config with any problem is never returned, so nothing can be applied from it.
 */
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, visit } from 'yaml';
import { parsePrefix, prefixText } from '../lib/ip.js';
import { crossCheck } from './cross-check.js';
import { ConfigError, fromZod, locate, type ConfigIssue } from './issues.js';
import { ConfigSchema, type Config } from './schema.js';

export interface LoadedConfig {
  config: Config;
  /** The config file as given, for messages. */
  file: string;
  /** sha256 of the file's text: tells a reload whether anything changed. */
  digest: string;
  /** Every blocked prefix, from `firewall.block` and `firewall.block_files`, canonical and deduplicated. */
  blocklist: string[];
  /** Adds the line and column of its key to an issue found later (host checks). */
  locate: (issue: ConfigIssue) => ConfigIssue;
}

export type LoadResult = { ok: true; value: LoadedConfig } | { ok: false; error: ConfigError };

/** The largest config file taken (a config is a few KiB; block lists go in block_files). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Aliases (*name) in one config; anchors and aliases are for a few shared settings. */
export const MAX_ALIASES = 64;
/** Problems reported at most (the rest are counted). */
const MAX_ISSUES = 100;

/** Parses and checks config text; `readText` loads referenced files (block lists) relative to the config. */
export async function parseConfig(
  text: string,
  file: string,
  readText: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
): Promise<LoadResult> {
  const fail = (issues: ConfigIssue[]): LoadResult => ({ ok: false, error: new ConfigError(file, issues.length > MAX_ISSUES ? [...issues.slice(0, MAX_ISSUES), { path: [], message: `... and ${issues.length - MAX_ISSUES} more problems` }] : issues) });
  // Bounded before anything expands: the size, and the aliases (each may stand for a whole
  // subtree: nine aliases of nine aliases ... is a "billion laughs" document).
  if (text.length > MAX_CONFIG_BYTES) {
    return fail([{ path: [], line: 1, col: 1, message: `the config is ${text.length} bytes: at most ${MAX_CONFIG_BYTES} (block lists belong in firewall.block_files)` }]);
  }
  const lc = new LineCounter();
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  } catch (e) {
    return fail([{ path: [], line: 1, col: 1, message: `YAML: ${(e as Error).message}` }]);
  }

  if (doc.errors.length > 0) {
    return fail(
      doc.errors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return { path: [], message: `YAML: ${e.message.split('\n')[0]}`, line: pos.line, col: pos.col };
      }),
    );
  }
  let aliases = 0;
  let excess: number | undefined;
  visit(doc, {
    Alias(_, node) {
      aliases++;
      if (aliases > MAX_ALIASES && excess === undefined) excess = node.range?.[0] ?? 0;
    },
  });
  if (excess !== undefined) {
    const pos = lc.linePos(excess);
    return fail([{ path: [], line: pos.line, col: pos.col, message: `YAML: ${aliases} aliases (*name): at most ${MAX_ALIASES} in a config, refused before expanding them (an alias bomb would take the daemon's memory)` }]);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // The library refuses an expansion too large (and anything else it throws) with an
    // exception: a config error like any other, never an exception out of the loader.
    return fail([{ path: [], line: 1, col: 1, message: `YAML: ${(e as Error).message}` }]);
  }
  const parsed = ConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    return fail(fromZod(parsed.error.issues).map(({ issue, key }) => locate(doc, lc, issue, key)));
  }
  const config = parsed.data;
  const issues = crossCheck(config).map((i) => locate(doc, lc, i));

  const blocked = new Set<string>();
  for (const b of config.firewall.block) blocked.add(prefixText(parsePrefix(b)!));
  const base = dirname(resolve(file));
  for (const [i, f] of config.firewall.block_files.entries()) {
    const path = resolve(base, f);
    let body: string;
    try {
      body = await readText(path);
    } catch (e) {
      issues.push(locate(doc, lc, { path: ['firewall', 'block_files', i], message: `cannot read ${path}: ${(e as Error).message}` }));
      continue;
    }
    body.split('\n').forEach((lineText, n) => {
      const t = lineText.replace(/#.*/, '').trim();
      if (!t) return;
      const p = parsePrefix(t);
      if (p) blocked.add(prefixText(p));
      else issues.push({ path: ['firewall', 'block_files', i], file: path, line: n + 1, col: 1, message: `"${t}" is not an IP prefix` });
    });
  }
  if (issues.length > 0) return fail(issues);
  return {
    ok: true,
    value: {
      config,
      file,
      digest: createHash('sha256').update(text).digest('hex'),
      blocklist: [...blocked],
      locate: (i) => locate(doc, lc, i),
    },
  };
}

export async function loadConfigFile(file: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return { ok: false, error: new ConfigError(file, [{ path: [], message: `cannot read the config: ${(e as Error).message}` }]) };
  }
  return parseConfig(text, file);
}
