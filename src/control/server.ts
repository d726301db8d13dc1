/**
 * The local control socket (a Unix stream socket, mode 0600): `fwlb status` and
 * the runtime commands talk to a running node through it.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { decodeRequest, type ControlResponse } from './protocol.js';
import { FwlbError } from '../lib/errors.js';

export type Handler = (args: Record<string, unknown>) => Promise<unknown> | unknown;

/**
 * Bounds of the socket (issue 12): nothing a local client sends can grow the daemon without
 * limit or starve it. A client that does not read its answers is not read from either.
 */
export interface ControlLimits {
  /** Largest request line; a client sending more gets ERR_REQUEST_TOO_LARGE and is cut off. */
  maxLine: number;
  /**
   * Connections served at once. A new one past it takes the place of the served connection
   * that has been idle longest (no request under way, no answer unread), which is cut and
   * counted (`evicted`); only when every served one is busy does it wait, unread.
   */
  maxConnections: number;
  /** Connections waiting for a turn; one more gets ERR_BUSY and is closed. */
  maxWaiting: number;
  /** Requests of one connection being answered at once; past it, reading that connection pauses. */
  maxPending: number;
  /** Bytes of answers waiting for a client to read them; past it, reading that connection pauses. */
  maxUnread: number;
  /** A connection silent this long is closed. */
  idleMs: number;
}

/**
 * At most 64 x (1 MiB unread + 64 KiB line) of memory for the connections served; waiting
 * ones cost a socket each (their requests stay in the kernel).
 */
