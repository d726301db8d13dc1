import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trackEvents, trackOutcome } from './track.js';

test('weight 0 items fault the instance while down; weighted items move the priority', () => {
  const items = [
    { name: 'interface:outside', up: true },
    { name: 'service:web', up: false, weight: -50 },
    { name: 'script:bgp', up: true, weight: 10 },
  ];
  assert.deepEqual(trackOutcome(150, items), { priority: 110, faults: [] });
  assert.deepEqual(trackOutcome(150, [...items, { name: 'interface:inside', up: false }]), { priority: 110, faults: ['track:interface:inside'] });
});

test('priority stays within 1..254; the owner keeps 255 and only faults apply to it', () => {
  assert.equal(trackOutcome(20, [{ name: 'x', up: false, weight: -100 }]).priority, 1);
  assert.equal(trackOutcome(250, [{ name: 'x', up: true, weight: 100 }]).priority, 254);
  assert.deepEqual(trackOutcome(255, [{ name: 'x', up: false, weight: -100 }, { name: 'y', up: false }]), { priority: 255, faults: ['track:y'] });
});

test('trackEvents: the instance events between two outcomes', () => {
  assert.deepEqual(trackEvents({ priority: 100, faults: ['track:a'] }, { priority: 90, faults: ['track:b'] }), [
    { type: 'fault', source: 'track:b' },
    { type: 'fault_cleared', source: 'track:a' },
    { type: 'priority_changed', priority: 90 },
  ]);
  assert.deepEqual(trackEvents({ priority: 100, faults: [] }, { priority: 100, faults: [] }), []);
});
