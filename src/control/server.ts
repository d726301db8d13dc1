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

/** Largest request line accepted; a client sending more is cut off. */
const MAX_LINE = 64 * 1024;

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly path: string, private readonly handlers: Record<string, Handler>, private readonly log: Logger) {}

  async listen(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o755 });
    if (await isLive(this.path)) throw new FwlbError('ERR_CONTROL_IN_USE', `control socket ${this.path} is in use by another running node`);
    // Only a stale socket is removed: a mistyped path must never delete a file.
    const old = await lstat(this.path).catch(() => undefined);
    if (old && !old.isSocket()) throw new FwlbError('ERR_CONTROL_PATH', `${this.path} exists and is not a socket`);
    if (old) await unlink(this.path);
    const server = createServer((s) => this.serve(s));
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

  private serve(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE && !buf.includes('\n')) {
        s.destroy();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.answer(s, line);
      }
    });
  }

  private async answer(s: Socket, line: string): Promise<void> {
    const req = decodeRequest(line);
    let resp: ControlResponse;
    if (!req.ok) {
      resp = { id: -1, ok: false, error: { code: 'ERR_BAD_REQUEST', message: req.reason } };
    } else {
      const h = Object.hasOwn(this.handlers, req.value.cmd) ? this.handlers[req.value.cmd] : undefined;
      if (!h) {
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
    if (!s.destroyed) s.write(JSON.stringify(resp) + '\n');
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    await unlink(this.path).catch(() => undefined);
  }
}

function isLive(path: string): Promise<boolean> {
  return new Promise((res) => {
    const c = createConnection(path);
    c.once('connect', () => { c.destroy(); res(true); });
    c.once('error', () => res(false));
  });
}
