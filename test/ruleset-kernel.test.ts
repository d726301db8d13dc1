/**
 * The compiled rulesets against the real kernel (root): every golden ruleset loads;
 * apply is atomic (a refused ruleset leaves the previous one, with the kernel's reason);
 * applying twice is idempotent; fwlb never touches another table.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { run, runRaw } from '../src/lib/exec.js';
import { createNft, NftError } from '../src/adapters/nft.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const NS = 'tnft-k';
const nft = createNft(['ip', 'netns', 'exec', NS, 'nft']);

before(async () => {
  await runRaw('ip', ['netns', 'del', NS]);
  await run('ip', ['netns', 'add', NS]);
});
after(async () => {
  await runRaw('ip', ['netns', 'del', NS]);
});

test('every golden ruleset passes nft -c and loads into a real kernel', async () => {
  const files = (await readdir(`${repo}test/golden`)).filter((f) => f.endsWith('.nft'));
  assert.ok(files.length >= 4);
  for (const f of files) {
    const script = await readFile(`${repo}test/golden/${f}`, 'utf8');
    await nft.check(script);
    await nft.apply(script);
    const listed = await nft.list(['list', 'table', 'inet', 'fwlb']);
    assert.match(listed, /chain forward \{\n\t\ttype filter hook forward priority filter; policy drop;/, f);
  }
});

test('a refused ruleset leaves the previous one in place and reports the kernel reason; re-apply is idempotent', async () => {
  const good = await readFile(`${repo}test/golden/lab.fw1.nft`, 'utf8');
  await nft.apply(good);
  const before = await nft.list(['list', 'table', 'inet', 'fwlb']);
  await nft.apply(good);
  assert.equal(await nft.list(['list', 'table', 'inet', 'fwlb']), before, 'applying the same ruleset twice changes nothing');

  // Valid syntax, refused by the kernel late in the batch: a jump to a chain that does not exist.
  const bad = good.replace('ct status dnat counter accept', 'ct status dnat counter jump nowhere');
  await assert.rejects(nft.apply(bad), (e: unknown) => e instanceof NftError && /nowhere|No such file/.test(e.reason));
  assert.equal(await nft.list(['list', 'table', 'inet', 'fwlb']), before, 'the previous ruleset must be intact');
});

test("fwlb's ruleset never touches other tables", async () => {
  await run('ip', ['netns', 'exec', NS, 'nft', 'add table ip other; add chain ip other c { type filter hook input priority 10; policy accept; }; add rule ip other c counter']);
  const good = await readFile(`${repo}test/golden/edge.fw1.nft`, 'utf8');
  await nft.apply(good);
  await nft.apply(good);
  const other = await run('ip', ['netns', 'exec', NS, 'nft', 'list', 'table', 'ip', 'other']);
  assert.match(other, /chain c \{/);
  assert.match(other, /counter packets/);
});
