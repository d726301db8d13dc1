import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { tcpProbe } from './tcp.js';
import { loopbackTarget } from './test-target.js';

/** A listening TCP server on 127.0.0.1 and an ephemeral port; counts accepted connections. */
async function listen(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    n++;
    sockets.push(s);
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => n,
    close: async () => {
      sockets.forEach((s) => s.destroy());
      server.close();
      await once(server, 'close');
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = await listen();
  await s.close();
  return s.port;
}

test('tcp: a listening port is up, and the probe closes its connection', async () => {
  const srv = await listen();
  try {
    const r = await tcpProbe.run(loopbackTarget(srv.port, { tcp: {} }), 500);
    assert.equal(r.ok, true);
    assert.equal(r.detail, 'connected');
    assert.ok(r.ms >= 0 && r.ms < 500);
    assert.equal(srv.accepted(), 1);
  } finally {
    await srv.close();
  }
});

test('tcp: check.tcp.port overrides the backend port', async () => {
  const srv = await listen();
  const closed = await closedPort();
  try {
    const r = await tcpProbe.run(loopbackTarget(closed, { tcp: { port: srv.port } }), 500);
    assert.deepEqual([r.ok, r.detail], [true, 'connected']);
  } finally {
    await srv.close();
  }
});

test('tcp: a closed port is down with connect ECONNREFUSED', async () => {
  const r = await tcpProbe.run(loopbackTarget(await closedPort(), { tcp: {} }), 500);
  assert.deepEqual([r.ok, r.detail], [false, 'connect ECONNREFUSED']);
});

test('tcp: a listener that never accepts times out', async () => {
  // A child process listens with a backlog of 1, then blocks its event loop forever:
  // it never calls accept(). Once its accept queue is full the kernel drops further SYNs.
  const code = `
    const s = require('node:net').createServer();
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(s.address().port + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: Socket[] = [];
  try {
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const port = Number(line.toString().trim());
    for (let i = 0; i < 4; i++) {
      const f = connect({ host: '127.0.0.1', port });
      f.on('error', () => {});
      fillers.push(f);
    }
    await new Promise((r) => setTimeout(r, 200));
    const r = await tcpProbe.run(loopbackTarget(port, { tcp: {} }), 300);
    assert.deepEqual([r.ok, r.detail], [false, 'timeout after 300 ms']);
    assert.ok(r.ms >= 290 && r.ms < 1000, `took ${r.ms} ms`);
  } finally {
    fillers.forEach((f) => f.destroy());
    child.kill('SIGKILL');
  }
});

test('tcp: a bad port is a result, not a throw', async () => {
  const r = await tcpProbe.run(loopbackTarget(70000, { tcp: {} }), 500);
  assert.equal(r.ok, false);
  assert.match(r.detail, /port/i);
});
