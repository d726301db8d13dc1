import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeRequest } from './protocol.js';

test('control requests: valid ones decode, each kind of garbage gets its reason', () => {
  assert.deepEqual(decodeRequest('{"id":1,"cmd":"status"}'), { ok: true, value: { id: 1, cmd: 'status' } });
  assert.deepEqual(decodeRequest('{"id":2,"cmd":"backend.drain","args":{"service":"web"}}'), {
    ok: true,
    value: { id: 2, cmd: 'backend.drain', args: { service: 'web' } },
  });
  const cases: [string, string][] = [
    ['{', 'not JSON'],
    ['[]', 'not an object'],
    ['null', 'not an object'],
    ['{"cmd":"status"}', 'id must be an integer'],
    ['{"id":1.5,"cmd":"status"}', 'id must be an integer'],
    ['{"id":1,"cmd":"../etc"}', 'cmd must be a command name'],
    ['{"id":1,"cmd":"status","args":[1]}', 'args must be an object'],
  ];
  for (const [line, reason] of cases) assert.deepEqual(decodeRequest(line), { ok: false, reason }, line);
});

test('control requests: no input makes the decoder throw (property)', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (line) => {
      const r = decodeRequest(line);
      assert.equal(typeof r.ok, 'boolean');
    }),
    { numRuns: 2000 },
  );
});
