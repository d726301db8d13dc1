/**
 * The firewall in a real lab (root): `fwlb run` on fw1 of a `single` lab with the
 * shipped examples/lab.yaml, the VIPs pinned on fw1. Real TCP through the kernel.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { controlCall } from '../src/control/client.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import type { ProcessHandle } from '../src/lab/processes.js';
import { ECHO_SESSION_JS, RAW_TCP_JS } from '../src/lab/paths.js';
import { waitFor } from '../src/lib/wait.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const PREFIX = 'tfw';
let lab: Lab;
let configPath: string;
let control: string;
let daemon: ProcessHandle;

const connectOutcome = async (from: string, host: string, port: number, timeoutMs = 1000) =>
  (await lab.probe(from, ['connect', host, String(port)], timeoutMs)).trim();

const status = () => controlCall(control, 'status') as Promise<NodeStatus>;


/** An nft counter's packet count, by the comment of its rule, in a node's fwlb table. */
async function counter(node: string, chain: string, comment: string): Promise<number> {
  const out = await lab.exec(node, ['nft', 'list', 'chain', 'inet', 'fwlb', chain]);
  const line = out.split('\n').find((l) => l.includes(`comment "${comment}"`));
  const m = line && /counter packets (\d+)/.exec(line);
  assert.ok(m, `no counter "${comment}" in chain ${chain}:\n${out}`);
  return Number(m[1]);
}

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'single', vipsOn: 'fw1' });
  configPath = `${lab.stateDir}/cluster.yaml`;
  control = `${lab.stateDir}/fw1.sock`;
  await copyFile(`${repo}examples/lab.yaml`, configPath);
  daemon = await lab.startDaemon('fw1', ['run', '-c', configPath, '--node', 'fw1', '--control', control]);
  await waitFor('the daemon to answer status', async () => (await status()).ruleset.digest);
});

after(async () => {
  await labDown(PREFIX);
});

test('fwlb status answers over the control socket, as JSON from the CLI too', async () => {
  const st = await status();
  assert.equal(st.node, 'fw1');
  assert.equal(st.cluster, 'lab');
  assert.equal(st.services.length, 3);
  const cli = await lab.exec('fw1', [process.execPath, `${repo}dist/src/cli/main.js`, 'status', '--json', '--control', control]);
  assert.equal((JSON.parse(cli) as NodeStatus).ruleset.digest, st.ruleset.digest);
  const table = await lab.exec('fw1', ['nft', 'list', 'table', 'inet', 'fwlb']);
  assert.match(table, /policy drop/);
});

test('an allowed service is reachable through the node (DNAT to a backend), and an allowed forward port', async () => {
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const body = await lab.probe('client1', ['http', 'http://198.18.0.100/']);
    const m = /^(web\d) 198\.18\.0\.10:\d+\n$/.exec(body);
    assert.ok(m, `unexpected answer ${JSON.stringify(body)}`);
    seen.add(m[1]!);
  }
  assert.deepEqual([...seen].sort(), ['web1', 'web2'], 'round robin reaches both backends');
  assert.equal(await lab.probe('client1', ['echo', '198.18.1.11', '7', 'hello\n']), 'hello\n');
});

test('a denied port is dropped: no RST, no ICMP error, nothing comes back', async () => {
  // web1 listens on 8 (whoami), but no rule allows it from outside.
  assert.equal(await connectOutcome('client1', '198.18.1.11', 8, 1500), 'timeout');
  // To the firewall itself: port 80 on fw1's own address has no service and no rule.
  assert.equal(await connectOutcome('client1', '198.18.0.2', 80), 'timeout');
  // The probe does tell a RST apart: from inside the lab, a closed port on web1 refuses.
  assert.equal(await connectOutcome('web2', '198.18.1.11', 9), 'refused');
});

