/**
 * The state sync service between two nodes on a fake clock, without root: the real codec and
 * machines, an in-test lossy network, and an in-memory conntrack table per node. What it
 * proves: with every timer firing early (as real timers do by a fraction of a millisecond)
 * or late, and with loss in both directions, no link stalls: hellos keep going, every
 * record reaches the peer, the sender's window drains.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { deriveSyncKey, encode } from '../codec/sync/message.js';
import { OFF_SENDER } from '../codec/sync/constants.js';
import type { ConntrackEntry, CtWriteOp, RawCtEntry } from '../codec/netlink/ctnetlink.js';
import { entryToBodyV2, rawToEntry } from '../codec/sync/entry-v2.js';
import { FakeClock } from '../lib/clock.js';
import { StateSyncService } from './state-sync.js';
import { seededRandom } from '../lib/random.js';
import type { ConntrackStore, CtRecordEvent } from '../ports/sync.js';

type CtEvent = { kind: 'new' | 'update' | 'destroy'; entry: ConntrackEntry; self: boolean } | { kind: 'lost' };
type RecordListener = (e: CtRecordEvent | { kind: 'lost' }) => void;

class MemoryConntrack implements ConntrackStore {
  readonly table = new Map<string, ConntrackEntry>();
  /** Creates the kernel refuses from now on (as ENOMEM: a table full), counted down. */
  refuseCreates = 0;
  /**
   * Flows (by original tuple) whose entry the kernel keeps as its own: an update of it is
   * refused (EBUSY), a delete removes it and the kernel makes it again at once (its traffic),
   * so a create after the delete finds it (EEXIST).
   */
  readonly ownedByKernel = new Set<string>();
  private listeners: RecordListener[] = [];
  async dumpStream(onBatch: (entries: ConntrackEntry[]) => void | 'stop' | Promise<void | 'stop'>): Promise<number> {
    const all = [...this.table.values()];
    let n = 0;
    for (let i = 0; i < all.length; i += 100) {
      const batch = all.slice(i, i + 100);
      n += batch.length;
      if ((await onBatch(batch)) === 'stop') break;
    }
    return n;
  }
  async dumpRecords(onBatch: (records: { body: Uint8Array; mark: number | undefined }[]) => void | 'stop' | Promise<void | 'stop'>): Promise<number> {
    return this.dumpStream((entries) => onBatch(entries.map((e) => ({ body: entryToBodyV2(e), mark: e.mark }))));
  }
  async count(): Promise<number> {
    return this.table.size;
  }
  /** Every write asked for, with the liberal flag it asked. */
  readonly log: { op: CtWriteOp; proto: number; liberal: boolean }[] = [];
  /** As the kernel does it (the outcomes of ctnetlink writes), in order, at once. */
  writeBatch(writes: readonly { op: CtWriteOp; entry: RawCtEntry }[], opts: { beLiberal?: boolean } = {}): (string | undefined)[] {
    return writes.map(({ op, entry: raw }) => {
      this.log.push({ op, proto: raw.orig.proto, liberal: opts.beLiberal ?? true });
      const entry = rawToEntry(raw);
      const k = JSON.stringify(entry.orig);
      const had = this.table.get(k);
      if (op === 'delete') {
        if (!had) return 'ENOENT';
        if (this.ownedByKernel.has(k)) return undefined; // gone, and made again by the kernel
        this.table.delete(k);
        this.emit({ kind: 'destroy', entry: had, self: true });
        return undefined;
      }
      if (op === 'create' && had) return 'EEXIST';
      if (op === 'create' && this.refuseCreates > 0) {
        this.refuseCreates--;
        return 'ENOMEM';
      }
      if (op === 'update' && !had) return 'ENOENT';
      if (op === 'update' && this.ownedByKernel.has(k)) return 'EBUSY';
      this.table.set(k, entry);
      this.emit({ kind: op === 'create' ? 'new' : 'update', entry, self: true });
      return undefined;
    });
  }
  onRecord(cb: RecordListener): () => void {
    this.listeners.push(cb);
    return () => (this.listeners = this.listeners.filter((l) => l !== cb));
  }
  /** Traffic through this node: a new flow, as the kernel reports it. */
  flow(i: number): void {
    const entry: ConntrackEntry = {
      family: 4,
      orig: { src: '198.18.0.10', dst: '198.18.0.100', proto: 6, srcPort: 10000 + i, dstPort: 80 },
      reply: { src: '198.18.1.11', dst: '198.18.0.10', proto: 6, srcPort: 80, dstPort: 10000 + i },
      status: 0x18e,
      timeout: 432000,
    };
    this.table.set(JSON.stringify(entry.orig), entry);
    this.emit({ kind: 'new', entry, self: false });
  }
  /** The kernel's event queue overflowed (ENOBUFS): events were lost. */
  lost(): void {
    this.emit({ kind: 'lost' });
  }
  /** As the adapter gives them: each event as its record (the encoder the adapter's transcoder matches). */
  private emit(e: CtEvent): void {
    const r = e.kind === 'lost' ? e : { kind: e.kind, body: entryToBodyV2(e.entry), mark: e.entry.mark, self: e.self };
    for (const l of this.listeners) l(r);
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

async function pair(opts: { offset: (n: number) => number; loss: number; seed: number }) {
  /** Directions cut by hand: "0>1" drops everything node 0 sends to node 1. */
  const cut = new Set<string>();
  const clock = new FakeClock(1_000_000.123);
  clock.setFireOffset(opts.offset);
  const random = seededRandom(opts.seed);
  const key = deriveSyncKey(Buffer.alloc(32, 7));
  const log = pino({ level: process.env.SYNC_TEST_LOG ?? 'silent' });
  const addr: [string, string] = ['198.18.2.1', '198.18.2.2'];
  const rx = new Map<string, (b: Buffer, from: string) => void>();
  let sent = 0;
  let lost = 0;
  const nodes = ([0, 1] as const).map((i) => {
    const ct = new MemoryConntrack();
    const svc = new StateSyncService({
      clock,
      log,
      key,
      selfId: i,
      epoch: 1000 + i,
      peers: [{ name: `fw${2 - i}`, id: 1 - i, address: addr[i === 0 ? 1 : 0] }],
      ct,
      transport: (onDatagram) => {
        rx.set(addr[i], onDatagram);
        return {
          send: (b, to) => {
            sent++;
            if (cut.has(`${i}>${1 - i}`) || random() < opts.loss) {
              lost++;
              return;
            }
            const copy = Buffer.from(b);
            clock.after(1, () => rx.get(to)?.(copy, addr[i]));
          },
          close: () => rx.delete(addr[i]),
        };
      },
      owns: () => i === 0,
      demote: () => undefined,
    });
    return { ct, svc };
  });
  const run = async (ms: number, step = 5) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await tick();
    }
  };
  return { clock, nodes, run, cut, stats: () => ({ sent, lost }) };
}

