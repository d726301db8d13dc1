/**
 * The advert thread: sends the master's VRRP adverts every advert interval
 * (fsm/vrrp/advert-schedule.ts) on its own event loop, under SCHED_RR, through a duplicate
 * of each interface's raw VRRP socket (the kernel builds the IP header as for the daemon's
 * own sends: TTL 255, our source address, the interface). It owns those duplicates and
 * closes them; the daemon's socket is never touched from here.
 *
 * Messages in: { type: 'set', key, fd, payload, dst, intervalMs, leaseMs } (renews or
 * replaces), { type: 'stop', prefix }, { type: 'close_fd', fd }, { type: 'close' }.
 * Out: { type: 'counters', counters } each second.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { realClock } from '../lib/clock.js';
// realClock is performance.timeOrigin + performance.now(): the same epoch-based milliseconds in
// every thread, so a time the daemon's thread stamped means the same here.
import { AdvertSchedule } from '../fsm/vrrp/advert-schedule.js';
import { errnoName, libc, MSG_DONTWAIT, sockaddrOf } from '../adapters/libc.js';
import { nameThread, realtimeThread } from '../adapters/realtime.js';
import type { AdvertWorkerData, AdvertWorkerMessage } from '../ports/workers.js';

const d = workerData as AdvertWorkerData;
/** Under SCHED_RR once set up (see the end of this file). */
let realtime = false;
const c = libc();
const addrs = new Map<string, Buffer>();
let lastError = '';

const schedule = new AdvertSchedule<number>({
  clock: realClock,
  send: (fd, payload, dst) => {
    let sa = addrs.get(dst);
    // ff02::12 needs no scope: the socket is bound to its device and multicasts on it.
    if (!sa) addrs.set(dst, (sa = sockaddrOf(dst)));
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
    if (c.sendto(fd, buf, buf.length, MSG_DONTWAIT, sa, sa.length) !== buf.length) {
      lastError = errnoName();
      throw new Error(lastError);
    }
  },
});

const report = setInterval(() => parentPort?.postMessage({ type: 'counters', counters: { realtime, ...schedule.timing, lastError } }), 1000);

parentPort?.on('message', (m: AdvertWorkerMessage) => {
  switch (m.type) {
    case 'set':
      schedule.set(m.key, m.fd, m.payload, m.dst, m.intervalMs, m.leaseMs, m.sentAtMs);
      return;
    case 'stop':
      schedule.stop(m.prefix);
      return;
    case 'close_fd':
      schedule.stopCtx(m.fd);
      c.close(m.fd);
      return;
    case 'close':
      schedule.stop();
      clearInterval(report);
      parentPort?.close();
      return;
  }
});

// SCHED_RR only now, set up: a start's work under SCHED_RR takes a CPU from every ordinary
// process for that long.
realtime = realtimeThread(d.realtimePriority);
nameThread('fwlb-advert');
