import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { syncKeyProblem } from '../codec/sync/message.js';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const fwlb = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

test('fwlb keygen -o FILE: 32 random bytes in hex, mode 0600, a key the state sync accepts; never over an existing file', () => {
  const dir = mkdtempSync(`${tmpdir()}/fwlb-keygen-`);
  try {
    const file = `${dir}/cluster.key`;
    const r = fwlb('keygen', '-o', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /cluster key written to .*cluster\.key \(mode 0600\)/);
    const key = readFileSync(file, 'utf8');
    assert.match(key, /^[0-9a-f]{64}\n$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(syncKeyProblem(readFileSync(file)), undefined);
    const again = fwlb('keygen', '-o', file);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /exists: fwlb keygen never overwrites a key/);
    assert.equal(readFileSync(file, 'utf8'), key, 'the key is untouched');
    // Not even a file that is not a key.
    writeFileSync(`${dir}/other`, 'x');
    assert.equal(fwlb('keygen', '--out', `${dir}/other`).status, 1);
    assert.equal(readFileSync(`${dir}/other`, 'utf8'), 'x');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fwlb keygen without -o prints a fresh key each time', () => {
  const a = fwlb('keygen');
  const b = fwlb('keygen');
  assert.equal(a.status, 0);
  assert.match(a.stdout, /^[0-9a-f]{64}\n$/);
  assert.notEqual(a.stdout, b.stdout);
});
