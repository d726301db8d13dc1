import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import { nodeView } from '../config/node.js';
import { compileSharingArp } from './sharing-arp.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

test('the ARP table rewrites the sender MAC of whatever speaks for a shared address, per interface; nothing without sharing', async () => {
  const r = await parseConfig(await readFile(`${repo}examples/active-active.yaml`, 'utf8'), 'aa.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const out = compileSharingArp(r.value.config, nodeView(r.value.config, 'fw2'));
  assert.equal(
    out,
    [
      'table arp fwlb_share',
      'delete table arp fwlb_share',
      'table arp fwlb_share {',
      '\tchain output {',
      '\t\ttype filter hook output priority filter; policy accept;',
      '\t\toifname "eth1" arp saddr ip 198.18.1.1 arp saddr ether set 01:00:5e:7f:fb:00 comment "shared addresses answer with the shared MAC"',
      '\t\toifname "eth0" arp saddr ip 198.18.0.100 arp saddr ether set 01:00:5e:7f:fb:01 comment "shared addresses answer with the shared MAC"',
      '\t}',
      '}',
      '',
    ].join('\n'),
  );
  const lab = await parseConfig(await readFile(`${repo}examples/lab.yaml`, 'utf8'), 'lab.yaml');
  assert.ok(lab.ok);
  assert.equal(compileSharingArp(lab.value.config, nodeView(lab.value.config, 'fw1')), '');
});
