import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { httpProbe, hostHeader } from './http.js';
import { loopbackTarget } from './test-target.js';

let server: Server;
let port: number;
const seen: IncomingMessage[] = [];
const sockets = new Set<Socket>();

before(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    switch (req.url) {
      case '/ok':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(100_000));
        return;
      case '/down':
        res.writeHead(503).end('down');
        return;
      case '/hang':
        return; // never answers
      case '/slow-body':
        res.writeHead(200).write('part of it'); // never ends the body
        return;
      default:
        res.writeHead(404).end();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  sockets.forEach((s) => s.destroy());
  server.close();
  await once(server, 'close');
});

const http = (path: string, status = 200, p?: number) => ({ http: { path, status, ...(p ? { port: p } : {}) } });

test('http: the expected status is up; Host is the address; the connection is not kept', async () => {
  const r = await httpProbe.run(loopbackTarget(port, http('/ok')), 1000);
  assert.deepEqual([r.ok, r.detail], [true, 'status 200']);
  const req = seen.at(-1)!;
  assert.equal(req.method, 'GET');
  assert.equal(req.headers.host, `127.0.0.1:${port}`);
  assert.equal(req.headers.connection, 'close');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sockets.size, 0, 'no connection left open');
});

test('http: another status is down, and says what it wanted', async () => {
  const r = await httpProbe.run(loopbackTarget(port, http('/down')), 1000);
  assert.deepEqual([r.ok, r.detail], [false, 'status 503 (want 200)']);
  const r2 = await httpProbe.run(loopbackTarget(port, http('/down', 503)), 1000);
  assert.deepEqual([r2.ok, r2.detail], [true, 'status 503']);
  const r3 = await httpProbe.run(loopbackTarget(port, http('/nothing-here')), 1000);
  assert.deepEqual([r3.ok, r3.detail], [false, 'status 404 (want 200)']);
});

test('http: check.http.port overrides the backend port', async () => {
  const r = await httpProbe.run(loopbackTarget(1, http('/ok', 200, port)), 1000);
  assert.deepEqual([r.ok, r.detail], [true, 'status 200']);
});

test('http: a closed port is down with connect ECONNREFUSED', async () => {
  const s = createTcpServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const closed = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  const r = await httpProbe.run(loopbackTarget(closed, http('/ok')), 1000);
  assert.deepEqual([r.ok, r.detail], [false, 'connect ECONNREFUSED']);
});

test('http: a server that never answers times out', async () => {
  const r = await httpProbe.run(loopbackTarget(port, http('/hang')), 300);
  assert.deepEqual([r.ok, r.detail], [false, 'timeout after 300 ms']);
  assert.ok(r.ms >= 290 && r.ms < 1000, `took ${r.ms} ms`);
});

test('http: the timeout covers the body too', async () => {
  const r = await httpProbe.run(loopbackTarget(port, http('/slow-body')), 300);
  assert.deepEqual([r.ok, r.detail], [false, 'timeout after 300 ms']);
});

test('http: a server that closes without answering is down', async () => {
  const s = createTcpServer((c) => c.destroy()).listen(0, '127.0.0.1');
  await once(s, 'listening');
  try {
    const r = await httpProbe.run(loopbackTarget((s.address() as AddressInfo).port, http('/ok')), 1000);
    assert.equal(r.ok, false);
    assert.match(r.detail, /socket hang up|ECONNRESET/);
  } finally {
    s.close();
  }
});

test('hostHeader brackets IPv6 and leaves out port 80', () => {
  assert.equal(hostHeader('198.18.1.11', 4, 80), '198.18.1.11');
  assert.equal(hostHeader('198.18.1.11', 4, 8080), '198.18.1.11:8080');
  assert.equal(hostHeader('2001:db8::1', 6, 8080), '[2001:db8::1]:8080');
});
