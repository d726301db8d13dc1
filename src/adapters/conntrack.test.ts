import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseFlows } from './conntrack.js';

test('conntrack -L lines: flows grouped by the reply source (the backend), established counted', () => {
  const text = [
    'tcp      6 431999 ESTABLISHED src=198.18.0.10 dst=198.18.0.100 sport=40000 dport=80 src=198.18.1.11 dst=198.18.0.10 sport=80 dport=40000 [ASSURED] mark=0 use=1',
    'tcp      6 118 TIME_WAIT src=198.18.0.10 dst=198.18.0.100 sport=40001 dport=80 src=198.18.1.11 dst=198.18.0.10 sport=80 dport=40001 [ASSURED] mark=0 use=1',
    'udp      17 29 src=198.18.0.10 dst=198.18.0.100 sport=5000 dport=7 src=198.18.1.12 dst=198.18.0.10 sport=7 dport=5000 [ASSURED] mark=0 use=1',
    'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
    'garbage src=1.2.3.4',
  ].join('\n');
  const f = parseFlows(text);
  assert.deepEqual(Object.fromEntries(f.byBackend), {
    '198.18.1.11:80': { flows: 2, established: 1 },
    '198.18.1.12:7': { flows: 1, established: 1 },
  });
});

test('conntrack text parsing never throws (property)', () => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => void parseFlows(s)));
});
