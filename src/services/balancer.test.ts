/**
 * The balancer's bookkeeping without a kernel: the nft and conntrack adapters are replaced
 * by recorders (the kernel side is proven by test/balancer.test.ts in a lab).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';

import type { Conntrack } from '../ports/conntrack.js';
import { Balancer } from './balancer.js';
import { SerialQueue } from '../lib/serial-queue.js';
import type { Nft } from '../ports/nft.js';

const TEXT = `cluster: { name: t }
nodes: { fw1: { priority: 1 } }
interfaces: { outside: eth0 }
services:
  web:
    listen: 198.18.0.100:80/tcp
    backends:
      web1: { address: 198.18.1.11 }
      web2: { address: 198.18.1.12 }
`;

async function config(text = TEXT): Promise<Config> {
  const r = await parseConfig(text, 'c.yaml');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value.config;
}

function setup() {
  const scripts: string[] = [];
  const deleted: string[] = [];
  const nft: Nft = { check: async () => {}, apply: async (s) => void scripts.push(s), list: async () => '' };
  const conntrack: Conntrack = {
    serviceFlows: async () => ({ byBackend: new Map() }),
    deleteBackendFlows: async (_s, b) => (deleted.push(`${b.address}:${b.port}`), 3),
  };
  const bal = new Balancer({ log: pino({ level: 'silent' }), nft, conntrack, queue: new SerialQueue() });
  return { bal, scripts, deleted };
}

async function adopt(bal: Balancer, c: Config) {
  bal.adopt(c, bal.plan(c));
}

const shares = async (bal: Balancer) => Object.fromEntries((await bal.status(null))[0]!.backends.map((b) => [b.name, b.slots]));

test('drain takes a backend out of the table by a map update; enable puts it back', async () => {
  const { bal, scripts, deleted } = setup();
  await adopt(bal, await config());
  assert.deepEqual(await shares(bal), { web1: 32, web2: 32 });
  await bal.command({ op: 'drain', service: 'web', backend: 'web1' });
  assert.deepEqual(await shares(bal), { web1: 0, web2: 64 });
  assert.equal(scripts.length, 1);
  assert.match(scripts[0]!, /^delete element inet fwlb svc_web \{ 0, 2, .*\nadd element inet fwlb svc_web \{ 0 : 198\.18\.1\.12 \. 80/);
  assert.deepEqual(deleted, [], 'drain leaves established flows alone');
  await bal.command({ op: 'enable', service: 'web', backend: 'web1' });
  assert.deepEqual(await shares(bal), { web1: 32, web2: 32 });
});

test('disable also deletes the backend\'s flows from conntrack', async () => {
  const { bal, deleted } = setup();
  await adopt(bal, await config());
  const r = await bal.command({ op: 'disable', service: 'web', backend: 'web2' });
  assert.equal(r.flowsDeleted, 3);
  assert.deepEqual(deleted, ['198.18.1.12:80']);
});

test('health down and up move the table; nothing healthy leaves it empty', async () => {
  const { bal } = setup();
  await adopt(bal, await config());
  await bal.setHealth('web', 'web1', false, 'connect ECONNREFUSED');
  await bal.setHealth('web', 'web2', false, 'timeout');
  assert.deepEqual(await shares(bal), { web1: 0, web2: 0 });
  await bal.setHealth('web', 'web2', true, 'ok');
  assert.deepEqual(await shares(bal), { web1: 0, web2: 64 });
});

test('a reload keeps runtime changes the file leaves alone, and drops those it changes', async () => {
  const { bal } = setup();
  await adopt(bal, await config());
  await bal.command({ op: 'drain', service: 'web', backend: 'web1' });
  await bal.command({ op: 'weight', service: 'web', backend: 'web2', weight: 5 });
  await bal.command({ op: 'add', service: 'web', backend: 'web3', address: '198.18.1.13' });

  // The same file: all three runtime changes stay.
  await adopt(bal, await config());
  let st = (await bal.status(null))[0]!.backends;
  assert.deepEqual(st.map((b) => [b.name, b.admin, b.weight, b.origin]), [
    ['web1', 'drain', 1, 'config'],
    ['web2', 'enabled', 5, 'config'],
    ['web3', 'enabled', 1, 'runtime'],
  ]);

  // The file changes web2 (its weight) and defines web3 itself: the file wins for those two.
  await adopt(bal, await config(TEXT.replace('web2: { address: 198.18.1.12 }', 'web2: { address: 198.18.1.12, weight: 2 }\n      web3: { address: 198.18.1.23 }')));
  st = (await bal.status(null))[0]!.backends;
  assert.deepEqual(st.map((b) => [b.name, b.admin, b.weight, b.origin, b.address]), [
    ['web1', 'drain', 1, 'config', '198.18.1.11:80'],
    ['web2', 'enabled', 2, 'config', '198.18.1.12:80'],
    ['web3', 'enabled', 1, 'config', '198.18.1.23:80'],
  ]);
});

test('runtime commands refuse what makes no sense', async () => {
  const { bal } = setup();
  await adopt(bal, await config());
  await assert.rejects(bal.command({ op: 'drain', service: 'nope', backend: 'web1' }), /no service "nope"/);
  await assert.rejects(bal.command({ op: 'drain', service: 'web', backend: 'web9' }), /no backend "web9"/);
  await assert.rejects(bal.command({ op: 'add', service: 'web', backend: 'web1', address: '198.18.1.30' }), /in the config .* use enable/);
  await assert.rejects(bal.command({ op: 'add', service: 'web', backend: 'x', address: '198.18.1.11', port: 80 }), /already backend "web1"/);
  await assert.rejects(bal.command({ op: 'add', service: 'web', backend: 'x', address: '2001:db8::1' }), /not an IPv4 address/);
  await bal.command({ op: 'remove', service: 'web', backend: 'web2' });
  await assert.rejects(bal.command({ op: 'drain', service: 'web', backend: 'web2' }), /no backend "web2"/);
  await bal.command({ op: 'enable', service: 'web', backend: 'web2' });
  assert.deepEqual(await shares(bal), { web1: 32, web2: 32 });
});
