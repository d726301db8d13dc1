import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeBackendCommand, parseAddressPort } from './backend-args.js';

test('backend commands decode, and bad ones say why', () => {
  assert.deepEqual(decodeBackendCommand({ op: 'drain', service: 'web', backend: 'web1' }), { ok: true, value: { op: 'drain', service: 'web', backend: 'web1' } });
  assert.deepEqual(decodeBackendCommand({ op: 'add', service: 'web', backend: 'web3', address: '198.18.1.13', port: 80, weight: 2 }), {
    ok: true,
    value: { op: 'add', service: 'web', backend: 'web3', address: '198.18.1.13', port: 80, weight: 2 },
  });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ op: 'explode', service: 'web', backend: 'b' }, /op must be/],
    [{ op: 'drain', service: 'Web', backend: 'b' }, /service/],
    [{ op: 'drain', service: 'web' }, /backend/],
    [{ op: 'weight', service: 'web', backend: 'b', weight: -1 }, /weight/],
    [{ op: 'weight', service: 'web', backend: 'b', weight: 1.5 }, /weight/],
    [{ op: 'add', service: 'web', backend: 'b', address: '300.1.1.1' }, /address/],
    [{ op: 'add', service: 'web', backend: 'b', address: '198.18.1.1', port: 70000 }, /port/],
  ];
  for (const [args, why] of bad) {
    const r = decodeBackendCommand(args);
    assert.equal(r.ok, false, JSON.stringify(args));
    if (!r.ok) assert.match(r.reason, why);
  }
});

test('backend command decoding never throws (property)', () => {
  fc.assert(fc.property(fc.dictionary(fc.constantFrom('op', 'service', 'backend', 'address', 'port', 'weight', 'x'), fc.anything()), (a) => {
    assert.equal(typeof decodeBackendCommand(a).ok, 'boolean');
  }));
});

test('address[:port] parsing', () => {
  assert.deepEqual(parseAddressPort('198.18.1.13:8080'), { address: '198.18.1.13', port: 8080 });
  assert.deepEqual(parseAddressPort('198.18.1.13'), { address: '198.18.1.13' });
  assert.deepEqual(parseAddressPort('[2001:db8::1]:80'), { address: '2001:db8::1', port: 80 });
  assert.equal(parseAddressPort('web3'), undefined);
});
