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

/** A handler that answers after 2 ms, counting how many run at once (peak()). */
function slowHandler(answer: string): { slow: Handler; peak: () => number } {
  let running = 0;
  let peak = 0;
  const slow: Handler = async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 2));
    running--;
    return answer;
  };
  return { slow, peak: () => peak };
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

test('past the turns, a connection with a request waits unread; past the open connections with none idle, ERR_BUSY', async () => {
  // a and b hold a request under way (two turns, both taken); c must wait for a turn.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  await withServer({ status: () => 'fine', hold: () => held.then(() => 'held') }, { maxConnections: 3, maxActive: 2, maxLine: 1000, idleMs: 5000 }, async (path, server) => {
    const a = await connect(path);
    const b = await connect(path);
    const aAnswers = linesOf(a, 1);
    const bAnswers = linesOf(b, 1);
    a.write(JSON.stringify({ id: 1, cmd: 'hold' }) + '\n');
    b.write(JSON.stringify({ id: 1, cmd: 'hold' }) + '\n');
    await new Promise((r) => setTimeout(r, 20));
    const c = await connect(path);
    const cAnswers = linesOf(c, 1);
    c.write(JSON.stringify({ id: 1, cmd: 'status' }) + '\n');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.counters().waiting, 1, 'c waits for a turn');
    // A fourth: three open, none idle (two busy, one waiting): refused.
    const d = await connect(path);
    assert.deepEqual((await linesOf(d)).map((x) => x.error?.code), ['ERR_BUSY']);
    release();
    assert.deepEqual((await aAnswers).map((x) => x.result), ['held']);
    assert.deepEqual((await bAnswers).map((x) => x.result), ['held']);
    assert.deepEqual((await cAnswers).map((x) => x.result), ['fine'], 'c answered once a turn was free');
    for (const x of [a, b, c]) x.destroy();
    assert.equal(server.refused.busy, 1);
    assert.equal(server.refused.evicted, 0);
  });
});

test('500 clients asking at once are all answered, at most maxActive at a time (regression: fresh connections were cut as idle)', async () => {
  const { slow, peak } = slowHandler('ok');
  await withServer({ status: slow }, { maxActive: 16 }, async (path, server) => {
    const clients = await Promise.all(Array.from({ length: 500 }, () => connect(path)));
    const answers = clients.map((c) => linesOf(c, 1));
    for (const c of clients) c.write(JSON.stringify({ id: 1, cmd: 'status' }) + '\n');
    const got = await Promise.all(answers);
    for (const c of clients) c.destroy();
    assert.equal(got.filter((r) => r[0]?.ok).length, 500, `failed: ${got.filter((r) => !r[0]?.ok).map((r) => r[0]?.error?.code).slice(0, 5)}`);
    assert.ok(peak() <= 16, `peak ${peak()}`);
    assert.equal(server.refused.evicted + server.refused.busy, 0);
  });
});

test('1,000 clients connecting in one burst all get in and are answered (regression: the 512th failed with EAGAIN, the listen backlog full before the loop could accept)', async () => {
  await withServer({ status: () => 'ok' }, {}, async (path) => {
    // Every connect is made in this one turn of the loop: none is accepted before the last.
    const settled = await Promise.allSettled(Array.from({ length: 1000 }, () => connect(path)));
    const failed = settled.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as NodeJS.ErrnoException).code);
    const clients = settled.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<Socket>).value);
    try {
      assert.deepEqual([...new Set(failed)], [], `${failed.length} of 1000 connects failed`);
      const answers = clients.map((c) => linesOf(c, 1));
      for (const c of clients) c.write(JSON.stringify({ id: 1, cmd: 'status' }) + '\n');
      assert.equal((await Promise.all(answers)).filter((r) => r[0]?.ok).length, 1000);
    } finally {
      for (const c of clients) c.destroy();
    }
  });
});

test('an idle connection is closed after idleMs with ERR_IDLE', async () => {
  await withServer({ status: () => 'fine' }, { idleMs: 200 }, async (path, server) => {
    const b = await connect(path);
    assert.deepEqual((await linesOf(b)).map((x) => x.error?.code), ['ERR_IDLE']);
    assert.equal(server.refused.idle, 1);
  });
});

test('an oversized request line is ERR_REQUEST_TOO_LARGE', async () => {
  await withServer({ status: () => 'fine' }, { maxLine: 1000 }, async (path, server) => {
    const a = await connect(path);
    const got = linesOf(a);
    a.write('x'.repeat(5000));
    assert.deepEqual((await got).map((x) => x.error?.code), ['ERR_REQUEST_TOO_LARGE']);
    assert.equal(server.refused.too_large, 1);
  });
});

test('1,000 idle connections held open do not starve a new status (default limits: nothing cut)', async () => {
  await withServer({ status: () => 'fine' }, {}, async (path, server) => {
    const idle: Socket[] = [];
    for (let i = 0; i < 1000; i++) idle.push(await connect(path));
    const c = await connect(path);
    const t0 = performance.now();
    const got = linesOf(c, 1);
    c.write(JSON.stringify({ id: 7, cmd: 'status' }) + '\n');
    assert.deepEqual((await got).map((x) => x.result), ['fine']);
    assert.ok(performance.now() - t0 < 1000, `answered in ${Math.round(performance.now() - t0)} ms`);
    c.destroy();
    assert.equal(server.refused.evicted, 0);
    for (const s of idle) s.destroy();
  });
});

test('past the open connections, the idle longest are cut, oldest first, and counted; a new status is answered at once', async () => {
  await withServer({ status: () => 'fine' }, { maxConnections: 64 }, async (path, server) => {
    const idle: Socket[] = [];
    const cutOrder: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const c = await connect(path);
      c.on('close', () => cutOrder.push(i));
      c.resume();
      idle.push(c);
    }
    await new Promise((r) => setTimeout(r, 50));
    const c = await connect(path);
    const got = linesOf(c, 1);
    c.write(JSON.stringify({ id: 7, cmd: 'status' }) + '\n');
    const r = await Promise.race([got, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 2000))]);
    assert.notEqual(r, 'timeout', 'status answered while 1,000 idle connections are held');
    assert.deepEqual((r as Array<{ result?: unknown }>).map((x) => x.result), ['fine']);
    c.destroy();
    assert.equal(server.counters().waiting, 0);
    assert.ok(server.counters().connections <= 64);
    assert.equal(server.refused.evicted, 1000 + 1 - 64, 'every connection past the limit cut one idle');
    await new Promise((r) => setTimeout(r, 50));
    // The oldest were cut first: the survivors are the last ones to arrive.
    const alive = idle.map((s, i) => (s.destroyed || s.readableEnded ? -1 : i)).filter((i) => i >= 0);
    assert.ok(alive.every((i) => i >= 1000 - 64), `survivors ${alive.slice(0, 5)}...`);
    assert.ok(cutOrder.slice(0, 10).every((i, k) => i === k), `cut first: ${cutOrder.slice(0, 10)}`);
    for (const s of idle) s.destroy();
  });
});

test('a client that sends many requests has at most maxPending answered at once, and all answered in order', async () => {
  const { slow, peak } = slowHandler('done');
  await withServer({ slow }, { maxPending: 3 }, async (path) => {
    const c = await connect(path);
    const got = linesOf(c, 200);
    c.write(Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: i + 1, cmd: 'slow' }) + '\n').join(''));
    const r = await got;
    c.destroy();
    assert.equal(r.length, 200);
    assert.ok(r.every((x) => x.ok));
    assert.ok(peak() <= 3, `peak ${peak()}`);
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
