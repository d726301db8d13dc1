/**
 * SCHED_RR for the calling thread (as keepalived's vrrp_rt_priority): for the threads that
 * must keep time on a saturated machine (the liveness BEATs, the master's adverts). They
 * wake every few milliseconds for microseconds. Refused (a container without CAP_SYS_NICE):
 * the thread runs at the daemon's priority, and the caller says so in its counters.
 */
import koffi from 'koffi';

const SCHED_RR = 2;

/** Puts the calling thread under SCHED_RR at `priority` (1..99); false when refused. */
export function realtimeThread(priority: number): boolean {
  try {
    const lib = koffi.load('libc.so.6');
    const gettid = lib.func('int gettid(void)');
    const setsched = lib.func('int sched_setscheduler(int, int, void *)');
    const param = Buffer.alloc(4);
    param.writeInt32LE(priority, 0);
    return setsched(gettid(), SCHED_RR, param) === 0;
  } catch {
    return false;
  }
}
