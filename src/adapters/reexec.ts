/**
 * The daemon runs with V8's garbage collector on its own threads only (`--single-threaded-gc`).
 *
 * Why: the threads that keep time (liveness BEATs, adverts) run SCHED_RR, and a V8 isolate's
 * garbage collection waits for V8's helper threads, which are ordinary threads. On a busy
 * machine those helpers starve, and a real-time thread waits in its own GC for hundreds of
 * milliseconds: its peers declare it gone. Measured on the sharing lab (three nodes, 3,600
 * flows, a message per flow every 500 ms): 16-18 false "peer gone (silent)" verdicts and a
 * BEAT timer up to 710 ms late with V8's default; 0-2 and at most 47 ms with this flag.
 *
 * Node refuses the flag in NODE_OPTIONS and crashes when it is set at run time
 * (`v8.setFlagsFromString`), so a daemon started without it replaces itself (execve(2): the
 * same PID, stdio and environment) with `node --single-threaded-gc <the same arguments>`.
 * The `fwlb` command's first line passes the flag already; this catches `node main.js run`.
 * FWLB_CONCURRENT_GC=1 keeps V8's default (for benchmarks that compare the two).
 */
import koffi from 'koffi';

export const GC_FLAG = '--single-threaded-gc';

/** The argument vector that runs this process again with `flags` first (pure; tested). */
export function reexecArgv(execPath: string, execArgv: readonly string[], argv: readonly string[], flags: readonly string[]): string[] {
  const missing = flags.filter((f) => !execArgv.includes(f));
  return [execPath, ...missing, ...execArgv, ...argv.slice(1)];
}

/**
 * Replaces this process with one that has `flags` among node's options, unless it has them
 * already or FWLB_CONCURRENT_GC=1. Returns only when nothing was to be done or execve
 * failed (then the reason, and the daemon runs on as it is).
 */
export function ensureNodeFlags(flags: readonly string[] = [GC_FLAG]): string | null {
  if (flags.every((f) => process.execArgv.includes(f))) return null;
  if (process.env.FWLB_CONCURRENT_GC === '1') return 'FWLB_CONCURRENT_GC=1';
  try {
    const lib = koffi.load('libc.so.6');
    const fcntl = lib.func('int fcntl(int, int, int)');
    const execve = lib.func('int execve(const char *path, const char **argv, const char **envp)');
    // Node marks stdin, stdout and stderr close-on-exec at start; the new image needs them.
    const F_SETFD = 2;
    for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 0);
    const argv = reexecArgv(process.execPath, process.execArgv, process.argv, flags);
    const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
    execve(process.execPath, [...argv, null], [...env, null]);
    return `execve ${process.execPath} failed: errno ${koffi.errno()}`;
  } catch (e) {
    return `execve not available: ${(e as Error).message}`;
  }
}
