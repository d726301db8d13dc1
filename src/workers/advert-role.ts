/**
 * The advert half of the timing thread (workers/timing.ts): sends the master's VRRP adverts
 * every advert interval (fsm/vrrp/advert-schedule.ts) through a duplicate of each interface's
 * raw VRRP socket (the kernel builds the IP header as for the daemon's own sends: TTL 255,
 * our source address, the interface). It owns those duplicates and closes them; the daemon's
 * socket is never touched from here.
 *
 * Messages in: { type: 'set', key, fd, payload, dst, intervalMs, leaseMs } (renews or
 * replaces), { type: 'stop', prefix }, { type: 'close_fd', fd }, { type: 'close' }.
 * Out: { type: 'counters', counters } when they changed, looked at no more than once a second,
 * after a send or a message (no timer of its own: a backup's thread sleeps).
 */
import { realClock } from '../lib/clock.js';
import { changeReporter } from '../lib/change-reporter.js';
// realClock is performance.timeOrigin + performance.now(): the same epoch-based milliseconds in
// every thread, so a time the daemon's thread stamped means the same here.
import { AdvertSchedule, type AdvertTiming } from '../fsm/vrrp/advert-schedule.js';
import { errnoName, libc, MSG_DONTWAIT, sockaddrOf } from '../adapters/libc.js';
import type { AdvertWorkerMessage } from '../ports/workers.js';

export interface AdvertRole {
  onMessage(m: AdvertWorkerMessage): void;
}

export function startAdverts(post: (m: { type: 'counters'; counters: AdvertTiming & { realtime: boolean; lastError: string } }) => void, realtime: () => boolean): AdvertRole {
  const c = libc();
  const addrs = new Map<string, Buffer>();
  let lastError = '';
  const reportChange = changeReporter(realClock, 1000, (counters: AdvertTiming & { realtime: boolean; lastError: string }) => post({ type: 'counters', counters }));
  const report = () => reportChange(() => ({ realtime: realtime(), ...schedule.timing, lastError }));
  const schedule: AdvertSchedule<number> = new AdvertSchedule<number>({
    clock: realClock,
    send: (fd, payload, dst) => {
      let sa = addrs.get(dst);
      // ff02::12 needs no scope: the socket is bound to its device and multicasts on it.
      if (!sa) addrs.set(dst, (sa = sockaddrOf(dst)));
      const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
      const ok = c.sendto(fd, buf, buf.length, MSG_DONTWAIT, sa, sa.length) === buf.length;
      if (!ok) lastError = errnoName();
      report();
      if (!ok) throw new Error(lastError);
    },
  });
  return {
    onMessage: (m) => {
      report();
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
          return;
      }
    },
  };
}
