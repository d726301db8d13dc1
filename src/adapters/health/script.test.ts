import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { scriptProbe } from './script.js';
import { loopbackTarget } from './test-target.js';

const script = (path: string, ...args: string[]) => ({ script: { path, args } });

test('script: exit 0 is up, anything else is down with the exit status', async () => {
  const ok = await scriptProbe.run(loopbackTarget(80, script('/bin/true')), 2000);
  assert.deepEqual([ok.ok, ok.detail], [true, 'exit 0']);
  const bad = await scriptProbe.run(loopbackTarget(80, script('/bin/false')), 2000);
  assert.deepEqual([bad.ok, bad.detail], [false, 'exit 1']);
  const two = await scriptProbe.run(loopbackTarget(80, script('/bin/sh', '-c', 'exit 2')), 2000);
  assert.deepEqual([two.ok, two.detail], [false, 'exit 2']);
});

test('script: runs without a shell, with the FWLB_ environment', async () => {
  // Arguments reach the program verbatim: no word splitting, no expansion, no ";".
  const check = 'test "$1" = \'a b;$(x)\' && test "$FWLB_SERVICE" = web && test "$FWLB_BACKEND" = web1 '
    + '&& test "$FWLB_ADDRESS" = 127.0.0.1 && test "$FWLB_PORT" = 8080 && test -z "$HOME$NODE_OPTIONS_UNSET_MARK"';
  const r = await scriptProbe.run(loopbackTarget(8080, script('/bin/sh', '-c', check, 'sh', 'a b;$(x)')), 2000);
  assert.deepEqual([r.ok, r.detail], [true, 'exit 0']);
});

test('script: a missing program is down with the spawn error', async () => {
  const r = await scriptProbe.run(loopbackTarget(80, script('/nonexistent/fwlb-check')), 2000);
  assert.deepEqual([r.ok, r.detail], [false, 'spawn /nonexistent/fwlb-check ENOENT']);
});

/** PIDs of processes whose command line is exactly `argv`. */
async function pidsRunning(argv: string[]): Promise<number[]> {
  const want = argv.join('\0') + '\0';
  const found: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (cmd === want) found.push(Number(d));
  }
  return found;
}

test('script: a script that runs past the timeout is down and killed', async () => {
  const secs = `30.${process.pid}${Date.now() % 1000}`; // a command line no one else runs
  const r = await scriptProbe.run(loopbackTarget(80, script('/bin/sleep', secs)), 300);
  assert.deepEqual([r.ok, r.detail], [false, 'timeout after 300 ms']);
  assert.ok(r.ms >= 290 && r.ms < 1000, `took ${r.ms} ms`);
  await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(await pidsRunning(['/bin/sleep', secs]), []);
});

test('script: children the script forked die with it on timeout', async () => {
  const secs = `31.${process.pid}${Date.now() % 1000}`;
  const r = await scriptProbe.run(loopbackTarget(80, script('/bin/sh', '-c', `/bin/sleep ${secs}; true`)), 300);
  assert.deepEqual([r.ok, r.detail], [false, 'timeout after 300 ms']);
  await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(await pidsRunning(['/bin/sleep', secs]), []);
});
