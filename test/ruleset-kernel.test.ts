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

test('a reload as a delta leaves the kernel exactly as the full ruleset would, for every kind of change', async () => {
  const { parseConfig } = await import('../src/config/load.js');
  const { compileRulesetParts } = await import('../src/compiler/ruleset.js');
  const { rulesetDelta } = await import('../src/compiler/delta.js');
  const { readFile } = await import('node:fs/promises');
  const base = await readFile(`${repo}examples/edge.yaml`, 'utf8');
  const NS2 = 'tnft-k2';
  const nft2 = createNft(['ip', 'netns', 'exec', NS2, 'nft']);
  await runRaw('ip', ['netns', 'del', NS2]);
  await run('ip', ['netns', 'add', NS2]);
  const parts = async (text: string) => {
    const r = await parseConfig(text, 'edge.yaml');
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    return compileRulesetParts({ config: r.value.config, node: nodeView(r.value.config, 'fw1'), blocklist: r.value.blocklist });
  };
  const changes: [string, (t: string) => string][] = [
    ['one rule added', (t) => t.replace('  rules:\n', '  rules:\n    - allow: { proto: tcp, port: 8443, from: inside, to: outside, comment: new }\n')],
    ['one rule removed', (t) => t.replace(/    - allow: \{ proto: udp, port: 53.*\n/, '')],
    ['a blocklist prefix added', (t) => t.replace('block: [198.19.66.0/24, 198.19.99.0/24]', 'block: [198.19.66.0/24, 198.19.99.0/24, 198.19.77.0/24]')],
    ['a service removed', (t) => t.replace(/  https:\n(    .*\n|      .*\n)*/, '')],
    ['a service added', (t) => `${t}  api:\n    listen: 198.18.0.100:8080/tcp\n    scheduler: maglev\n    backends:\n      web3: { address: 198.18.1.13:8080 }\n`],
    ['a backend added', (t) => t.replace('      web2: { address: 198.18.1.12:80, weight: 2 }\n', '      web2: { address: 198.18.1.12:80, weight: 2 }\n      web3: { address: 198.18.1.13:80 }\n')],
    ['nat changed', (t) => t.replace('    - masquerade: { from: 198.18.1.0/24, out: outside }', '    - snat: { from: 198.18.1.0/24, out: outside, to: 198.18.0.100 }')],
  ];
  try {
    for (const [what, change] of changes) {
      const prev = await parts(base);
      const next = await parts(change(base));
      const delta = rulesetDelta(prev.blocks, next.blocks);
      assert.ok(delta, `${what}: a delta exists`);
      assert.ok(delta.length < next.script.length * (what.includes('rule') ? 0.25 : 1), `${what}: the delta (${delta.length} bytes) is smaller than the ruleset (${next.script.length})`);
      await nft.apply(prev.script);
      await nft.apply(delta);
      await nft2.apply(next.script);
      // The same objects with the same contents (the kernel lists them in creation order).
      const objects = (s: string) =>
        s
          .replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0')
          .split(/\n(?=\t(?:chain|map|set|counter) )/)
          .slice(1)
          .map((o) => o.trim())
          .sort();
      assert.deepEqual(objects(await nft.list(['list', 'table', 'inet', 'fwlb'])), objects(await nft2.list(['list', 'table', 'inet', 'fwlb'])), `${what}: delta and full ruleset differ in the kernel`);
    }
    const same = await parts(base);
    assert.equal(rulesetDelta(same.blocks, (await parts(base)).blocks), '', 'no change, no delta');
  } finally {
    await runRaw('ip', ['netns', 'del', NS2]);
  }
});
