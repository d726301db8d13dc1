/**
 * The control socket's bounds, on a real Unix socket in a temporary folder (no root):
 * command names are looked up as own names only; a client can hold only so many connections,
 * requests in progress and unread answers; an oversized line and an idle client are cut off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ControlServer, type Handler } from './server.js';

async function withServer(handlers: Record<string, Handler>, limits: ConstructorParameters<typeof ControlServer>[3], run: (path: string, server: ControlServer) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fwlb-control-'));
  const path = join(dir, 'c.sock');
  const server = new ControlServer(path, handlers, pino({ level: 'silent' }), limits);
  await server.listen();
  try {
    await run(path, server);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const connect = (path: string) =>
  new Promise<Socket>((res, rej) => {
    const c = createConnection(path);
    c.once('connect', () => res(c));
    c.once('error', rej);
  });

/** Every line the server sends until it closes (or `max` lines). */
const linesOf = (c: Socket, max = Infinity) =>
  new Promise<Array<{ id: number; ok: boolean; result?: unknown; error?: { code: string } }>>((res) => {
    let buf = '';
    const out: Array<{ id: number; ok: boolean; result?: unknown; error?: { code: string } }> = [];
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        out.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
        if (out.length >= max) res(out);
      }
    });
    c.on('close', () => res(out));
  });

test('prototype names and unknown commands are ERR_UNKNOWN_COMMAND', async () => {
  await withServer({ status: () => 'fine' }, {}, async (path, server) => {
    const c = await connect(path);
    const got = linesOf(c, 4);
    for (const [i, cmd] of ['constructor', '__proto__', 'toString', 'status'].entries()) c.write(JSON.stringify({ id: i + 1, cmd }) + '\n');
    const r = await got;
    c.destroy();
    assert.deepEqual(r.map((x) => (x.ok ? 'ok' : x.error!.code)), ['ERR_UNKNOWN_COMMAND', 'ERR_UNKNOWN_COMMAND', 'ERR_UNKNOWN_COMMAND', 'ok']);
    assert.equal(server.counters().refused.unknown_command, 3);
  });
});

test('past the served connections one waits its turn, one more gets ERR_BUSY; an oversized line ERR_REQUEST_TOO_LARGE; an idle one ERR_IDLE', async () => {
  await withServer({ status: () => 'fine' }, { maxConnections: 2, maxWaiting: 1, maxLine: 1000, idleMs: 300 }, async (path, server) => {
    const a = await connect(path);
    const b = await connect(path);
    await new Promise((r) => setTimeout(r, 20));
    const c = await connect(path);
    const cAnswers = linesOf(c, 1);
    c.write(JSON.stringify({ id: 1, cmd: 'status' }) + '\n');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.counters().waiting, 1, 'c waits');
    const d = await connect(path);
    assert.deepEqual((await linesOf(d)).map((x) => x.error?.code), ['ERR_BUSY']);
    const big = linesOf(a);
    a.write('x'.repeat(5000));
    assert.deepEqual((await big).map((x) => x.error?.code), ['ERR_REQUEST_TOO_LARGE']);
    // a is gone: c is served, and its request (held in the kernel meanwhile) answered.
    assert.deepEqual((await cAnswers).map((x) => x.result), ['fine']);
    c.destroy();
    // b says nothing: closed after the idle time.
    assert.deepEqual((await linesOf(b)).map((x) => x.error?.code), ['ERR_IDLE']);
    assert.deepEqual(server.refused, { busy: 1, too_large: 1, idle: 1, bad_request: 0, unknown_command: 0 });
  });
});

test('a client that sends many requests has at most maxPending answered at once, and all answered in order', async () => {
  let running = 0;
  let peak = 0;
  const slow: Handler = async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 2));
    running--;
    return 'done';
  };
  await withServer({ slow }, { maxPending: 3 }, async (path) => {
    const c = await connect(path);
    const got = linesOf(c, 200);
    c.write(Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: i + 1, cmd: 'slow' }) + '\n').join(''));
    const r = await got;
    c.destroy();
    assert.equal(r.length, 200);
    assert.ok(r.every((x) => x.ok));
    assert.ok(peak <= 3, `peak ${peak}`);
  });
});

test('a client that does not read its answers is not read from: the requests wait in its socket, not in the daemon', async () => {
  let answered = 0;
  const big: Handler = () => {
    answered++;
    return 'y'.repeat(100_000); // 100 kB answers
  };
  await withServer({ big }, { maxUnread: 200_000, maxPending: 2 }, async (path) => {
    const c = await connect(path);
    c.pause(); // never reads
    const reqs = Array.from({ length: 500 }, (_, i) => JSON.stringify({ id: i + 1, cmd: 'big' }) + '\n').join('');
    c.write(reqs);
    await new Promise((r) => setTimeout(r, 300));
    // Only the answers that fit before the unread limit (plus what the kernel buffers) were made.
    assert.ok(answered < 100, `answered ${answered} of 500 for a client that reads nothing`);
    c.destroy();
  });
});
