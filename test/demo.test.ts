/** The README's main command: `fwlb demo` runs end to end and every check passes (root). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runRaw } from '../src/lib/exec.js';
import { CLI_MAIN_JS } from '../src/lab/paths.js';
import { listNamespaces } from '../src/lab/netns.js';

test('fwlb demo passes every check and leaves nothing behind', async () => {
  const r = await runRaw(process.execPath, [CLI_MAIN_JS, 'demo', '--prefix', 'tdemo']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /(\d+)\/\1 checks passed/);
  assert.doesNotMatch(r.stdout, /^FAIL/m);
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith('tdemo-')), []);
});

test('fwlb demo --active-active passes every check and leaves nothing behind', async () => {
  const r = await runRaw(process.execPath, [CLI_MAIN_JS, 'demo', '--active-active', '--prefix', 'tdaa']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /(\d+)\/\1 checks passed/);
  assert.match(r.stdout, /each node carries about a third/);
  assert.doesNotMatch(r.stdout, /^FAIL/m);
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith('tdaa-')), []);
});
