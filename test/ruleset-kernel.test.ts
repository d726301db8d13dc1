/**
 * The compiled rulesets against the real kernel (root): every golden ruleset loads;
 * apply is atomic (a refused ruleset leaves the previous one, with the kernel's reason);
 * applying twice is idempotent; fwlb never touches another table.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { loadConfigFile } from '../src/config/load.js';
import { nodeView } from '../src/config/node.js';
import { compileRuleset } from '../src/compiler/ruleset.js';
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

/** Every shipped example compiled for each of its nodes, in full. */
async function compiledExamples(): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const f of (await readdir(`${repo}examples`)).filter((x) => x.endsWith('.yaml')).sort()) {
    const r = await loadConfigFile(`${repo}examples/${f}`);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    for (const node of Object.keys(r.value.config.nodes)) {
      out.push([`${f}/${node}`, compileRuleset({ config: r.value.config, node: nodeView(r.value.config, node), blocklist: r.value.blocklist })]);
    }
  }
  return out;
}

test('every compiled example passes nft -c and loads into a real kernel', async () => {
  const all = await compiledExamples();
  assert.ok(all.length >= 4);
  for (const [f, script] of all) {
    await nft.check(script);
    await nft.apply(script);
    const listed = await nft.list(['list', 'table', 'inet', 'fwlb']);
    assert.match(listed, /chain forward \{\n\t\ttype filter hook forward priority filter; policy drop;/, f);
  }
});

test('a refused ruleset leaves the previous one in place and reports the kernel reason; re-apply is idempotent', async () => {
  const good = (await compiledExamples()).find(([f]) => f === 'lab.yaml/fw1')![1];
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
  const good = (await compiledExamples()).find(([f]) => f === 'edge.yaml/fw1')![1];
  await nft.apply(good);
  await nft.apply(good);
  const other = await run('ip', ['netns', 'exec', NS, 'nft', 'list', 'table', 'ip', 'other']);
  assert.match(other, /chain c \{/);
  assert.match(other, /counter packets/);
});
