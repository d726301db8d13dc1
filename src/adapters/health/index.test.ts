import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probes } from './index.js';
import { checkKind, probeFor } from '../../fsm/health/probes.js';
import { loopbackTarget } from './test-target.js';

test('the registry holds one probe per kind, and probeFor picks the configured one', () => {
  assert.deepEqual(Object.keys(probes).sort(), ['http', 'script', 'tcp']);
  for (const [kind, p] of Object.entries(probes)) assert.equal(p.kind, kind);
  const base = loopbackTarget(80, {}).check;
  assert.equal(probeFor({ ...base, tcp: {} }, probes)?.kind, 'tcp');
  assert.equal(probeFor({ ...base, http: { path: '/', status: 200 } }, probes)?.kind, 'http');
  assert.equal(probeFor({ ...base, script: { path: '/bin/true', args: [] } }, probes)?.kind, 'script');
  assert.equal(probeFor(base, probes), undefined);
  assert.equal(checkKind(base), undefined);
});

test('probeFor looks in the registry it is given', () => {
  const fake = { kind: 'tcp' as const, run: async () => ({ ok: true, detail: 'fake', ms: 0 }) };
  const reg = { ...probes, tcp: fake };
  assert.equal(probeFor({ ...loopbackTarget(80, {}).check, tcp: {} }, reg), fake);
});
