import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BUNDLE_REJECTS, decodeBundle, encodeBundle, filesHash, safeFileName, type Bundle, type BundleFile } from './bundle.js';

const files: BundleFile[] = [
  { name: 'cluster.yaml', body: Buffer.from('cluster: { name: lab }\n') },
  { name: 'lists/block.txt', body: Buffer.from('198.18.9.0/24\n') },
];
const bundle = (over: Partial<Bundle['meta']> = {}, f = files): Bundle => ({ meta: { cluster: 'lab', version: 3, hash: filesHash(f), origin: 'fw2', at: 1_765_000_000_000, ...over }, files: f });

test('a bundle round-trips: the config first, its block lists after, the hash over them all', () => {
  const b = bundle({ confirmMs: 120_000, previousHash: 'a'.repeat(64) });
  const r = decodeBundle(encodeBundle(b));
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.bundle, b);
});

test("the hash tells file sets apart: a changed body, a renamed file, bytes moved between name and body", () => {
  const h = filesHash(files);
  assert.notEqual(filesHash([files[0]!, { ...files[1]!, body: Buffer.from('198.18.9.0/25\n') }]), h);
  assert.notEqual(filesHash([files[0]!, { ...files[1]!, name: 'lists/block2.txt' }]), h);
  assert.notEqual(filesHash([{ name: 'ab', body: Buffer.from('c') }]), filesHash([{ name: 'a', body: Buffer.from('bc') }]));
});

test('refused, each with its reason: files that do not match the hash, names outside the config directory, bad meta, trailing bytes, truncations', () => {
  const wrong = bundle();
  wrong.meta.hash = 'b'.repeat(64);
  assert.equal(decodeBundle(encodeBundle(wrong)).ok, false);
  assert.deepEqual(decodeBundle(encodeBundle(wrong)), { ok: false, reason: 'bad_hash' });
  for (const name of ['/etc/passwd', '../x', 'a/../../x', 'a//b', '', 'x\0y']) {
    const f = [files[0]!, { name, body: Buffer.from('1.2.3.4') }];
    const r = decodeBundle(encodeBundle(bundle({}, f)));
    assert.equal(r.ok ? 'ok' : r.reason, 'bad_files', `file name ${JSON.stringify(name)}`);
    assert.equal(safeFileName(name), false);
  }
  const dup = [files[0]!, files[1]!, files[1]!];
  assert.equal(decodeBundle(encodeBundle(bundle({}, dup))).ok, false, 'one name twice');
  const badMeta = encodeBundle(bundle({ version: 0 }));
  const r = decodeBundle(badMeta);
  assert.ok(!r.ok && r.reason === 'bad_meta' && /version/.test(r.detail ?? ''), JSON.stringify(r));
  const extra = { ...bundle().meta, extra: 1 } as unknown as Bundle['meta'];
  assert.equal(decodeBundle(encodeBundle({ meta: extra, files })).ok, false, 'unknown meta keys');
  const bytes = encodeBundle(bundle());
  assert.deepEqual(decodeBundle(Buffer.concat([bytes, Buffer.from([0])])), { ok: false, reason: 'trailing' });
  for (let n = 0; n < bytes.length; n++) assert.equal(decodeBundle(bytes.subarray(0, n)).ok, false, `truncated to ${n}`);
});

test('property: random bytes and random corruptions never throw; what decodes is a bundle whose files match its hash', () => {
  const good = encodeBundle(bundle());
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const r = decodeBundle(Buffer.from(b));
      if (!r.ok) assert.ok((BUNDLE_REJECTS as readonly string[]).includes(r.reason));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.nat({ max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const bad = Buffer.from(good);
      bad[i] = bad[i]! ^ x;
      const r = decodeBundle(bad);
      if (r.ok) assert.equal(filesHash(r.bundle.files), r.bundle.meta.hash);
    }),
    { numRuns: 2000 },
  );
});
