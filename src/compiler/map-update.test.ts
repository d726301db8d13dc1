import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapDelta, ownedSetScript } from './map-update.js';

const a = { name: 'a', address: '198.18.1.11', port: 80 };
const b = { name: 'b', address: '198.18.1.12', port: 80 };

test('map delta: only changed slots, deleted then added in one script', () => {
  const d = mapDelta('svc_web', [a, b, a, null], [a, a, null, b]);
  assert.equal(d.changed, 2);
  assert.equal(
    d.script,
    'delete element inet fwlb svc_web { 1, 2 }\nadd element inet fwlb svc_web { 1 : 198.18.1.11 . 80, 3 : 198.18.1.12 . 80 }\n',
  );
});

test('map delta: nothing to do gives an empty script; a fill from empty only adds', () => {
  assert.deepEqual(mapDelta('m', [a, b], [a, b]), { script: '', changed: 0 });
  assert.equal(mapDelta('m', [null, null], [a, b]).script, 'add element inet fwlb m { 0 : 198.18.1.11 . 80, 1 : 198.18.1.12 . 80 }\n');
  assert.equal(mapDelta('m', [a, b], [null, null]).script, 'delete element inet fwlb m { 0, 1 }\n');
});

test('owned buckets: removed then added by element in one script; a replace flushes and fills in one transaction', () => {
  assert.equal(ownedSetScript({ add: [4, 5], remove: [1] }), 'delete element inet fwlb shared_owned { 1 }\nadd element inet fwlb shared_owned { 4, 5 }\n');
  assert.equal(ownedSetScript({ add: [], remove: [] }), '');
  assert.equal(ownedSetScript({ replace: [2, 3] }), 'flush set inet fwlb shared_owned\nadd element inet fwlb shared_owned { 2, 3 }\n');
  assert.equal(ownedSetScript({ replace: [] }), 'flush set inet fwlb shared_owned\n');
});
