/**
 * Ruleset scale: how long parsing, compiling and applying a ruleset with N blocked
 * prefixes takes, and whether the lookup cost is flat: requests/s through a node with
 * 10 blocked prefixes versus N, side by side in one lab, alternating runs.
 *
 *   node dist/bench/ruleset-scale.js [--prefixes 100000] [--seconds 5] [--rounds 2]
 *
 * Prints figures; never asserts. Needs root (a `single` lab) and wrk.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.js';
import { nodeView } from '../src/config/node.js';
import { compileRuleset } from '../src/compiler/ruleset.js';
import { createNft } from '../src/adapters/nft.js';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { bigToV4 } from '../src/lib/ip.js';
import { wrk, table } from './util.js';

const { values } = parseArgs({
  options: {
    prefixes: { type: 'string', default: '100000' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    prefix: { type: 'string', default: 'bscale' },
  },
});
const N = Number(values.prefixes);
const repo = fileURLToPath(new URL('../../', import.meta.url));

/**
 * N distinct host prefixes inside 198.18.16.0 - 198.19.255.255 (the benchmarking range,
 * clear of the lab's own subnets), in a shuffled order, from a fixed seed.
 */
function blocklist(n: number): string[] {
  const base = (198n << 24n) | (18n << 16n) | (16n << 8n);
  const span = 131072 - 4096;
  if (n > span) throw new Error(`at most ${span} prefixes fit the benchmarking range`);
  let x = 0x2545f491;
  const rnd = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 2 ** 32);
  const idx = Array.from({ length: span }, (_, i) => i);
  for (let i = span - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, n).map((i) => bigToV4(base + BigInt(i)));
}

async function timed<T>(f: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  return [v, performance.now() - t0];
}

async function main(): Promise<void> {
  const exampleText = await readFile(`${repo}examples/lab.yaml`, 'utf8');
  let lab: Lab | undefined;
  try {
    lab = await labUp({ prefix: values.prefix!, topology: 'single', vipsOn: 'fw1' });
    const dir = lab.stateDir;
    const rows: string[][] = [];
    const scripts: Record<string, string> = {};
    for (const [label, n] of [['10', 10], [String(N), N]] as const) {
      await writeFile(`${dir}/block-${n}.txt`, blocklist(n).join('\n') + '\n');
      const text = exampleText.replace('firewall:\n', `firewall:\n  block_files: [block-${n}.txt]\n`);
      const [loaded, parseMs] = await timed(() => parseConfig(text, `${dir}/cluster-${n}.yaml`));
      if (!loaded.ok) throw loaded.error;
      const cfg = loaded.value;
      const [script, compileMs] = await timed(() => compileRuleset({ config: cfg.config, node: nodeView(cfg.config, 'fw1'), blocklist: cfg.blocklist }));
      const nft = createNft(['ip', 'netns', 'exec', lab.ns('fw1'), 'nft']);
      const [, checkMs] = await timed(() => nft.check(script));
      const [, applyMs] = await timed(() => nft.apply(script));
      const [, reapplyMs] = await timed(() => nft.apply(script));
      scripts[label] = script;
      rows.push([label, parseMs.toFixed(0), compileMs.toFixed(0), (script.length / 1024).toFixed(0), checkMs.toFixed(0), applyMs.toFixed(0), reapplyMs.toFixed(0)]);
    }
    console.log(`\nRuleset with blocked prefixes (node fw1 of a single lab; times in ms)`);
    console.log(table(['prefixes', 'parse+load', 'compile', 'script KiB', 'nft -c', 'apply', 're-apply'], rows));

    // Lookup cost: requests/s through the VIP with each ruleset, alternating to share the noise.
    const nft = createNft(['ip', 'netns', 'exec', lab.ns('fw1'), 'nft']);
    const results: Record<string, number[]> = { '10': [], [String(N)]: [] };
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const label of Object.keys(results)) {
        await nft.apply(scripts[label]!);
        const rps = await wrk(lab, 'client1', 'http://198.18.0.100/', Number(values.seconds));
        results[label]!.push(rps);
      }
    }
    const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const small = avg(results['10']!);
    const big = avg(results[String(N)]!);
    console.log(`\nData plane through the node, wrk -t1 -c50 -d${values.seconds}s, ${values.rounds} rounds each, alternating`);
    console.log(table(['blocked prefixes', 'requests/s (mean)', 'runs', 'ratio to 10'], [
      ['10', small.toFixed(0), results['10']!.map((v) => v.toFixed(0)).join(' '), '1.00'],
      [String(N), big.toFixed(0), results[String(N)]!.map((v) => v.toFixed(0)).join(' '), (big / small).toFixed(2)],
    ]));
  } finally {
    await labDown(values.prefix!);
  }
}

await main();
