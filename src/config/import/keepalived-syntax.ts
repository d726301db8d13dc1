/**
 * keepalived.conf's syntax (and conntrackd.conf's, which is the same shape), read into a
 * tree of statements for `fwlb import` (config/import/from-keepalived.ts). Pure: files named
 * by `include` are read through the function given.
 *
 * A statement is the words of one line; a `{` opens its block, which holds statements up to
 * the matching `}` (braces may share a line with words: `group { EXT INT }`). `#` and `!`
 * start a comment outside quotes; a quoted string ("...") is one word without its quotes.
 * `include PATTERN` is replaced by the statements of the files it names (a glob in the last
 * path component), relative to the including file's directory; an include loop, a missing
 * brace or a stray one is an error naming the file and line.
 */

export interface KaStatement {
  words: string[];
  block?: KaStatement[];
  file: string;
  line: number;
}

export class KaSyntaxError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'KaSyntaxError';
  }
}

interface Token {
  text: string;
  /** `{` or `}` as a brace, not as a quoted word. */
  brace: boolean;
  line: number;
}

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    let at = 0;
    while (at < raw.length) {
      const c = raw[at]!;
      if (c === ' ' || c === '\t') at++;
      else if (c === '#' || c === '!') break;
      else if (c === '{' || c === '}') {
        out.push({ text: c, brace: true, line });
        at++;
      } else if (c === '"') {
        const end = raw.indexOf('"', at + 1);
        if (end < 0) throw new KaSyntaxError(file, line, 'a quote that is not closed on its line');
        out.push({ text: raw.slice(at + 1, end), brace: false, line });
        at = end + 1;
      } else {
        let end = at;
        while (end < raw.length && !' \t{}"#!'.includes(raw[end]!)) end++;
        out.push({ text: raw.slice(at, end), brace: false, line });
        at = end;
      }
    }
  });
  return out;
}

/** Reads the files an include names: their paths and texts (none: an empty list). */
export type IncludeReader = (pattern: string, fromFile: string) => { file: string; text: string }[];

export function parseKeepalived(text: string, file: string, include?: IncludeReader, seen: readonly string[] = []): KaStatement[] {
  if (seen.includes(file)) throw new KaSyntaxError(file, 1, `include loop: ${[...seen, file].join(' -> ')}`);
  const tokens = tokenize(text, file);
  let i = 0;
  const block = (depth: number): KaStatement[] => {
    const out: KaStatement[] = [];
    let words: string[] = [];
    let line = 0;
    const flush = () => {
      if (words.length) out.push(...statement(words, line));
      words = [];
    };
    while (i < tokens.length) {
      const t = tokens[i]!;
      if (words.length && t.line !== line && !t.brace) flush();
      if (t.brace && t.text === '}') {
        if (depth === 0) throw new KaSyntaxError(file, t.line, 'a "}" with no "{" open');
        flush();
        i++;
        return out;
      }
      if (t.brace && t.text === '{') {
        const head = words.length ? words : [];
        const at = words.length ? line : t.line;
        words = [];
        i++;
        out.push({ words: head, block: block(depth + 1), file, line: at });
        continue;
      }
      if (!words.length) line = t.line;
      words.push(t.text);
      i++;
    }
    if (depth > 0) throw new KaSyntaxError(file, tokens[tokens.length - 1]?.line ?? 1, 'a "{" that is never closed');
    flush();
    return out;
  };
  const statement = (w: string[], line: number): KaStatement[] => {
    if (w[0] !== 'include') return [{ words: w, file, line }];
    if (!include) throw new KaSyntaxError(file, line, 'include is not available here');
    if (w.length !== 2) throw new KaSyntaxError(file, line, 'include takes one path');
    return include(w[1]!, file).flatMap((f) => parseKeepalived(f.text, f.file, include, [...seen, file]));
  };
  return block(0);
}

/** The statements of a block whose first word is `name`. */
export function named(stmts: readonly KaStatement[] | undefined, name: string): KaStatement[] {
  return (stmts ?? []).filter((s) => s.words[0]?.toLowerCase() === name.toLowerCase());
}

/** The first word after `name` in the first statement so named. */
export function value(stmts: readonly KaStatement[] | undefined, name: string): string | undefined {
  return named(stmts, name)[0]?.words[1];
}