for (const [name, offset] of [
  ['every timer fires 0.5 ms early', () => -0.5],
  ['timers fire early and late at random', (n: number) => ((n * 7919) % 13) / 10 - 0.9],
] as const) {
  test(`state sync with 10% loss both ways: ${name}; no link stalls, every record arrives`, async () => {
    const { nodes, run, stats } = await pair({ offset, loss: 0.1, seed: 42 });
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    a.svc.start();
    b.svc.start();
    await run(3000);
    // 600 flows over 60 s of fake time, then 20 s of nothing: keepalives alone must go on.
    for (let i = 0; i < 600; i++) {
      a.ct.flow(i);
      await run(100, 10);
    }
    await run(20_000, 20);
    const sa = a.svc.status();
    const sb = b.svc.status();
    assert.equal(b.ct.table.size, 600, `backup holds ${b.ct.table.size} of 600 (${JSON.stringify(sa.peers[0])})`);
    assert.equal(sa.peers[0]!.alive, true, 'the master still hears the backup');
    assert.equal(sb.peers[0]!.alive, true, 'the backup still hears the master (its hellos never stopped)');
    assert.equal(sa.peers[0]!.inFlight, 0, 'the sender window drained');
    assert.equal(sa.peers[0]!.queuedMessages, 0);
    assert.ok(stats().lost > 50, `loss was injected (${stats().lost} of ${stats().sent})`);
    await a.svc.stop();
    await b.svc.stop();
  });
}

