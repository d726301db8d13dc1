/**
 * BIRD's include file: host routes per family through the device, each with the communities,
 * GRACEFUL_SHUTDOWN added when draining; the same text for the same addresses in any order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileBirdAnnouncement, hostRoutes } from './bird.js';

test('the routes: one per address, /32 and /128, IPv4 then IPv6, numeric order, each once', () => {
  assert.deepEqual(hostRoutes(['198.18.30.100', '2001:2:0:30::100', '198.18.30.9/24', '198.18.30.100', '2001:2:0:30:0:0:0:100', 'nonsense']), {
    4: ['198.18.30.9/32', '198.18.30.100/32'],
    6: ['2001:2:0:30::100/128'],
  });
});

test('the file: two static protocols through the device, communities on every route', () => {
  const text = compileBirdAnnouncement({ node: 'fw1', device: 'fwlb-bgp', addresses: ['2001:2:0:30::100', '198.18.30.100'], communities: [[65010, 100]], gracefulShutdown: false });
  assert.equal(
    text,
    [
      '# Written by fwlb for node fw1: the routes it announces.',
      '# fwlb rewrites this file and reconfigures BIRD; edits are lost. Export with: export where proto ~ "fwlb*";',
      'protocol static fwlb4 {',
      '\tipv4;',
      '\tcheck link;',
      '\troute 198.18.30.100/32 via "fwlb-bgp" { bgp_community.add((65010,100)); };',
      '}',
      'protocol static fwlb6 {',
      '\tipv6;',
      '\tcheck link;',
      '\troute 2001:2:0:30::100/128 via "fwlb-bgp" { bgp_community.add((65010,100)); };',
      '}',
      '',
    ].join('\n'),
  );
  assert.equal(text, compileBirdAnnouncement({ node: 'fw1', device: 'fwlb-bgp', addresses: ['198.18.30.100', '2001:2:0:30::100', '198.18.30.100'], communities: [[65010, 100]], gracefulShutdown: false }));
});

test('draining: every route tagged GRACEFUL_SHUTDOWN (65535,0) after the configured communities', () => {
  const text = compileBirdAnnouncement({ node: 'fw2', device: 'bgp0', addresses: ['198.18.30.100'], communities: [], gracefulShutdown: true });
  assert.match(text, /tagged GRACEFUL_SHUTDOWN/);
  assert.match(text, /\troute 198\.18\.30\.100\/32 via "bgp0" \{ bgp_community\.add\(\(65535,0\)\); \};/);
});

test('nothing to announce: both protocols, empty (BIRD withdraws what they held)', () => {
  const text = compileBirdAnnouncement({ node: 'fw1', device: 'fwlb-bgp', addresses: [], communities: [[1, 2]], gracefulShutdown: false });
  assert.doesNotMatch(text, /\troute /);
  assert.match(text, /protocol static fwlb4 \{\n\tipv4;\n\tcheck link;\n\}/);
  assert.match(text, /protocol static fwlb6 \{\n\tipv6;\n\tcheck link;\n\}/);
});
