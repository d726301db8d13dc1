/**
 * What a wakeup costs on this machine (issue 25: the idle cost is mostly wakeups), no lab:
 * the CPU time (user + system, process.cpuUsage) per wakeup of a Node timer every 15 ms (the
 * BEAT interval) doing nothing, and doing one BEAT's encode and decode (codec/sync/message.ts,
 * HMAC included), beside the same encode and decode back to back (hot caches). An idle
 * node's floor is its wakeups a second times the first figure; the peer (keepalived +
 * conntrackd) wakes about 17 times a second.
 *
 *   node dist/bench/wakeup.js [--seconds 5]
 *
 * Prints figures; never asserts. Run it on an otherwise idle machine.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { decode, deriveSyncKey, encode, type SyncMessage } from '../src/codec/sync/message.js';
import { table } from './util.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' } } });
const MS = Number(values.seconds) * 1000;
const key = deriveSyncKey(Buffer.alloc(32, 7));
const beat = (packet: number): SyncMessage => ({ type: 'beat', sender: 0, receiver: 1, epoch: 12345, peerEpoch: 6789, packet, seq: packet, intervalMs: 15, multiplier: 5, instances: [{ vrid: 51, state: 'master', priority: 200 }, { vrid: 52, state: 'master', priority: 200 }], leaving: false, ready: true, lagMs: 0, behind: false, writing: false });
const cpuUs = (c: NodeJS.CpuUsage) => c.user + c.system;

/** CPU per wakeup of a 15 ms timer loop running `work` for MS. */
async function loop(work: (i: number) => void): Promise<{ wakeups: number; usPerWakeup: number }> {
  let n = 0;
  const c0 = process.cpuUsage();
  const end = performance.now() + MS;
  while (performance.now() < end) {
    await sleep(15);
    work(++n);
  }
  return { wakeups: n, usPerWakeup: cpuUs(process.cpuUsage(c0)) / n };
}

async function main(): Promise<void> {
  // Warm: the JIT has compiled the codec before anything is timed.
  for (let i = 1; i <= 5000; i++) decode(encode(beat(i), key), key);
  // The process's CPU counts every thread: a second for the background compiles and the GC
  // of the warm-up to finish, and each loop twice, the lower taken.
  await sleep(1000);
  const best = async (work: (i: number) => void) => [await loop(work), await loop(work)].sort((a, b) => a.usPerWakeup - b.usPerWakeup)[0]!;
  const bare = await best(() => undefined);
  const cold = await best((i) => void decode(encode(beat(i), key), key));
  const N = 50_000;
  const c0 = process.cpuUsage();
  for (let i = 1; i <= N; i++) decode(encode(beat(i), key), key);
  const hot = cpuUs(process.cpuUsage(c0)) / N;
  console.log(`What a wakeup costs (node ${process.version}), the better of two ${MS / 1000} s loops, CPU time of the process per wakeup`);
  console.log(table(['loop', 'wakeups', 'CPU us each'], [
    ['a timer every 15 ms, no work', String(bare.wakeups), bare.usPerWakeup.toFixed(1)],
    ['a timer every 15 ms, one BEAT encoded and decoded', String(cold.wakeups), cold.usPerWakeup.toFixed(1)],
    ['one BEAT encoded and decoded, back to back', String(N), hot.toFixed(1)],
  ]));
}

await main();
