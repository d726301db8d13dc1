import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reexecArgv, GC_FLAG } from './reexec.js';

const here = fileURLToPath(new URL('./reexec.js', import.meta.url));

test('the argument vector puts the missing flags first and keeps the rest as it was', () => {
  assert.deepEqual(reexecArgv('/usr/bin/node', ['--trace-gc'], ['/usr/bin/node', '/x/main.js', 'run', '-c', 'a b.yaml'], [GC_FLAG]), ['/usr/bin/node', GC_FLAG, '--trace-gc', '/x/main.js', 'run', '-c', 'a b.yaml']);
  assert.deepEqual(reexecArgv('/n', [GC_FLAG], ['/n', 'm.js'], [GC_FLAG]), ['/n', GC_FLAG, 'm.js']);
});

// The process replaces itself: same PID, the flag now in force, its arguments, environment
// and stdout (which node had marked close-on-exec) all still there.
const script = `
import { ensureNodeFlags } from ${JSON.stringify(here)};
const before = process.execArgv.join(' ');
const why = ensureNodeFlags();
console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2), env: process.env.REEXEC_PROBE, why, before }));
`;
const dir = mkdtempSync(join(tmpdir(), 'fwlb-reexec-'));
const probe = join(dir, 'probe.mjs');
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(probe, script);

test('a process started without the flag replaces itself with one that has it (same PID, arguments, environment, stdout)', () => {
  const r = spawnSync(process.execPath, ['--trace-warnings', probe, 'one', 'two words'], { env: { ...process.env, REEXEC_PROBE: 'kept', FWLB_CONCURRENT_GC: '' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one line (only the new image prints): ${r.stdout}`);
  const out = JSON.parse(lines[0]!) as { pid: number; execArgv: string[]; args: string[]; env: string; why: string | null };
  assert.equal(out.pid, r.pid, 'the same process');
  assert.ok(out.execArgv.includes(GC_FLAG), JSON.stringify(out));
  assert.equal(out.why, null);
  assert.equal(out.env, 'kept');
  assert.deepEqual(out.args, ['one', 'two words']);
  assert.deepEqual(out.execArgv, [GC_FLAG, '--trace-warnings']);
});

test('FWLB_CONCURRENT_GC=1 keeps V8 default and says so', () => {
  const r = spawnSync(process.execPath, [probe], { env: { ...process.env, FWLB_CONCURRENT_GC: '1' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { execArgv: string[]; why: string | null };
  assert.ok(!out.execArgv.includes(GC_FLAG));
  assert.equal(out.why, 'FWLB_CONCURRENT_GC=1');
});