test('regression (f4fe77a): a second whole-table push while one is under way (events lost mid bulk sync) does not stall the joining node', async () => {
  const { nodes, run } = await pair({ offset: () => 0, loss: 0, seed: 1 });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  for (let i = 0; i < 3000; i++) a.ct.flow(i);
  a.svc.start();
  await run(500);
  b.svc.start();
  // As soon as b receives the table, a's kernel reports lost events: a pushes its whole
  // table again (to every peer) while the first push is still going.
  for (let t = 0; t < 200 && b.svc.status().bulk.state !== 'receiving'; t++) await run(5, 1);
  assert.equal(b.svc.status().bulk.state, 'receiving', 'the first push is under way');
  a.ct.lost();
  await run(20_000, 10);
  const st = b.svc.status();
  assert.equal(st.bulk.complete, true, `b's bulk sync never completed: ${JSON.stringify(st.bulk)}`);
  assert.equal(st.counters.bulk_count_mismatch, 0);
  assert.equal(b.ct.table.size, 3000);
  assert.equal(a.svc.status().counters.bulk_pushes, 2);
  await a.svc.stop();
  await b.svc.stop();
});

test('a flood is dropped by the cheap checks before the HMAC: wrong source, wrong sender; forged datagrams count bad_hmac', async () => {
  const { nodes, run } = await pair({ offset: () => 0, loss: 0, seed: 3 });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  a.svc.start();
  b.svc.start();
  await run(2000);
  const before = a.svc.status();
  const key = deriveSyncKey(Buffer.alloc(32, 7));
  const hello = encode({ type: 'hello', sender: 1, receiver: 0, epoch: 1001, peerEpoch: 0, packet: 999_999, seq: 0, synced: true }, key);
  const deliver = (a.svc as unknown as { onDatagram: (b: Buffer, f: string) => void }).onDatagram.bind(a.svc);
  // From an address that is no peer's: dropped before anything is decoded.
  for (let i = 0; i < 100; i++) deliver(hello, '198.18.2.99');
  // From the peer's address, claiming another sender: dropped before the HMAC.
  const other = Buffer.from(hello);
  other.writeUInt16BE(7, OFF_SENDER);
  for (let i = 0; i < 100; i++) deliver(other, '198.18.2.2');
  // From the peer's address with its sender id and a bad HMAC: the HMAC refuses it.
  const forged = Buffer.from(hello);
  forged[forged.length - 1] = (forged[forged.length - 1] ?? 0) ^ 0xff;
  for (let i = 0; i < 100; i++) deliver(forged, '198.18.2.2');
  // Garbage from the peer's address: too short, or a bad magic.
  for (let i = 0; i < 100; i++) deliver(Buffer.alloc(i), '198.18.2.2');
  const after = a.svc.status();
  assert.equal(after.drops.unknown_peer - before.drops.unknown_peer, 200);
  assert.equal(after.drops.bad_hmac - before.drops.bad_hmac, 100);
  assert.equal(after.drops.too_short + after.drops.bad_magic - before.drops.too_short - before.drops.bad_magic, 100);
  assert.equal(after.peers[0]!.alive, true, 'the session goes on');
  await run(2000);
  assert.equal(a.svc.status().peers[0]!.alive, true);
  await a.svc.stop();
  await b.svc.stop();
});

test('regression (issue 20): the source of a bulk sync silent past the dead interval and back in the same session is asked again; the joining node never goes on alone with part of the table', async () => {
  const { nodes, run, cut } = await pair({ offset: () => 0, loss: 0, seed: 5 });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  for (let i = 0; i < 3000; i++) a.ct.flow(i);
  a.svc.start();
  await run(500);
  b.svc.start();
  for (let t = 0; t < 400 && b.svc.status().bulk.state !== 'receiving'; t++) await run(5, 1);
  assert.equal(b.svc.status().bulk.state, 'receiving', 'the transfer is under way');
  // a stalls for 2.5 s (nothing it sends arrives): b's link declares it dead (1.5 s).
  cut.add('0>1');
  const states = new Set<string>();
  for (let t = 0; t < 2500; t += 10) {
    await run(10, 10);
    states.add(b.svc.status().bulk.state);
  }
  assert.equal(b.svc.status().peers[0]!.alive, false, 'b saw a go silent');
  cut.delete('0>1');
  for (let t = 0; t < 20_000; t += 10) {
    await run(10, 10);
    states.add(b.svc.status().bulk.state);
  }
  const st = b.svc.status();
  assert.ok(!states.has('alone'), `b went on alone while its peer was only slow: ${[...states]}`);
  assert.equal(st.bulk.state, 'done', `b's bulk sync: ${JSON.stringify(st.bulk)}`);
  assert.equal(b.ct.table.size, 3000, 'b holds the whole table');
  await a.svc.stop();
  await b.svc.stop();
});

