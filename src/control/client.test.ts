/**
 * The control client against a real Unix socket in a temporary folder (no root): a node that
 * reads the request and closes without answering (it died mid-request) is an error at once,
 * not a wait for the timeout; a silent node is a timeout; an answer resolves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlCall } from './client.js';

async function withSocket(onLine: (s: Socket) => void, run: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fwlb-client-'));
  const path = join(dir, 'c.sock');
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.once('data', () => onLine(s));
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    await run(path);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  }
}

test('a node that reads the request and closes without answering is ERR_CONTROL_CLOSED at once', async () => {
  await withSocket((s) => s.end(), async (path) => {
    const t0 = performance.now();
    await assert.rejects(controlCall(path, 'status', undefined, 5000), (e: Error & { code?: string }) => e.code === 'ERR_CONTROL_CLOSED' && /without answering/.test(e.message));
    assert.ok(performance.now() - t0 < 2500, 'rejected long before the 5 s timeout');
  });
});

test('a node whose socket is destroyed mid-request is an error too; a silent one is a timeout; an answer resolves', async () => {
  await withSocket((s) => s.destroy(), async (path) => {
    await assert.rejects(controlCall(path, 'status', undefined, 5000), (e: Error & { code?: string }) => e.code === 'ERR_CONTROL_CONNECT' || e.code === 'ERR_CONTROL_CLOSED');
  });
  await withSocket(() => undefined, async (path) => {
    await assert.rejects(controlCall(path, 'status', undefined, 200), (e: Error & { code?: string }) => e.code === 'ERR_CONTROL_TIMEOUT');
  });
  await withSocket((s) => s.end(JSON.stringify({ id: 1, ok: true, result: { up: 1 } }) + '\n'), async (path) => {
    assert.deepEqual(await controlCall(path, 'status'), { up: 1 });
  });
});
