import { test } from 'node:test';
import assert from 'node:assert/strict';
import { comparePeer, judgePush, nextVersion, rollbackMeta, type RunningVersion } from './config-version.js';
import type { BundleMeta } from '../codec/config/bundle.js';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);
const cur: RunningVersion = { cluster: 'lab', version: 5, hash: H1, confirmed: true };
const meta = (over: Partial<BundleMeta>): BundleMeta => ({ cluster: 'lab', version: 6, hash: H2, origin: 'fw2', at: 1000, ...over });

test('the verdict on a pushed version: newer applies; older, the same again, the same number with other files, another cluster are refused, each with its reason', () => {
  const cases: [Partial<BundleMeta>, Partial<RunningVersion>, string][] = [
    [{}, {}, 'apply'],
    [{ version: 9 }, {}, 'apply'],
    [{ version: 4 }, {}, 'older'],
    [{ version: 5, hash: H1 }, {}, 'replayed'],
    [{ version: 5, hash: H2 }, {}, 'conflict'],
    [{ cluster: 'other' }, {}, 'other_cluster'],
    // A rollback of the running version: taken while its confirm waits, refused once it came.
    [{ rollbackOf: 5, origin: 'rollback' }, { confirmed: false }, 'apply'],
    [{ rollbackOf: 5, origin: 'rollback' }, { confirmed: true }, 'confirmed'],
    // A rollback of an older version reaching a node on a newer one: older.
    [{ version: 4, rollbackOf: 3 }, {}, 'older'],
  ];
  for (const [m, c, want] of cases) {
    const v = judgePush({ ...cur, ...c }, meta(m));
    assert.equal(v.apply ? 'apply' : v.reason, want, JSON.stringify({ m, c }));
    if (!v.apply) assert.ok(v.message.length > 10);
  }
});

test('a new version is numbered past every version known, ours and the peers\'', () => {
  assert.equal(nextVersion(0, []), 1);
  assert.equal(nextVersion(3, [undefined, 7, 2]), 8);
  assert.equal(nextVersion(9, [7]), 10);
});

test('a rollback is the same on every node that makes it: the next number, the files before, a time from the version itself', () => {
  const applied = meta({ confirmMs: 60_000, previousHash: H1 });
  const a = rollbackMeta(applied);
  const b = rollbackMeta({ ...applied });
  assert.deepEqual(a, b);
  assert.deepEqual(a, { cluster: 'lab', version: 7, hash: H1, origin: 'rollback', at: 61_000, rollbackOf: 6 });
  assert.equal(rollbackMeta(meta({})), undefined, 'no confirm asked: nothing to roll back to');
});

test("a peer's version against ours", () => {
  assert.equal(comparePeer({ version: 5, hash: H1 }, undefined), 'unknown');
  assert.equal(comparePeer({ version: 5, hash: H1 }, { version: 4, hash: H1 }), 'behind');
  assert.equal(comparePeer({ version: 5, hash: H1 }, { version: 6, hash: H1 }), 'ahead');
  assert.equal(comparePeer({ version: 5, hash: H1 }, { version: 5, hash: H1 }), 'same');
  assert.equal(comparePeer({ version: 5, hash: H1 }, { version: 5, hash: H2 }), 'differs');
});
