/**
 * The daemon under systemd's notify protocol (root; issue 23): this test stands in for
 * systemd on a Unix datagram socket (src/lab/sd-listen.ts) and gives the daemon
 * NOTIFY_SOCKET and WATCHDOG_USEC, as systemd does for a Type=notify unit with WatchdogSec.
 * It checks the messages and their order: READY=1 only once the node says it is ready; the
 * watchdog fed at half its period; around a reload of a large config (1,000 more rules),
 * RELOADING=1 with a MONOTONIC_USEC taken when the reload began, then READY=1 once it is
 * applied; a refused reload ends in READY=1 too, saying so; STOPPING=1 at the graceful stop,
 * then nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { CLI_MAIN_JS, REPO_ROOT } from '../src/lab/paths.js';
import { GC_FLAG } from '../src/adapters/reexec.js';
import { listenNotify, type NotifyMessage } from '../src/lab/sd-listen.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tsd1';
const WATCHDOG_USEC = 1_000_000;
let lab: Lab;
let config: string;

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  config = await writeSyncedCluster(lab, await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8'));
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

const monotonicUsec = () => process.hrtime.bigint() / 1000n;
const first = (ms: readonly NotifyMessage[], key: string, from = 0) => ms.findIndex((m, i) => i >= from && m.fields[key] !== undefined);

test('Type=notify: READY=1 when ready, the watchdog fed, RELOADING=1 / READY=1 around a large reload and a refused one, STOPPING=1 at the stop', async () => {
  const sock = `${lab.stateDir}/notify.sock`;
  const sd = listenNotify(sock);
  try {
    const control = `${lab.stateDir}/fw1.sock`;
    const status = () => controlCall(control, 'status') as Promise<NodeStatus>;
    const daemon = lab.startDaemon('fw1', ['run', '-c', config, '--node', 'fw1', '--control', control], { env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(WATCHDOG_USEC) } });

    // READY=1 once the node is ready, and not before: when it arrives, the node says so too.
    const ri = await waitFor('READY=1', async () => {
      const i = first(sd.messages, 'READY');
      return i >= 0 ? i : undefined;
    }, 30_000);
    assert.equal((await status()).ready.ready, true, 'the node is ready when systemd hears it');
    assert.match(sd.messages[ri]!.fields.STATUS ?? '', /^ready/, sd.messages[ri]!.text);
    for (const m of sd.messages.slice(0, ri)) assert.doesNotMatch(m.fields.STATUS ?? '', /^ready/, `a status before READY=1 said ready: ${m.text}`);

    // The watchdog: every half period, from the main loop.
    const w0 = sd.messages.filter((m) => m.fields.WATCHDOG === '1').length;
    await sleep(2600);
    const fed = sd.messages.filter((m) => m.fields.WATCHDOG === '1').length - w0;
    assert.ok(fed >= 4 && fed <= 7, `WATCHDOG=1 ${fed} times in 2.6 s with WATCHDOG_USEC=${WATCHDOG_USEC}`);

    // A reload of a large config: 1,000 more rules.
    const base = await readFile(config, 'utf8');
    const rules = Array.from({ length: 1000 }, (_, i) => `    - allow: { proto: tcp, port: ${10_000 + i}, from: 198.18.0.0/24, to: 198.18.1.${(i % 250) + 1} }\n`).join('');
    assert.ok(base.includes('  rules:\n'));
    await writeFile(config, base.replace('  rules:\n', `  rules:\n${rules}`));
    const reloads0 = (await status()).reloads.ok;
    let from = sd.messages.length;
    const t0 = monotonicUsec();
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor('the reload applied', async () => ((await status()).reloads.ok > reloads0 ? true : undefined), 30_000);
    const t1 = monotonicUsec();
    const rl = await waitFor('RELOADING=1', async () => (first(sd.messages, 'RELOADING', from) >= 0 ? first(sd.messages, 'RELOADING', from) : undefined), 2000);
    const rd = await waitFor('READY=1 after it', async () => (first(sd.messages, 'READY', rl) >= 0 ? first(sd.messages, 'READY', rl) : undefined), 2000);
    const at = BigInt(sd.messages[rl]!.fields.MONOTONIC_USEC ?? '0');
    assert.ok(at >= t0 && at <= t1, `MONOTONIC_USEC ${at} is when the reload began (between ${t0} and ${t1}: CLOCK_MONOTONIC)`);
    assert.match(sd.messages[rd]!.fields.STATUS ?? '', /^reloaded, ruleset updated; ready/, sd.messages[rd]!.text);
    assert.equal(sd.messages.slice(from, rd + 1).filter((m) => m.fields.READY).length, 1, 'one READY=1 per reload');

    // A refused reload: READY=1 all the same (the running config stays), saying why.
    await writeFile(config, base.replace('  rules:\n', '  rules:\n    - allow: { proto: tcp, port: 99999, from: outside, to: inside }\n'));
    from = sd.messages.length;
    const failed0 = (await status()).reloads.failed;
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor('the reload refused', async () => ((await status()).reloads.failed > failed0 ? true : undefined), 10_000);
    const rl2 = await waitFor('RELOADING=1', async () => (first(sd.messages, 'RELOADING', from) >= 0 ? first(sd.messages, 'RELOADING', from) : undefined), 2000);
    const rd2 = await waitFor('READY=1 after the refusal', async () => (first(sd.messages, 'READY', rl2) >= 0 ? first(sd.messages, 'READY', rl2) : undefined), 2000);
    assert.match(sd.messages[rd2]!.fields.STATUS ?? '', /^reload refused, the running config stays: .*port/, sd.messages[rd2]!.text);
    await writeFile(config, base);

    // The graceful stop: STOPPING=1, and the status says it hands over.
    from = sd.messages.length;
    await lab.gracefulStop('fw1');
    await sleep(100);
    const st = first(sd.messages, 'STOPPING', from);
    assert.ok(st >= 0, 'STOPPING=1 at the graceful stop');
    assert.match(sd.messages[st]!.fields.STATUS ?? '', /^stopping \(SIGTERM\)/);
    assert.ok(sd.messages.slice(st + 1).every((m) => m.fields.READY === undefined && m.fields.RELOADING === undefined), 'nothing but the watchdog after STOPPING=1');
  } finally {
    sd.close();
  }
});

/**
 * The unit's CapabilityBoundingSet, proved: root with only CAP_NET_ADMIN, CAP_NET_RAW and
 * CAP_SYS_NICE (setpriv's bounding set, what systemd applies) runs a node that becomes master
 * and holds its VIP, its advert thread real-time; without CAP_SYS_NICE the threads that keep
 * time cannot be real-time (and status says so).
 */