test('regression (issue 20): writes the kernel refuses during a bulk sync keep the table incomplete until an attempt is written whole; they are shown', async () => {
  const { nodes, run } = await pair({ offset: () => 0, loss: 0, seed: 6 });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  for (let i = 0; i < 500; i++) a.ct.flow(i);
  b.ct.refuseCreates = 25;
  a.svc.start();
  await run(500);
  b.svc.start();
  let sawRefused = 0;
  let completeWithHoles = false;
  for (let t = 0; t < 20_000; t += 10) {
    await run(10, 10);
    const st = b.svc.status();
    sawRefused = Math.max(sawRefused, st.bulk.refused);
    if (st.bulk.complete && b.ct.table.size < 500) completeWithHoles = true;
  }
  const st = b.svc.status();
  assert.equal(completeWithHoles, false, 'complete while the kernel lacked entries');
  assert.ok(st.applyErrors >= 25, `refused writes shown: ${st.applyErrors}`);
  assert.ok(sawRefused > 0, 'status showed the attempt\'s refused writes');
  assert.ok(st.counters.bulk_attempts_refused >= 1);
  assert.equal(st.bulk.state, 'done');
  assert.equal(b.ct.table.size, 500);
  await a.svc.stop();
  await b.svc.stop();
});

test('issue 20: leaving master, every TCP entry of our own table is rewritten liberal (UDP untouched); a second call while one runs joins it', async () => {
  const { nodes, run } = await pair({ offset: () => 0, loss: 0, seed: 8 });
  const [a] = nodes as [(typeof nodes)[0]];
  for (let i = 0; i < 250; i++) a.ct.flow(i);
  const udp: ConntrackEntry = { family: 4, orig: { src: '198.18.0.10', dst: '198.18.0.100', proto: 17, srcPort: 5353, dstPort: 7 }, reply: { src: '198.18.1.11', dst: '198.18.0.10', proto: 17, srcPort: 7, dstPort: 5353 }, status: 0x18e, timeout: 30 };
  a.ct.table.set(JSON.stringify(udp.orig), udp);
  a.svc.start();
  await run(100);
  a.ct.log.length = 0;
  const p1 = a.svc.loosenTable('left master');
  const p2 = a.svc.loosenTable('again');
  await Promise.all([p1, p2, run(50)]);
  const updates = a.ct.log.filter((w) => w.op === 'update');
  assert.equal(updates.length, 250, 'every TCP entry once');
  assert.ok(updates.every((w) => w.proto === 6 && w.liberal));
  assert.equal(a.svc.status().counters.entries_loosened, 250);
  await a.svc.stop();
});

test('issue 20: a record whose flow the kernel holds an entry of its own for (replaced, made again: EEXIST) is counted, not a hole: the bulk sync completes', async () => {
  const { nodes, run } = await pair({ offset: () => 0, loss: 0, seed: 9 });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  for (let i = 0; i < 50; i++) a.ct.flow(i);
  // b's kernel has its own entries for two of the flows, and keeps them.
  for (const i of [7, 31]) {
    const e = [...a.ct.table.values()].find((x) => x.orig.srcPort === 10000 + i)!;
    b.ct.table.set(JSON.stringify(e.orig), { ...e, status: 0x8 });
    b.ct.ownedByKernel.add(JSON.stringify(e.orig));
  }
  a.svc.start();
  await run(500);
  b.svc.start();
  await run(5000, 10);
  const st = b.svc.status();
  assert.equal(st.bulk.state, 'done', `bulk sync: ${st.bulk.text}`);
  assert.equal(st.applyErrors, 0);
  assert.ok(st.counters.replace_conflicts >= 2, `conflicts counted: ${st.counters.replace_conflicts}`);
  assert.equal(b.ct.table.size, 50);
  await a.svc.stop();
  await b.svc.stop();
});
