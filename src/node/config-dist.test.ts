import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkFiles, MAIN_FILE, readConfigFiles } from './config-dist.js';

const LAB = new URL('../../../examples/lab.yaml', import.meta.url);

async function dirWith(blockFiles: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fwlb-cd-'));
  await mkdir(join(dir, 'etc'));
  const file = join(dir, 'etc', 'cluster.yaml');
  await writeFile(file, (await readFile(LAB, 'utf8')).replace('firewall:\n', `firewall:\n  block_files: ${blockFiles}\n`));
  await writeFile(join(dir, 'etc', 'blocks.txt'), '198.18.9.0/24\n');
  await writeFile(join(dir, 'outside.txt'), '198.18.8.0/24\n');
  return { dir, file };
}

test('a config is read with its block lists as one bundle, parsed once; a list outside its folder is refused for a push (key and line named), read for what runs', async () => {
  const a = await dirWith('[blocks.txt]');
  try {
    const r = await readConfigFiles(a.file);
    assert.ok(r.ok);
    assert.deepEqual(r.files.map((f) => f.name), [MAIN_FILE, 'blocks.txt']);
    assert.deepEqual(r.loaded.blocklist, ['198.18.9.0/24']);
  } finally {
    await rm(a.dir, { recursive: true });
  }
  const b = await dirWith('[blocks.txt, ../outside.txt]');
  try {
    const pushed = await readConfigFiles(b.file);
    assert.ok(!pushed.ok);
    assert.match(pushed.error.message, /cluster\.yaml:\d+:\d+: firewall\.block_files\[1\]: "\.\.\/outside\.txt": only files beside the config or below it/);
    const running = await readConfigFiles(b.file, false);
    assert.ok(running.ok);
    assert.deepEqual(running.files.map((f) => f.name), [MAIN_FILE, 'blocks.txt', '../outside.txt']);
  } finally {
    await rm(b.dir, { recursive: true });
  }
  const missing = await readConfigFiles('/nonexistent/fwlb/cluster.yaml');
  assert.ok(!missing.ok);
  assert.match(missing.error.message, /cannot read the config/);
});

test("a bundle is checked for every node where it is pushed, parsed only where it arrives; its block lists come from the bundle, not the disk", async () => {
  const a = await dirWith('[blocks.txt]');
  try {
    const r = await readConfigFiles(a.file);
    assert.ok(r.ok);
    // Elsewhere, with the list not on the disk: the bundle's copy is read.
    const elsewhere = join(a.dir, 'other.yaml');
    for (const scope of ['cluster', 'self'] as const) {
      const c = await checkFiles(r.files, elsewhere, scope);
      assert.equal(c.problem, undefined, scope);
      assert.ok(c.parsed.ok);
      assert.deepEqual(c.parsed.value.blocklist, ['198.18.9.0/24']);
    }
    const broken = [{ name: MAIN_FILE, body: Buffer.from('cluster: [') }, ...r.files.slice(1)];
    assert.match((await checkFiles(broken, elsewhere, 'self')).problem ?? '', /other\.yaml/);
  } finally {
    await rm(a.dir, { recursive: true });
  }
});
