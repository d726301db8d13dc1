import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFailpoints } from './failpoints.js';

test('no failpoints: nothing fails', () => {
  const f = parseFailpoints(undefined);
  assert.equal(f('vrrp.prepare'), false);
  assert.equal(parseFailpoints('')('vrrp.prepare'), false);
});

test('NAME fails every time; NAME@N from the Nth time on; other names never', () => {
  const f = parseFailpoints('vrrp.prepare@2, other');
  assert.deepEqual([f('vrrp.prepare'), f('vrrp.prepare'), f('vrrp.prepare')], [false, true, true]);
  assert.deepEqual([f('other'), f('other')], [true, true]);
  assert.equal(f('unknown'), false);
});

test('NAME#N fails the Nth time only', () => {
  const f = parseFailpoints('vrrp.commit#2');
  assert.deepEqual([1, 2, 3, 4].map(() => f('vrrp.commit')), [false, true, false, false]);
});

test('a malformed entry is refused, naming it', () => {
  assert.throws(() => parseFailpoints('vrrp.commit#0'), /"vrrp.commit#0"/);
  assert.throws(() => parseFailpoints('vrrp.prepare@0'), /"vrrp.prepare@0"/);
  assert.throws(() => parseFailpoints('Bad Name'), /"Bad Name"/);
});
