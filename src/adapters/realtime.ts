/**
 * The calling thread's scheduling and name. SCHED_RR (as keepalived's vrrp_rt_priority) for
 * the threads that must keep time on a saturated machine (the liveness BEATs, the master's
 * adverts): they wake every few milliseconds for microseconds; refused (a container without
 * CAP_SYS_NICE), the thread runs at the daemon's priority, and the caller says so in its
 * counters. A name (`fwlb-timing`), so that top -H, ps -L and /proc tell the threads apart.
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

const PR_SET_NAME = 15;

/** Names the calling thread (at most 15 bytes kept); false when refused. */
export function nameThread(name: string): boolean {
  try {
    const prctl = koffi.load('libc.so.6').func('int prctl(int, const char *, unsigned long, unsigned long, unsigned long)');
    return prctl(PR_SET_NAME, name.slice(0, 15), 0, 0, 0) === 0;
  } catch {
    return false;
  }
}
