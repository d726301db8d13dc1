/**
 * Every CLI error says what to do next (issue 23): each way a command fails that needs no
 * root or running node ends with exit status 1, the error, and a `next:` line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../examples/lab.yaml', import.meta.url));
const fwlb = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });

test('every CLI error ends with what to do next', () => {
  const dir = mkdtempSync(`${tmpdir()}/fwlb-errors-`);
  try {
    const none = `${dir}/none.sock`;
    writeFileSync(`${dir}/bad.yaml`, 'nodes: [\n');
    writeFileSync(`${dir}/key`, 'x');
    writeFileSync(`${dir}/notes.txt`, 'hello\n');
    const cases: [string, string[], RegExp][] = [
      ['a config file that is not there', ['check', '-c', `${dir}/missing.yaml`], /next: fix the file/],
      ['a config that is not YAML', ['check', '-c', `${dir}/bad.yaml`], /bad\.yaml:2:1: .*\nnext: fix the file where each error points/],
      ['a node the file does not have', ['check', '-c', EXAMPLE, '-n', 'nosuchnode', '--no-host'], /next: name one of the file's `nodes:`/],
      ['ruleset of a node the file does not have', ['ruleset', '-c', EXAMPLE, '-n', 'nosuchnode'], /next: name one of the file's `nodes:`/],
      ['status with no node running', ['status', '--control', none], /cannot reach the node at .*\nnext: start the node/],
      ['reload with no node running', ['reload', '--control', none], /next: start the node/],
      ['stop with no node running', ['stop', '--control', none], /next: start the node/],
      ['metrics with no node running', ['metrics', '--control', none], /next: start the node/],
      ['a backend change with no node running', ['backend', 'drain', 'web', 'web1', '--control', none], /next: start the node/],
      ['a wait with a timeout that is not a duration', ['status', '--wait-ready', '--timeout', 'soon', '--control', none], /is not a duration\nnext: give one such as 30s/],
      ['keygen over an existing file', ['keygen', '-o', `${dir}/key`], /never overwrites a key .*\nnext: keep it, or remove it first/],
      ['keygen into a directory that is not there', ['keygen', '-o', `${dir}/no/such/dir/key`], /cannot write .*\nnext: choose a file/],
      ['a backend address that is not one', ['backend', 'add', 'web', 'web9', 'not-an-address', '--control', none], /is not ADDRESS\[:PORT\]\nnext: give the backend's address/],
      ['maintenance neither on nor off', ['maintenance', 'maybe', '--control', none], /got "maybe"\)\nnext: `fwlb maintenance on`/],
      ['a mistyped command', ['chek'], /unknown command 'chek'[\s\S]*next: add --help/],
      ['a required option left out', ['check'], /required option '-c, --config <file>'[\s\S]*next: add --help/],
      ['an unknown option', ['status', '--jsn'], /unknown option '--jsn'[\s\S]*next: add --help/],
      ['import of a file that is neither keepalived nor conntrackd', ['import', `${dir}/notes.txt`], /neither a keepalived nor a conntrackd configuration .*\nnext: give keepalived\.conf files first/],
    ];
    for (const [what, args, want] of cases) {
      const r = fwlb(...args);
      assert.equal(r.status, 1, `${what}: exit status ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, want, `${what}: stderr was\n${r.stderr}`);
      assert.match(r.stderr, /^next: \S/m, `${what}: no "next:" line in\n${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
