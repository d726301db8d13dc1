import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import { nodeView } from '../config/node.js';
import { compileSharingNd, sharedIPv6 } from './sharing-nd.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

async function config(file: string) {
  const r = await parseConfig(await readFile(`${repo}examples/${file}`, 'utf8'), file);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value.config;
}

test('neighbour discovery for each shared IPv6 address: advertisements for it and solicitations from it get the shared MAC of their interface, checksum updated', async () => {
  const c = await config('active-active.yaml');
  assert.deepEqual(sharedIPv6(c), { inside: ['fe80::1'], outside: ['2001:2::100'] });
  const t = compileSharingNd(c, nodeView(c, 'fw2'))!;
  assert.equal(t.family, 'ip6');
  assert.equal(t.name, 'fwlb_share6');
  assert.deepEqual(t.chain, { name: 'output', hook: 'output', priority: 0 });
  assert.equal(t.rules.length, 4);
  const [naIn, nsIn, naOut, nsOut] = t.rules;
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const render = (r: (typeof t.rules)[number]) =>
    r.exprs.map((e) => (e.kind === 'meta' ? `meta ${e.key}` : e.kind === 'cmp' || e.kind === 'immediate' ? `${e.kind} ${hex(e.data)}` : e.kind === 'payload' ? `load ${e.base}+${e.offset}/${e.len}` : `write ${e.base}+${e.offset}/${e.len} csum@${e.csumOffset}`));
  const eth = (n: string) => Buffer.concat([Buffer.from(n), Buffer.alloc(16 - n.length)]).toString('hex');
  assert.deepEqual(render(naOut!), [
    'meta l4proto', 'cmp 3a', 'load transport+0/1', 'cmp 88', 'meta oifname', `cmp ${eth('eth0')}`,
    'load transport+8/16', 'cmp 20010002000000000000000000000100',
    'load transport+24/2', 'cmp 0201', 'immediate 01005e7ffb01', 'write transport+26/6 csum@2',
  ]);
  assert.deepEqual(render(nsOut!), [
    'meta l4proto', 'cmp 3a', 'load transport+0/1', 'cmp 87', 'meta oifname', `cmp ${eth('eth0')}`,
    'load network+8/16', 'cmp 20010002000000000000000000000100',
    'load transport+24/2', 'cmp 0101', 'immediate 01005e7ffb01', 'write transport+26/6 csum@2',
  ]);
  assert.equal(render(naIn!)[5], `cmp ${eth('eth1')}`);
  assert.equal(render(naIn!)[7], 'cmp fe800000000000000000000000000001');
  assert.equal(render(nsIn!)[10], 'immediate 01005e7ffb00', "the inside's shared MAC");
  assert.match(naOut!.comment!, /advertisements for 2001:2::100 carry the shared MAC 01:00:5e:7f:fb:01/);
});

test('no table without shared IPv6 addresses', async () => {
  const lab = await config('lab.yaml');
  assert.equal(compileSharingNd(lab, nodeView(lab, 'fw1')), undefined);
});
