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
 * Bounds of the socket (issue 12, issue 20): nothing a local client sends can grow the daemon
 * without limit or starve it. A client that does not read its answers is not read from either.
 */
export interface ControlLimits {
  /** Largest request line; a client sending more gets ERR_REQUEST_TOO_LARGE and is cut off. */
  maxLine: number;
  /**
   * Connections open at once. A new one past it takes the place of the connection idle
   * longest (no request under way or waiting, no answer unread), which is cut with ERR_IDLE
   * and counted (`evicted`); with none idle, the new one gets ERR_BUSY.
   */
  maxConnections: number;
  /**
   * Connections being answered at once (a request read and under way, or answers unread).
   * Past it, a connection with a request waits its turn unread (its requests stay in the
   * kernel): memory is bounded by maxActive x (maxUnread + maxLine), however many are open.
   */
  maxActive: number;
  /** Requests of one connection being answered at once; past it, reading that connection pauses. */
  maxPending: number;
  /** Bytes of answers waiting for a client to read them; past it, reading that connection pauses. */
  maxUnread: number;
  /** A connection silent this long is closed. */
  idleMs: number;
}

/**
 * At most 64 x (1 MiB unread + 64 KiB line) of memory for the connections being answered; an
 * open idle one costs a socket and a partial line (at most 64 KiB).
 */
/** Connections the kernel queues for the control socket before the daemon accepts them. */
export const CONTROL_BACKLOG = 4096;

export const DEFAULT_CONTROL_LIMITS: ControlLimits = { maxLine: 64 * 1024, maxConnections: 1024, maxActive: 64, maxPending: 4, maxUnread: 1024 * 1024, idleMs: 60_000 };

interface Conn {
  sock: Socket;
  /** When it last sent a request or was answered (or was accepted). */
  lastMs: number;
  /** Holds one of the maxActive turns. */
  active: boolean;
  /** Waits for a turn (paused, with a request read). */
  waiting: boolean;
  /** Has a request to answer, or an answer being made or unread. */
  busy(): boolean;
  /** Goes on reading and answering (it was given a turn). */
  pump(): void;
}

export class ControlServer {
  private server: Server | undefined;
  private readonly conns = new Map<Socket, Conn>();
  /** Connections with a request waiting for a turn, in arrival order. */
  private readonly turnQueue: Conn[] = [];
  private activeCount = 0;
  private readonly limits: ControlLimits;
  /** Refusals and cut-offs, for status. */
  readonly refused = { busy: 0, too_large: 0, idle: 0, evicted: 0, bad_request: 0, unknown_command: 0 };
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

  /** Connections open now, those waiting for a turn, and the requests refused since the start, by reason (status, metrics). */
  counters(): { connections: number; waiting: number; refused: Record<string, number> } {
    return { connections: this.conns.size, waiting: this.turnQueue.length, refused: { ...this.refused } };
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
        // A backlog for a burst of clients at once (1,000 monitoring agents, a connection
        // flood): Node's default of 511 made the 512th connect of a burst fail with EAGAIN
        // while the loop was busy (a Unix socket refuses, it does not wait). The kernel caps
        // it at net.core.somaxconn (4096 by default).
        server.listen({ path: this.path, backlog: CONTROL_BACKLOG }, () => res());
      });
    } finally {
      process.umask(umask);
    }
    await chmod(this.path, 0o600);
    this.server = server;
  }

  /**
   * A new connection: served if there is room, or if an open one is idle (the one idle
   * longest is cut to make room: connections held open and silent never starve a new
   * `fwlb status`); else refused with ERR_BUSY. 500 monitoring clients at once are all
   * answered, 64 at a time.
   */
  private admit(s: Socket): void {
    s.on('error', () => undefined);
    if (this.conns.size >= this.limits.maxConnections && !this.evictIdle()) {
      this.refused.busy++;
      s.end(JSON.stringify(refusal('ERR_BUSY', `too many control connections (${this.limits.maxConnections}), none idle: try again`)) + '\n');
      return;
    }
    this.serve(s);
  }

  /** Cuts the open connection idle longest, if one is idle; says why to its client and counts it. */
  private evictIdle(): boolean {
    let oldest: Conn | undefined;
    for (const c of this.conns.values()) {
      if (c.sock.destroyed || c.busy()) continue;
      if (!oldest || c.lastMs < oldest.lastMs) oldest = c;
    }
    if (!oldest) return false;
    this.refused.evicted++;
    this.forget(oldest);
    oldest.sock.end(JSON.stringify(refusal('ERR_IDLE', `closed to make room: ${this.limits.maxConnections} control connections open, this one idle the longest`)) + '\n');
    oldest.sock.destroySoon();
    return true;
  }

  /** A connection leaves (closed, or cut): its turn, if it had one, goes to the next waiting. */
  private forget(c: Conn): void {
    if (!this.conns.delete(c.sock)) return;
    if (c.waiting) {
      const i = this.turnQueue.indexOf(c);
      if (i >= 0) this.turnQueue.splice(i, 1);
      c.waiting = false;
    }
    if (c.active) this.release(c);
  }

  /** Gives a turn back; the longest waiting connection takes it. */
  private release(c: Conn): void {
    c.active = false;
    this.activeCount--;
    while (this.activeCount < this.limits.maxActive && this.turnQueue.length > 0) {
      const w = this.turnQueue.shift()!;
      w.waiting = false;
      if (w.sock.destroyed) continue;
      w.active = true;
      this.activeCount++;
      w.pump();
    }
  }

  private serve(s: Socket): void {
    s.setTimeout(this.limits.idleMs, () => {
      this.refused.idle++;
      s.end(JSON.stringify(refusal('ERR_IDLE', `no request for ${this.limits.idleMs} ms: closed`)) + '\n');
    });
    let buf = '';
    const lines: string[] = [];
    let pending = 0;
    const c: Conn = {
      sock: s,
      lastMs: performance.now(),
      active: false,
      waiting: false,
      busy: () => pending > 0 || lines.length > 0 || buf.length > 0 || s.writableLength > 0 || c.waiting,
      pump: () => pump(),
    };
    this.conns.set(s, c);
    s.on('close', () => this.forget(c));
    // Reading stops while the connection waits for a turn, has its share of requests under
    // way, or has answers waiting unread; it resumes as they finish and drain.
    const pump = () => {
      if (!this.conns.has(s)) return;
      if (lines.length > 0 && !c.active) {
        if (this.activeCount < this.limits.maxActive) {
          c.active = true;
          this.activeCount++;
        } else if (!c.waiting) {
          c.waiting = true;
          this.turnQueue.push(c);
        }
      }
      while (c.active && lines.length > 0 && pending < this.limits.maxPending && s.writableLength <= this.limits.maxUnread) {
        const line = lines.shift()!;
        pending++;
        void this.answer(s, line).finally(() => {
          pending--;
          c.lastMs = performance.now();
          pump();
        });
      }
      // Done with its turn: nothing to answer, nothing under way, nothing unread.
      if (c.active && lines.length === 0 && pending === 0 && s.writableLength === 0) this.release(c);
      const full = lines.length > 0 || pending >= this.limits.maxPending || s.writableLength > this.limits.maxUnread;
      if (full && !s.isPaused()) s.pause();
      else if (!full && s.isPaused()) s.resume();
    };
    s.on('drain', pump);
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      c.lastMs = performance.now();
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
        this.forget(c);
        return;
      }
      pump();
    });
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
    this.turnQueue.length = 0;
    for (const s of this.conns.keys()) s.destroy();
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
