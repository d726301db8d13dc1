/**
 * The lab's stand-in for systemd's notification socket (sd_notify(3)): a Unix datagram
 * socket bound at a path, read every few milliseconds from this process (no blocking call),
 * each datagram kept with the time it was read. Give a daemon NOTIFY_SOCKET=<path> and read
 * `messages`.
 */
import { rmSync } from 'node:fs';
import { sockaddrUn } from '../adapters/sd-notify.js';
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, errnoName, libc } from '../adapters/libc.js';

export interface NotifyMessage {
  /** performance.now() when read. */
  at: number;
  text: string;
  /** The KEY=VALUE lines as a record (the last value of a key repeated). */
  fields: Record<string, string>;
}

export function listenNotify(path: string, everyMs = 5): { messages: NotifyMessage[]; close(): void } {
  const c = libc();
  rmSync(path, { force: true });
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket(AF_UNIX, SOCK_DGRAM): ${errnoName()}`);
  const { addr, len } = sockaddrUn(path);
  if (c.bind(fd, addr, len) < 0) {
    const e = errnoName();
    c.close(fd);
    throw new Error(`bind ${path}: ${e}`);
  }
  const messages: NotifyMessage[] = [];
  const buf = Buffer.alloc(65536);
  const timer = setInterval(() => {
    for (;;) {
      const n = Number(c.recvfrom(fd, buf, buf.length, 0, null, null));
      if (n < 0) return; // EAGAIN: nothing more now
      const text = buf.toString('utf8', 0, n);
      const fields: Record<string, string> = {};
      for (const line of text.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
      }
      messages.push({ at: performance.now(), text, fields });
    }
  }, everyMs);
  return {
    messages,
    close() {
      clearInterval(timer);
      c.close(fd);
      rmSync(path, { force: true });
    },
  };
}
