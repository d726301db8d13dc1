/**
 * The daemon's logger: JSON lines (pino) written synchronously to stdout, or to `fd`.
 *
 * Synchronous on purpose. pino's default destination writes asynchronously (a write on
 * libuv's thread pool, and lines logged meanwhile held in memory until it returns), so a
 * status answered on the main thread could count an event whose log line was not yet in
 * the file: a failed SIGHUP reload was counted while its `reload_failed` line was missing
 * (issue 20). Written synchronously, a line is in the file (or the pipe) before anything
 * that follows it in the code, a counter read by `fwlb status` included, and a crash loses
 * no line already logged. The daemon logs events, not packets: a few lines a second.
 */
import { pino, type Logger } from 'pino';

export function createLogger(level: string, fd = 1): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: fd, sync: true }));
}
