/**
 * The state sync's writer against a kernel-like table (no root): what a record does to an
 * entry our kernel already holds. The table answers as ctnetlink does: a create of an entry
 * that exists is EEXIST; an update in place that would clear SEEN_REPLY or ASSURED is EBUSY
 * (ctnetlink_change_status); a delete removes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { entryToBodyV2, rawToEntry } from '../codec/sync/entry-v2.js';
import { IPS_ASSURED, IPS_CONFIRMED, IPS_DST_NAT, IPS_SEEN_REPLY, type ConntrackEntry, type CtWriteOp, type RawCtEntry } from '../codec/netlink/ctnetlink.js';
import { FakeClock } from '../lib/clock.js';
import { SyncWriter } from './sync-writer.js';
import type { SyncCounter } from './sync-types.js';

const STICKY = IPS_SEEN_REPLY | IPS_ASSURED;

class KernelTable {
  readonly table = new Map<string, ConntrackEntry>();
  readonly ops: CtWriteOp[] = [];
  writeBatch(writes: readonly { op: CtWriteOp; entry: RawCtEntry }[]): (string | undefined)[] {
    return writes.map(({ op, entry: raw }) => {
      this.ops.push(op);
      const e = rawToEntry(raw);
      const k = JSON.stringify(e.orig);
      const had = this.table.get(k);
      if (op === 'delete') return had && this.table.delete(k) ? undefined : 'ENOENT';
      if (op === 'create') {
        if (had) return 'EEXIST';
        this.table.set(k, e);
        return undefined;
      }
      if (!had) return 'ENOENT';
      if ((had.status ?? 0) & STICKY & ~(e.status ?? 0)) return 'EBUSY';
      this.table.set(k, { ...had, ...e });
      return undefined;
    });
  }
}

function flow(status: number, state: 'SYN_SENT' | 'ESTABLISHED'): ConntrackEntry {
  return {
    family: 4,
    orig: { src: '198.18.0.10', dst: '198.18.0.100', proto: 6, srcPort: 40000, dstPort: 7 },
    reply: { src: '198.18.1.12', dst: '198.18.0.10', proto: 6, srcPort: 7, dstPort: 40000 },
    status: status | IPS_CONFIRMED | IPS_DST_NAT,
    timeout: state === 'SYN_SENT' ? 120 : 432000,
    mark: 981,
    tcp: { state },
  };
}

function writer(sharing: boolean) {
  const kernel = new KernelTable();
  const counts = new Map<SyncCounter, number>();
  const w = new SyncWriter({
    clock: new FakeClock(0),
    log: pino({ level: 'silent' }),
    ct: kernel,
    running: () => true,
    count: (c, by = 1) => counts.set(c, (counts.get(c) ?? 0) + by),
    drop: () => undefined,
    onRoom: () => undefined,
    ...(sharing ? { sharing: true } : {}),
  });
  return { kernel, counts, w };
}

const established = flow(STICKY, 'ESTABLISHED');
const synSent = flow(0, 'SYN_SENT');
const only = (k: KernelTable) => [...k.table.values()][0]!;

test('regression (issue 20, seed 21548): under sharing a record older than our entry (it would clear SEEN_REPLY and ASSURED) leaves the entry as it is', async () => {
  const { kernel, counts, w } = writer(true);
  kernel.table.set(JSON.stringify(established.orig), established);
  w.accept([{ type: 'ct_update', body: entryToBodyV2(synSent) }]);
  await w.writtenUpTo(1);
  assert.equal(only(kernel).tcp?.state, 'ESTABLISHED', 'the entry was set back to SYN_SENT: every later packet of the flow is INVALID on this node');
  assert.equal(only(kernel).status! & STICKY, STICKY);
  assert.equal(counts.get('records_stale_kept'), 1);
  assert.deepEqual(kernel.ops, ['create', 'update'], 'no delete: the entry is never replaced');
  assert.equal(w.applyErrors, 0);
});

test('under sharing a newer record of an entry we hold (more status bits) is written in place', async () => {
  const { kernel, counts, w } = writer(true);
  kernel.table.set(JSON.stringify(synSent.orig), synSent);
  w.accept([{ type: 'ct_update', body: entryToBodyV2(established) }]);
  await w.writtenUpTo(1);
  assert.equal(only(kernel).tcp?.state, 'ESTABLISHED');
  assert.equal(counts.get('records_stale_kept'), undefined);
  assert.equal(counts.get('records_applied'), 1);
});

test('active-standby (one speaker, records in order): a record the kernel will not apply in place replaces the entry, as before', async () => {
  const { kernel, counts, w } = writer(false);
  kernel.table.set(JSON.stringify(established.orig), established);
  w.accept([{ type: 'ct_update', body: entryToBodyV2(synSent) }]);
  await w.writtenUpTo(1);
  assert.equal(only(kernel).tcp?.state, 'SYN_SENT');
  assert.equal(counts.get('updates_replaced'), 1);
  assert.deepEqual(kernel.ops, ['create', 'update', 'delete', 'create']);
});

test('the write backlog: records waiting for the kernel and the age of the oldest; the BEATs learn since when', async () => {
  const kernel = new KernelTable();
  const clock = new FakeClock(5000);
  const since: (number | undefined)[] = [];
  const w = new SyncWriter({ clock, log: pino({ level: 'silent' }), ct: kernel, running: () => true, count: () => undefined, drop: () => undefined, onRoom: () => undefined, onBacklog: (at) => void since.push(at) });
  assert.deepEqual(w.backlog(), { records: 0, oldestMs: 0 });
  w.accept([{ type: 'ct_update', body: entryToBodyV2(established) }]);
  clock.advance(30);
  assert.deepEqual(w.backlog(), { records: 1, oldestMs: 30 });
  await w.writtenUpTo(1);
  assert.deepEqual(w.backlog(), { records: 0, oldestMs: 0 });
  assert.deepEqual(since, [5000, undefined]);
});
