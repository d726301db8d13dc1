import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script } from 'node:vm';
import { once } from 'node:events';
import { pino } from 'pino';
import { serveMetrics } from './metrics-http.js';
import { STATUS_PAGE_HTML, STATUS_PAGE_JS } from './status-page.js';
import type { NodeStatus } from '../services/node-daemon.js';

test('the page\'s script is valid JavaScript and builds the page with textContent only (no innerHTML)', () => {
  assert.doesNotThrow(() => new Script(STATUS_PAGE_JS));
  assert.doesNotMatch(STATUS_PAGE_JS, /innerHTML|outerHTML|insertAdjacentHTML|eval\(|new Function/);
  assert.match(STATUS_PAGE_HTML, /<script src="\/status\.js"><\/script>/);
  assert.doesNotMatch(STATUS_PAGE_HTML, /<script>[^<]/, 'no inline script: the CSP allows this origin\'s only');
});

test('the metrics listener serves the page, its script and /status.json beside /metrics; read-only', async () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const fake = { node: 'fw1', cluster: 'lab', ready: { ready: true, reason: 'ready' } } as unknown as NodeStatus;
  const server = serveMetrics(`127.0.0.1:${port}`, async () => fake, pino({ level: 'silent' }))!;
  await once(server, 'listening');
  try {
    const base = `http://127.0.0.1:${port}`;
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(await page.text(), /<title>fwlb status<\/title>/);
    const js = await fetch(`${base}/status.js`);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal(await js.text(), STATUS_PAGE_JS);
    const st = await fetch(`${base}/status.json?t=1`);
    assert.equal(st.status, 200);
    assert.deepEqual(await st.json(), fake);
    assert.equal((await fetch(`${base}/status.json`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${base}/nothing`)).status, 404);
  } finally {
    server.close();
  }
});