export const DEFAULT_CONTROL_LIMITS: ControlLimits = { maxLine: 64 * 1024, maxConnections: 64, maxWaiting: 1024, maxPending: 4, maxUnread: 1024 * 1024, idleMs: 60_000 };

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Connections past maxConnections, paused, in arrival order. */
  private readonly waiting: Socket[] = [];
  private readonly limits: ControlLimits;
  /** Refusals and cut-offs, for status. */
  readonly refused = { busy: 0, too_large: 0, idle: 0, evicted: 0, bad_request: 0, unknown_command: 0 };
  /** Served connections: when each last had a request or an answer, and whether one is under way. */
  private readonly activity = new Map<Socket, { lastMs: number; busy: () => boolean }>();
  /** Commands by name: a Map, so no name reaches anything but a handler ("constructor", "__proto__"). */
  private readonly handlers: ReadonlyMap<string, Handler>;

  constructor(
    private readonly path: string,
    handlers: Record<string, Handler>,
    private readonly log: Logger,
    limits: Partial<ControlLimits> = {},
  ) {
    this.handlers = new Map(Object.entries(handlers));
    this.limits = { ...DEFAULT_CONTROL_LIMITS, ...limits };
  }

  /** Connections open now, and the requests refused since the start, by reason (status, metrics). */
  counters(): { connections: number; waiting: number; refused: Record<string, number> } {
    return { connections: this.sockets.size, waiting: this.waiting.length, refused: { ...this.refused } };
  }

  async listen(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o755 });
    if (await isLive(this.path)) throw new FwlbError('ERR_CONTROL_IN_USE', `control socket ${this.path} is in use by another running node`);
    // Only a stale socket is removed: a mistyped path must never delete a file.
    const old = await lstat(this.path).catch(() => undefined);
    if (old && !old.isSocket()) throw new FwlbError('ERR_CONTROL_PATH', `${this.path} exists and is not a socket`);
    if (old) await unlink(this.path);
    const server = createServer((s) => this.admit(s));
    // Created 0600 from the start (umask), not opened up and then closed down.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(this.path, () => res());
      });
    } finally {
      process.umask(umask);
    }
    await chmod(this.path, 0o600);
    this.server = server;
  }

  /**
   * A new connection: served now if there is room, or if a served connection is idle (the
   * one idle longest is cut to make room: connections held open and silent never starve a
   * new `fwlb status`); else held unread (its requests wait in the kernel) until a served one
   * closes or goes idle; past maxWaiting, refused with ERR_BUSY. 500 monitoring clients at
   * once are all answered, 64 at a time.
   */
  private admit(s: Socket): void {
    s.on('error', () => undefined);
    if (this.sockets.size >= this.limits.maxConnections) this.evictIdle();
    if (this.sockets.size < this.limits.maxConnections) {
      this.serve(s);
      return;
    }
    if (this.waiting.length >= this.limits.maxWaiting) {
      this.refused.busy++;
      s.end(JSON.stringify(refusal('ERR_BUSY', `too many control connections (${this.limits.maxConnections + this.limits.maxWaiting}): try again`)) + '\n');
      return;
    }
    s.pause();
    this.waiting.push(s);
    s.once('close', () => {
      const i = this.waiting.indexOf(s);
      if (i >= 0) this.waiting.splice(i, 1);
    });
  }

  /**
   * Cuts the served connection idle longest, if one is idle, to make room. The cut is
   * counted and said to the client (ERR_IDLE), so a monitoring system that holds a
   * connection open learns why it was closed. Returns whether one was cut.
   */
  private evictIdle(): boolean {
    let oldest: Socket | undefined;
    let oldestMs = Infinity;
    for (const [sock, a] of this.activity) {
      if (sock.destroyed || a.busy()) continue;
      if (a.lastMs < oldestMs) {
        oldest = sock;
        oldestMs = a.lastMs;
      }
    }
    if (!oldest) return false;
    this.refused.evicted++;
    // Out of the served set now (its close comes later): the room is the new one's.
    this.activity.delete(oldest);
    this.sockets.delete(oldest);
    oldest.end(JSON.stringify(refusal('ERR_IDLE', `closed to make room: ${this.limits.maxConnections} control connections served, this one idle the longest`)) + '\n');
    oldest.destroySoon();
    return true;
  }

  /** A served connection closed or went idle: the longest waiting ones take their places. */
  private next(): void {
    while (this.waiting.length > 0) {
      if (this.sockets.size >= this.limits.maxConnections && !this.evictIdle()) return;
      const w = this.waiting.shift()!;
      if (!w.destroyed) this.serve(w);
    }
  }

  private serve(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => {
      this.activity.delete(s);
      if (this.sockets.delete(s)) this.next();
    });
    s.setTimeout(this.limits.idleMs, () => {
      this.refused.idle++;
      s.end(JSON.stringify(refusal('ERR_IDLE', `no request for ${this.limits.idleMs} ms: closed`)) + '\n');
    });
    let buf = '';
    const lines: string[] = [];
    let pending = 0;
    const act = { lastMs: performance.now(), busy: () => pending > 0 || lines.length > 0 || buf.length > 0 || s.writableLength > 0 };
    this.activity.set(s, act);
    // Reading stops while the connection has its share of requests under way, or while its
    // answers wait unread; it resumes as they finish and drain.
    const pump = () => {
      while (lines.length > 0 && pending < this.limits.maxPending && s.writableLength <= this.limits.maxUnread) {
        const line = lines.shift()!;
        pending++;
        void this.answer(s, line).finally(() => {
          pending--;
          act.lastMs = performance.now();
          pump();
          // Idle again: a connection waiting for a turn may take this one's place.
          if (this.waiting.length > 0 && !act.busy()) this.next();
        });
      }
      const full = lines.length > 0 || pending >= this.limits.maxPending || s.writableLength > this.limits.maxUnread;
      if (full && !s.isPaused()) s.pause();
      else if (!full && s.isPaused()) s.resume();
    };
    s.on('drain', pump);
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      act.lastMs = performance.now();
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      if (buf.length > this.limits.maxLine) {
        this.refused.too_large++;
        s.end(JSON.stringify(refusal('ERR_REQUEST_TOO_LARGE', `a request line of more than ${this.limits.maxLine} bytes`)) + '\n');
        s.destroySoon();
        lines.length = 0;
        return;
      }
      pump();
    });
    // A connection that waited was paused: read what it sent meanwhile.
    if (s.isPaused()) s.resume();
  }

  private async answer(s: Socket, line: string): Promise<void> {
    const req = decodeRequest(line);
    let resp: ControlResponse;
    if (!req.ok) {
      this.refused.bad_request++;
      resp = { id: -1, ok: false, error: { code: 'ERR_BAD_REQUEST', message: req.reason } };
    } else {
      const h = this.handlers.get(req.value.cmd);
      if (!h) {
        this.refused.unknown_command++;
        resp = { id: req.value.id, ok: false, error: { code: 'ERR_UNKNOWN_COMMAND', message: `unknown command "${req.value.cmd}"` } };
      } else {
        try {
          resp = { id: req.value.id, ok: true, result: await h(req.value.args ?? {}) };
        } catch (e) {
          const err = e as Error & { code?: string };
          resp = { id: req.value.id, ok: false, error: { code: err.code ?? 'ERR_INTERNAL', message: err.message } };
          this.log.warn({ cmd: req.value.cmd, err: err.message }, 'control command failed');
        }
      }
    }
    if (!s.destroyed && s.writable) s.write(JSON.stringify(resp) + '\n');
  }

  async close(): Promise<void> {
    for (const s of this.waiting.splice(0)) s.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    await unlink(this.path).catch(() => undefined);
  }
}

function refusal(code: string, message: string): ControlResponse {
  return { id: -1, ok: false, error: { code, message } };
}

function isLive(path: string): Promise<boolean> {
  return new Promise((res) => {
    const c = createConnection(path);
    c.once('connect', () => { c.destroy(); res(true); });
    c.once('error', () => res(false));
  });
}
