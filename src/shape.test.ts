/**
 * The code's shape, checked (issue 21): no function longer than 120 lines outside the codecs'
 * tables, no service file longer than 450 lines, and every source file opens with a comment
 * that says its job. Reads the .ts sources with the TypeScript parser; fails naming each
 * offender and its length.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));
const SRC = [resolve(here, '../../src'), resolve(here, '.')].find((d) => existsSync(join(d, 'main.ts')))!;
const MAX_FUNCTION_LINES = 120;
const MAX_SERVICE_LINES = 450;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []));
}

/** Every function, method and arrow function of a file longer than `max` lines: "name (lines)". */
function longFunctions(file: string, max: number): string[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const from = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const to = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = to - from + 1;
      if (lines > max) {
        const name = node.name && ts.isIdentifier(node.name) ? node.name.text : `(anonymous at line ${from + 1})`;
        out.push(`${relative(SRC, file)}: ${name} (${lines} lines)`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

test(`no function is longer than ${MAX_FUNCTION_LINES} lines`, () => {
  const long = sources(SRC).flatMap((f) => longFunctions(f, MAX_FUNCTION_LINES));
  assert.deepEqual(long, [], `functions over ${MAX_FUNCTION_LINES} lines:\n${long.join('\n')}`);
});

test(`no service file is longer than ${MAX_SERVICE_LINES} lines`, () => {
  const long = sources(join(SRC, 'services'))
    .map((f) => [relative(SRC, f), readFileSync(f, 'utf8').split('\n').length] as const)
    .filter(([, n]) => n > MAX_SERVICE_LINES)
    .map(([f, n]) => `${f} (${n} lines)`);
  assert.deepEqual(long, [], `service files over ${MAX_SERVICE_LINES} lines:\n${long.join('\n')}`);
});

test('every source file opens with a comment that says its job', () => {
  const bare = sources(SRC)
    .filter((f) => !/^\s*(\/\*\*|\/\/|#!)/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(SRC, f));
  assert.deepEqual(bare, [], `files without a header comment:\n${bare.join('\n')}`);
});

test('the checks see what they check: a long function is found', () => {
  // This file's own parser on a made-up source: 130 lines of body.
  const body = Array.from({ length: 130 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const sf = ts.createSourceFile('x.ts', `function big() {\n${body}\n}\n`, ts.ScriptTarget.Latest, true);
  const fn = sf.statements[0]!;
  assert.ok(ts.isFunctionLike(fn));
  const lines = sf.getLineAndCharacterOfPosition(fn.getEnd()).line - sf.getLineAndCharacterOfPosition(fn.getStart(sf)).line + 1;
  assert.equal(lines, 132);
});
