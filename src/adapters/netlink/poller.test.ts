/**
 * The Poller on eventfds (no root needed), both backends. Whether the process stays alive
 * is checked in child processes running this same file with POLLER_CHILD=<case>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { PollerError } from './errors.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, libc } from '../libc.js';
import { Poller, type PollerBackend, type Readiness } from './poller.js';

const SELF = fileURLToPath(import.meta.url);
const BACKENDS: PollerBackend[] = ['uv', 'thread'];

function eventfd(): number {
  const fd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  assert.ok(fd >= 0);
  return fd;
}
function signal(fd: number): void {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(1n, 0);
  assert.equal(libc().write(fd, b, 8), 8);
}
/** Reads the eventfd counter; -1 when it was zero (EAGAIN). */
function drain(fd: number): number {
  return libc().read(fd, Buffer.alloc(8), 8);
}
async function until(pred: () => boolean, ms = 1000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(2);
  }
  return pred();
}

// =======================================================================================
// Child cases: each ends with the poller in a given state, then simply returns.

const CHILD = process.env.POLLER_CHILD;
if (CHILD) {
  const [what, backend] = CHILD.split(':') as [string, PollerBackend];
  const fd = eventfd();
  switch (what) {
    case 'idle-open': {
      // Registered, never closed: the uv backend (unref'd) lets the process end.
      const p = new Poller({ backend });
      p.add(fd, () => drain(fd));
      break;
    }
    case 'signalled-open': {
      // Readable at the moment the loop runs dry, never closed: the 'exit' guard must keep
      // Node's teardown from calling into JS (a fatal error without it).
      const p = new Poller({ backend });
      p.add(fd, () => drain(fd));
      signal(fd);
      break;
    }
    case 'exit-while-waiting': {
      // process.exit() while the waiter blocks: must not hang ('thread' without the guard did).
      const p = new Poller({ backend, keepAlive: true });
      p.add(fd, () => drain(fd));
      setTimeout(() => process.exit(0), 50);
      break;
    }
    case 'keepalive-open': {
      const p = new Poller({ backend, keepAlive: true });
      p.add(fd, () => drain(fd));
      break;
    }
    case 'closed': {
      const p = new Poller({ backend, keepAlive: true });
      let n = 0;
      p.add(fd, () => {
        drain(fd);
        n++;
        p.close();
        process.stdout.write(`called ${n}\n`);
      });
      signal(fd);
      break;
    }
    case 'throws': {
      // A throwing callback surfaces as an uncaught exception, and the poller goes on.
      const p = new Poller({ backend, keepAlive: true });
      const fd2 = eventfd();
      let thrown = 0;
      process.on('uncaughtException', (e) => {
        thrown++;
        process.stdout.write(`uncaught ${(e as Error).message}\n`);
      });
      p.add(fd, () => {
        drain(fd);
        throw new Error('boom');
      });
      p.add(fd2, () => {
        drain(fd2);
        process.stdout.write(`second fd called after ${thrown} uncaught\n`);
        p.close();
      });
      signal(fd);
      setTimeout(() => signal(fd2), 50);
      break;
    }
  }
} else {
  for (const backend of BACKENDS) {
    test(`[${backend}] a readable fd calls back on the main thread; removed fds never do`, async () => {
      const p = new Poller({ backend });
      assert.equal(p.backend, backend);
      const a = eventfd();
      const b = eventfd();
      const calls: string[] = [];
      const offA = p.add(a, (r: Readiness) => {
        calls.push(`a${r.error ? '!' : ''}:${drain(a)}`);
      });
      p.add(b, () => {
        calls.push(`b:${drain(b)}`);
      });
      assert.equal(p.size, 2);
      signal(b);
      assert.ok(await until(() => calls.length === 1));
      assert.deepEqual(calls, ['b:8']);
      signal(a);
      signal(a);
      assert.ok(await until(() => calls.length === 2));
      assert.deepEqual(calls, ['b:8', 'a:8']); // one wakeup, both writes (the counter was 2)
      offA();
      offA(); // idempotent
      assert.equal(p.size, 1);
      signal(a);
      await sleep(30);
      assert.deepEqual(calls, ['b:8', 'a:8']);
      p.close();
      p.close();
      assert.equal(p.closed, true);
      signal(b);
      await sleep(30);
      assert.deepEqual(calls, ['b:8', 'a:8']);
      for (const fd of [a, b]) libc().close(fd);
    });

    test(`[${backend}] fds added while the waiter waits are watched at once`, async () => {
      const p = new Poller({ backend });
      const first = eventfd();
      p.add(first, () => drain(first));
      await sleep(20); // the waiter is now blocked on `first` only
      const late = eventfd();
      let t = 0;
      p.add(late, () => {
        drain(late);
        t = performance.now();
      });
      const t0 = performance.now();
      signal(late);
      assert.ok(await until(() => t > 0, 500), 'late fd called back');
      assert.ok(t - t0 < 100, `${(t - t0).toFixed(2)} ms`);
      p.close();
      libc().close(first);
      libc().close(late);
    });

    test(`[${backend}] level-triggered: an fd left unread calls back again`, async () => {
      const p = new Poller({ backend });
      const fd = eventfd();
      let n = 0;
      p.add(fd, () => {
        n++;
        if (n === 3) drain(fd);
      });
      signal(fd);
      assert.ok(await until(() => n >= 3));
      await sleep(30);
      assert.equal(n, 3);
      p.close();
      libc().close(fd);
    });

    test(`[${backend}] misuse is a PollerError`, () => {
      const p = new Poller({ backend });
      const fd = eventfd();
      p.add(fd, () => drain(fd));
      assert.throws(() => p.add(fd, () => {}), PollerError);
      assert.throws(() => p.add(-1, () => {}), (e: unknown) => e instanceof PollerError && e.code === 'ERR_POLLER');
      p.close();
      assert.throws(() => p.add(fd, () => {}), PollerError);
      libc().close(fd);
    });

    test(`[${backend}] latency: 200 wakeups`, async () => {
      // keepAlive: nothing else holds the loop while the test awaits a bare callback.
      const p = new Poller({ backend, keepAlive: true });
      const fd = eventfd();
      let resolve: (() => void) | undefined;
      p.add(fd, () => {
        drain(fd);
        resolve?.();
      });
      const lat: number[] = [];
      for (let i = 0; i < 200; i++) {
        const got = new Promise<void>((r) => (resolve = r));
        const t0 = performance.now();
        signal(fd);
        await got;
        lat.push(performance.now() - t0);
      }
      lat.sort((x, y) => x - y);
      const med = lat[100] as number;
      console.log(`[${backend}] eventfd write -> callback: median ${med.toFixed(3)} ms, p99 ${(lat[198] as number).toFixed(3)} ms`);
      assert.ok(med < 5);
      p.close();
      libc().close(fd);
    });
  }

  interface Exit {
    code: number | null;
    killed: boolean;
    out: string;
    err: string;
  }
  function child(what: string, backend: PollerBackend, ms = 3000): Promise<Exit> {
    return new Promise((resolve) => {
      const c = spawn(process.execPath, [SELF], { env: { ...process.env, POLLER_CHILD: `${what}:${backend}` }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let killed = false;
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => {
        killed = true;
        c.kill('SIGKILL');
      }, ms);
      c.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, killed, out, err });
      });
    });
  }

  for (const backend of BACKENDS) {
    test(`[${backend}] a closed poller leaves nothing behind: the process exits by itself`, async () => {
      const r = await child('closed', backend);
      assert.equal(r.killed, false, r.err);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out.trim(), 'called 1');
    });

    test(`[${backend}] a throwing callback is an uncaught exception, and the poller goes on`, async () => {
      const r = await child('throws', backend);
      assert.equal(r.killed, false, r.err);
      assert.equal(r.out.trim(), 'uncaught boom\nsecond fd called after 1 uncaught');
    });

    test(`[${backend}] keepAlive: true holds the process while an fd is registered`, async () => {
      const r = await child('keepalive-open', backend, 700);
      assert.equal(r.killed, true);
    });
  }

  for (const backend of BACKENDS) {
    test(`[${backend}] process.exit() while the poller waits: exits at once`, async () => {
      const r = await child('exit-while-waiting', backend);
      assert.equal(r.killed, false, r.err);
      assert.equal(r.code, 0, r.err);
    });
  }

  test('[uv] an fd readable when the loop runs dry, poller never closed: a clean exit, no fatal error', async () => {
    const r = await child('signalled-open', 'uv');
    assert.equal(r.killed, false, r.err);
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.err, /FATAL/);
  });

  test('[uv] while idle and not closed, the poller does not keep the process alive', async () => {
    const r = await child('idle-open', 'uv');
    assert.equal(r.killed, false, r.err);
    assert.equal(r.code, 0);
  });

  test('[thread] while an fd is registered, the waiting poll(2) call keeps the process alive (documented)', async () => {
    const r = await child('idle-open', 'thread', 700);
    assert.equal(r.killed, true);
  });
}