test('capabilities: CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_NICE are enough; CAP_SYS_NICE is what makes the advert thread real-time', async () => {
  const control = `${lab.stateDir}/fw1.sock`;
  const status = () => controlCall(control, 'status') as Promise<NodeStatus>;
  for (const caps of [['net_admin', 'net_raw', 'sys_nice'], ['net_admin', 'net_raw']]) {
    const argv = ['setpriv', '--bounding-set', ['-all', ...caps.map((c) => `+${c}`)].join(','), process.execPath, GC_FLAG, CLI_MAIN_JS, 'run', '-c', config, '--node', 'fw1', '--control', control];
    const h = lab.spawn('fw1', argv, { log: `${lab.stateDir}/fw1-caps-${caps.length}.log`, kind: 'daemon' });
    try {
      await waitFor('fw1 ready and master', async () => {
        const s = await status().catch(() => undefined);
        return s?.ready.ready && s.vrrp.groups[0]?.state === 'master' ? s : undefined;
      }, 30_000);
      const eff = /^CapEff:\s+([0-9a-f]+)$/m.exec(await readFile(`/proc/${h.pid}/status`, 'utf8'))?.[1];
      const want = caps.reduce((m, c) => m | (1n << BigInt({ net_admin: 12, net_raw: 13, sys_nice: 23 }[c]!)), 0n);
      assert.equal(BigInt(`0x${eff}`), want, `the daemon's effective capabilities are exactly ${caps.join(', ')}`);
      const addrs = await lab.exec('fw1', ['ip', '-4', 'addr', 'show', 'dev', 'eth0']);
      assert.match(addrs, /198\.18\.0\.100\//, 'it holds its VIP');
      const adverts = await waitFor('the advert thread reporting', async () => (await status()).vrrp.adverts ?? undefined, 5000);
      assert.equal(adverts.realtime, caps.includes('sys_nice'), `advert thread real-time with ${caps.join(', ')}`);
      const log = await readFile(`${lab.stateDir}/fw1-caps-${caps.length}.log`, 'utf8');
      if (caps.length === 3) assert.doesNotMatch(log, /neigh_retrans_failed|EPERM|EACCES/, 'nothing refused for want of a capability (the neighbour sysctls included)');
    } finally {
      await lab.gracefulStop('fw1');
    }
  }
});
