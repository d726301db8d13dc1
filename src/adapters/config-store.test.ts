import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filesHash, type Bundle } from '../codec/config/bundle.js';
import { ConfigStore } from './config-store.js';

const files = [{ name: '@config', body: Buffer.from('cluster: { name: lab }\n') }];
const bundle = (version: number): Bundle => ({ meta: { cluster: 'lab', version, hash: filesHash(files), origin: 'fw1', at: 1 }, files });

test('versions, the confirm and the runtime changes are kept (mode 0600, no temporary file left) and read back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fwlb-store-'));
  try {
    const s = new ConfigStore(join(dir, 'fw1-state'));
    assert.deepEqual(await s.load(), { problems: [] }, 'nothing yet');
    await s.saveVersions(bundle(2), bundle(1));
    await s.saveConfirm({ version: 2, deadline: 1234 });
    await s.saveRuntime({ v: 1, cluster: 'lab', local: [{ op: 'drain', service: 'web', backend: 'web1' }], shared: { version: 1, commands: [] } });
    const got = await s.load();
    assert.deepEqual([got.current?.meta.version, got.previous?.meta.version, got.confirm, got.problems], [2, 1, { version: 2, deadline: 1234 }, []]);
    assert.deepEqual((await s.loadRuntime([]))?.local, [{ op: 'drain', service: 'web', backend: 'web1' }]);
    assert.equal((await stat(join(dir, 'fw1-state', 'config-current.bundle'))).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(join(dir, 'fw1-state'))).filter((f) => f.includes('.tmp')), []);
    await s.saveConfirm(undefined);
    assert.equal((await s.load()).confirm, undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('damaged files are said and left out, never trusted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fwlb-store-'));
  try {
    const s = new ConfigStore(dir);
    await s.saveVersions(bundle(2), undefined);
    const bytes = await readFile(join(dir, 'config-current.bundle'));
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff;
    await writeFile(join(dir, 'config-current.bundle'), bytes);
    await writeFile(join(dir, 'config-confirm.json'), '{"version": "two"}');
    await writeFile(join(dir, 'runtime.json'), '{"v":1,"cluster":"lab","local":[{"op":"drop table"}],"shared":{"version":0,"commands":[]}}');
    const got = await s.load();
    assert.equal(got.current, undefined);
    assert.equal(got.confirm, undefined);
    assert.equal(got.problems.length, 2, got.problems.join('\n'));
    assert.match(got.problems[0]!, /config-current\.bundle: bad_hash/);
    const problems: string[] = [];
    assert.equal(await s.loadRuntime(problems), undefined);
    assert.match(problems[0]!, /runtime\.json/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
