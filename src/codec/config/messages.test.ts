import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CONFIG_REFUSALS, decodeMessage, decodeOutcome, encodeMessage, type NodeOutcome } from './messages.js';

const outcome: fc.Arbitrary<NodeOutcome> = fc.oneof(
  fc.boolean().map((changed) => ({ outcome: 'applied' as const, changed })),
  fc.constantFrom('confirmed' as const, 'not_pending' as const).map((o) => ({ outcome: o })),
  fc.record({ outcome: fc.constant('refused' as const), reason: fc.constantFrom(...CONFIG_REFUSALS), message: fc.string() }).map((r) => ({ ...r })),
  fc.record({ outcome: fc.constant('unreachable' as const), message: fc.string() }).map((r) => ({ ...r })),
);

test('every outcome comes back as it was sent', () => {
  fc.assert(fc.property(outcome, (o) => assert.deepEqual(decodeOutcome(encodeMessage(o)), o)));
});

test('garbage is no message and no outcome, never an exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const b = Buffer.from(bytes);
      const m = decodeMessage(b);
      assert.ok(m === undefined || (typeof m === 'object' && !Array.isArray(m)));
      decodeOutcome(b);
    }),
  );
  fc.assert(fc.property(fc.json(), (j) => void decodeOutcome(Buffer.from(j))));
  for (const bad of ['[1]', 'null', '"applied"', '{"outcome":"applied"}', '{"outcome":"refused","reason":"made_up","message":"x"}', '{"outcome":"refused","reason":"older"}', '{"outcome":"unreachable","message":3}', '{"outcome":"other"}', '{']) {
    assert.equal(decodeOutcome(Buffer.from(bad)), undefined, bad);
  }
  assert.deepEqual(decodeMessage(Buffer.from('{"version":3}')), { version: 3 });
});
