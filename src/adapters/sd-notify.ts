/**
 * systemd's notification socket (sd_notify(3)): datagrams of `KEY=VALUE` lines to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or `@name` in the abstract namespace).
 * Node has no Unix datagram sockets, so through libc. Without $NOTIFY_SOCKET (not started by
 * systemd, or not Type=notify) there is nothing to send to: `openSdNotify` returns undefined.
 *
 * A send that fails (systemd restarting, the socket gone) is counted, never thrown: the
 * daemon does not stop forwarding over its supervisor's socket.
 */
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, errnoName, libc } from './libc.js';

const SUN_PATH_MAX = 108; // sys/un.h: sun_path[108]

/** struct sockaddr_un for a NOTIFY_SOCKET value, and its length (abstract names are not NUL-terminated). */
export function sockaddrUn(name: string): { addr: Buffer; len: number } {
  const abstract = name.startsWith('@');
  const path = Buffer.from(abstract ? name.slice(1) : name, 'utf8');
  if (!name.length || path.length + (abstract ? 1 : 0) >= SUN_PATH_MAX) throw new RangeError(`NOTIFY_SOCKET "${name}" is not a socket name of 1-107 bytes`);
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  path.copy(addr, abstract ? 3 : 2);
  return { addr, len: 2 + (abstract ? 1 + path.length : path.length + 1) };
}

/**
 * The watchdog's period in ms, when systemd asks for one ($WATCHDOG_USEC, and $WATCHDOG_PID
 * naming this process if set): undefined otherwise.
 */
export function watchdogMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec / 1000;
}

export interface SdNotifier {
  send(message: string): void;
  /** Sends that failed, by errno name. */
  readonly failed: Record<string, number>;
  close(): void;
}

export function openSdNotify(env: NodeJS.ProcessEnv = process.env): SdNotifier | undefined {
  const name = env.NOTIFY_SOCKET;
  if (!name) return undefined;
  const { addr, len } = sockaddrUn(name);
  const c = libc();
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw new Error(`sd_notify: socket(AF_UNIX, SOCK_DGRAM): ${errnoName()}`);
  const failed: Record<string, number> = {};
  let open = true;
  return {
    failed,
    send(message: string) {
      if (!open) return;
      const b = Buffer.from(message, 'utf8');
      if (c.sendto(fd, b, b.length, 0, addr, len) !== b.length) {
        const e = errnoName();
        failed[e] = (failed[e] ?? 0) + 1;
      }
    },
    close() {
      if (!open) return;
      open = false;
      c.close(fd);
    },
  };
}
