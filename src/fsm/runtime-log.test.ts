import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendCommand, pruneCommands, RuntimeDocSchema, type RuntimeCommand } from './runtime-log.js';

const build = (cs: RuntimeCommand[]) => cs.reduce<RuntimeCommand[]>((log, c) => appendCommand(log, c), []);

test('the log keeps the last word per backend and kind, in the order they were made', () => {
  const log = build([
    { op: 'drain', service: 'web', backend: 'web1' },
    { op: 'weight', service: 'web', backend: 'web1', weight: 5 },
    { op: 'disable', service: 'web', backend: 'web2' },
    { op: 'enable', service: 'web', backend: 'web1' },
    { op: 'weight', service: 'web', backend: 'web1', weight: 7 },
  ]);
  assert.deepEqual(log, [
    { op: 'disable', service: 'web', backend: 'web2' },
    { op: 'enable', service: 'web', backend: 'web1' },
    { op: 'weight', service: 'web', backend: 'web1', weight: 7 },
  ]);
});

test('a runtime-added backend removed is gone from the log; a configured one removed stays removed; an add starts afresh', () => {
  const added = build([
    { op: 'add', service: 'web', backend: 'web9', address: '198.18.1.19', port: 80 },
    { op: 'drain', service: 'web', backend: 'web9' },
    { op: 'remove', service: 'web', backend: 'web9' },
  ]);
  assert.deepEqual(added, []);
  assert.deepEqual(build([{ op: 'drain', service: 'web', backend: 'web1' }, { op: 'remove', service: 'web', backend: 'web1' }]), [{ op: 'remove', service: 'web', backend: 'web1' }]);
  assert.deepEqual(build([{ op: 'weight', service: 'web', backend: 'x', weight: 3 }, { op: 'add', service: 'web', backend: 'x', address: '198.18.1.20' }]), [{ op: 'add', service: 'web', backend: 'x', address: '198.18.1.20' }]);
});

test('maintenance: on is kept, off is the same as never', () => {
  assert.deepEqual(build([{ op: 'maintenance', on: true }]), [{ op: 'maintenance', on: true }]);
  assert.deepEqual(build([{ op: 'maintenance', on: true }, { op: 'maintenance', on: false }]), []);
});

test('pruned to the backends a reload left their runtime words; the schema refuses what is not a command', () => {
  const log = build([{ op: 'drain', service: 'web', backend: 'web1' }, { op: 'drain', service: 'api', backend: 'a1' }, { op: 'maintenance', on: true }]);
  assert.deepEqual(pruneCommands(log, (s) => s === 'web'), [{ op: 'drain', service: 'web', backend: 'web1' }, { op: 'maintenance', on: true }]);
  const doc = { v: 1, cluster: 'lab', local: log, shared: { version: 2, commands: [] } };
  assert.ok(RuntimeDocSchema.safeParse(doc).success);
  assert.equal(RuntimeDocSchema.safeParse({ ...doc, local: [{ op: 'weight', service: 'web', backend: 'web1', weight: 5000 }] }).success, false);
  assert.equal(RuntimeDocSchema.safeParse({ ...doc, local: [{ op: 'rm -rf', service: 'web', backend: 'web1' }] }).success, false);
  assert.equal(RuntimeDocSchema.safeParse({ ...doc, v: 2 }).success, false);
});
