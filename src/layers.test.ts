/**
 * The layout's rule, checked (ENGINEERING.md: imports point one way): codecs and pure logic
 * at the bottom, ports (the interfaces the services own, types only) beside them, I/O
 * adapters above those, services above, worker-thread entry points and control beside the
 * services, the node's assembly (node/) above them all, `main` on top. Reads the sources' import statements; fails naming the file, the
 * import and the rule it breaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/src/layers.test.js -> the repository's src/ (the .ts sources).
const here = dirname(fileURLToPath(import.meta.url));
const SRC = [resolve(here, '../../src'), resolve(here, '.')].find((d) => existsSync(join(d, 'main.ts')))!;

interface Import {
  file: string;
  target: string;
  typeOnly: boolean;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []));
}

/** Relative imports and re-exports of a file, as `layer/rest` paths under src/. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const out: Import[] = [];
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'(\.{1,2}\/[^']+)'/gms)) {
    const typeOnly = !!m[2] || /^import\s+\{[^}]*\}\s+from/s.test(m[0]) && [...m[0].matchAll(/\{([^}]*)\}/g)].every((b) => b[1]!.split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type ')));
    out.push({ file: relative(SRC, file), target: relative(SRC, resolve(dirname(file), m[3]!)).replace(/\.js$/, '.ts'), typeOnly });
  }
  return out;
}

const layer = (path: string) => (path.includes('/') ? path.split('/')[0]! : path.replace(/\.ts$/, ''));

const all = sources(SRC).flatMap(importsOf);

/** Layer -> the layers it must never import. */
const FORBIDDEN: Record<string, string[]> = {
  // node/ assembles a node from everything below it; only main (and the CLI) use it.
  lib: ['codec', 'fsm', 'ports', 'adapters', 'services', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'config', 'compiler', 'balancer', 'node'],
  codec: ['fsm', 'adapters', 'services', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'config', 'compiler', 'balancer', 'node'],
  ports: ['adapters', 'services', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'node'],
  fsm: ['adapters', 'services', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'node'],
  balancer: ['adapters', 'services', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'node'],
  compiler: ['adapters', 'services', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'node'],
  config: ['adapters', 'services', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'node'],
  adapters: ['services', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'node'],
  services: ['adapters', 'control', 'workers', 'cli', 'lab', 'demo', 'main', 'node'],
  workers: ['services', 'control', 'cli', 'lab', 'demo', 'main', 'node'],
  control: ['node', 'cli', 'lab', 'demo', 'main'],
  node: ['cli', 'lab', 'demo', 'main'],
};

test('imports point one way: no layer imports one above it', () => {
  const broken = all
    .filter((i) => FORBIDDEN[layer(i.file)]?.includes(layer(i.target)))
    .map((i) => `${i.file} imports ${i.target} (${layer(i.file)} must not import ${layer(i.target)})`);
  assert.deepEqual(broken, []);
});

test('ports are types only: no code, and they import types alone', () => {
  const bad: string[] = [];
  for (const file of sources(join(SRC, 'ports'))) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(SRC, file);
    for (const m of text.matchAll(/^export\s+(?!interface\b|type\b)(\w+)/gm)) bad.push(`${rel}: exports a ${m[1]} (a port holds interfaces and types)`);
    for (const i of importsOf(file)) if (!i.typeOnly) bad.push(`${rel}: imports ${i.target} for its values`);
  }
  assert.deepEqual(bad, []);
});

test('no runtime loop between services', () => {
  const edges = new Map<string, string[]>();
  for (const i of all) {
    if (layer(i.file) !== 'services' || layer(i.target) !== 'services' || i.typeOnly) continue;
    edges.set(i.file, [...(edges.get(i.file) ?? []), i.target]);
  }
  const loops: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (n: string, path: string[]) => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'open') {
      loops.push([...path.slice(path.indexOf(n)), n].join(' -> '));
      return;
    }
    state.set(n, 'open');
    for (const m of edges.get(n) ?? []) visit(m, [...path, n]);
    state.set(n, 'done');
  };
  for (const n of edges.keys()) visit(n, []);
  assert.deepEqual(loops, []);
});

test('the checker sees imports (it is not vacuous)', () => {
  assert.ok(all.length > 200, `only ${all.length} imports found under ${SRC}`);
  assert.ok(all.some((i) => i.file === 'main.ts' && layer(i.target) === 'node'));
  assert.ok(all.some((i) => layer(i.file) === 'node' && layer(i.target) === 'services'));
});