test('a stray TCP ACK that belongs to no connection is dropped before it reaches a server', async () => {
  // Watch for it on web1: count ACKs from the client's port there.
  await lab.exec('web1', ['nft', 'add table ip watch; add chain ip watch in { type filter hook prerouting priority -300; }; add rule ip watch in tcp sport 40404 counter']);
  const before = await counter('fw1', 'forward', 'new TCP without SYN');
  // Port 7 on web1 is allowed from outside: only the SYN rule stands in the way.
  await lab.exec('client1', [process.execPath, RAW_TCP_JS, '198.18.0.10', '198.18.1.11', '40404', '7', 'A']);
  await lab.exec('client1', [process.execPath, RAW_TCP_JS, '198.18.0.10', '198.18.0.100', '40404', '80', 'A']);
  await sleep(200);
  assert.equal((await counter('fw1', 'forward', 'new TCP without SYN')) - before, 2);
  const watch = await lab.exec('web1', ['nft', 'list', 'table', 'ip', 'watch']);
  assert.match(watch, /counter packets 0 /, `the stray ACK reached web1:\n${watch}`);
});

test('masquerade: a server going out is seen with the firewall\'s outside address', async () => {
  // client1 runs the whoami server too; web1 connects out through fw1.
  assert.match(await lab.probe('web1', ['read', '198.18.0.10', '8']), /^client1 198\.18\.0\.2:\d+\n$/);
});

test('re-apply, SIGHUP reload with a changed ruleset, and a bad reload keep an open TCP connection', async () => {
  const session = await lab.spawn('client1', [process.execPath, ECHO_SESSION_JS, '198.18.0.100', '7', '--every', '50', '--seconds', '4'], {
    log: `${lab.stateDir}/session.log`,
  });
  await sleep(500);
  const st0 = await status();

  // 1. The same config again through the control socket: nothing to change.
  const same = (await controlCall(control, 'reload', undefined, 30_000)) as { ok: boolean; changed: boolean };
  assert.deepEqual(same, { ok: true, changed: false });

  // 2. A changed config (one more rule) by SIGHUP: the table is replaced in one transaction.
  const original = await readFile(configPath, 'utf8');
  await writeFile(configPath, original.replace('  rules:\n', '  rules:\n    - allow: { proto: tcp, port: 2222, from: outside, to: self }\n'));
  daemon.kill('SIGHUP');
  const st1 = await waitFor('the SIGHUP reload', async () => {
    const s = await status();
    return s.ruleset.digest !== st0.ruleset.digest ? s : undefined;
  });
  assert.equal(st1.reloads.ok, st0.reloads.ok + 2);
  assert.match(await lab.exec('fw1', ['nft', 'list', 'chain', 'inet', 'fwlb', 'input']), /tcp dport 2222/);

  // 3. A broken config by SIGHUP: refused, the running ruleset stays.
  await writeFile(configPath, original.replace('priority: 200', 'priority: 999'));
  daemon.kill('SIGHUP');
  const st2 = await waitFor('the failed reload', async () => {
    const s = await status();
    return s.reloads.failed > st1.reloads.failed ? s : undefined;
  });
  assert.equal(st2.ruleset.digest, st1.ruleset.digest);
  assert.match(st2.reloads.lastError ?? '', /nodes\.fw1\.priority/);
  await writeFile(configPath, original);

  const exit = await session.wait(10_000);
  assert.equal(exit.code, 0);
  const out = JSON.parse((await readFile(`${lab.stateDir}/session.log`, 'utf8')).trim().split('\n').pop()!) as {
    connected: boolean; sent: number; echoed: number; mismatches: number; maxGapMs: number; error: string | null;
  };
  assert.ok(out.connected);
  assert.equal(out.error, null);
  assert.ok(out.sent >= 40, `only ${out.sent} lines sent`);
  assert.equal(out.echoed, out.sent, 'every line came back');
  assert.equal(out.mismatches, 0);
});

test('SIGTERM stops the node cleanly and leaves the ruleset in the kernel', async () => {
  const exit = await lab.gracefulStop('fw1');
  assert.equal(exit.code, 0);
  const table = await lab.exec('fw1', ['nft', 'list', 'table', 'inet', 'fwlb']);
  assert.match(table, /chain forward/);
  assert.match(await lab.probe('client1', ['http', 'http://198.18.0.100/']), /^web\d /, 'the kernel forwards on without the daemon');
});
