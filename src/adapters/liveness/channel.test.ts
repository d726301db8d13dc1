/**
 * The liveness channel over a stand-in timing thread (no root, no worker): a thread that dies
 * leaves its sockets to the process, which closes them (real descriptors, checked with fstat)
 * and starts the liveness again at once, within a budget of restarts a minute; a stopped
 * channel starts nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, openSync } from 'node:fs';
import { LivenessWorker, type ChannelEvent } from './channel.js';
import type { TimingThread } from '../timing-thread.js';
import type { TimingIn } from '../../ports/workers.js';

function fakeThread() {
  const posted: TimingIn[] = [];
  let listener: { message(m: unknown): void; died(why: string): void } | undefined;
  const thread = {
    acquire: (_role: string, on: typeof listener) => void (listener = on),
    post: (m: TimingIn) => void posted.push(m),
    release: () => undefined,
    running: true,
  } as unknown as TimingThread;
  return { thread, posted, message: (m: unknown) => listener!.message(m), die: (why: string) => listener!.died(why) };
}

const DATA = { selfId: 0, links: ['198.18.2.1'], port: 3781, key: new Uint8Array(32), intervalMs: 15, multiplier: 5, mainStallMs: 300, peers: [{ name: 'fw2', id: 1, addresses: ['198.18.2.2'] }] };
const starts = (posted: TimingIn[]) => posted.filter((m) => m.role === 'liveness' && m.m.type === 'start').length;
const isOpen = (fd: number) => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

test('a timing thread that dies: its sockets are closed, the liveness starts again at once, three times a minute at most', () => {
  const t = fakeThread();
  const ch = new LivenessWorker(DATA, t.thread);
  const events: ChannelEvent[] = [];
  ch.start((e) => events.push(e));
  assert.equal(starts(t.posted), 1);
  for (let i = 1; i <= 4; i++) {
    const fd = openSync('/dev/null', 'r');
    t.message({ type: 'fds', fds: [fd] });
    t.die(`boom ${i}`);
    assert.equal(isOpen(fd), false, `death ${i}: the dead thread's socket is closed`);
    assert.deepEqual(events.at(-1), { type: 'error', message: `boom ${i}`, restarted: i <= 3 });
  }
  assert.equal(starts(t.posted), 4, 'the first start and three restarts');
  ch.stop();
});

test('a thread that dies after the channel stopped is not started again; events pass through', () => {
  const t = fakeThread();
  const ch = new LivenessWorker(DATA, t.thread);
  const events: ChannelEvent[] = [];
  ch.start((e) => events.push(e));
  t.message({ type: 'own_behind', behind: true, why: 'fw2 says we lag 1500 ms behind its changes' });
  assert.deepEqual(events, [{ type: 'own_behind', behind: true, why: 'fw2 says we lag 1500 ms behind its changes' }]);
  ch.stop();
  t.die('late');
  assert.equal(starts(t.posted), 1);
  assert.deepEqual(events.at(-1), { type: 'error', message: 'late', restarted: false });
});
