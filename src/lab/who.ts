/**
 * One short TCP exchange that asks a lab service who answers: connect, send an HTTP GET in
 * `http` mode (nothing in `read` mode, for the whoami port), read up to the server's close,
 * and return the first word of the answer (of the HTTP body), or null on any failure.
 */
import { connect } from 'node:net';

export interface WhoOptions {
  host: string;
  port: number;
  mode: 'read' | 'http';
  timeoutMs: number;
  localPort?: number;
}

export function askWho(o: WhoOptions): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: o.host, port: o.port, ...(o.localPort !== undefined ? { localPort: o.localPort } : {}) });
    const done = (v: string | null) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), o.timeoutMs);
    s.on('connect', () => {
      if (o.mode === 'http') s.write(`GET / HTTP/1.0\r\nHost: ${o.host}\r\n\r\n`);
    });
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const body = o.mode === 'http' ? (text.split('\r\n\r\n')[1] ?? '') : text;
      done(body.trim().split(/\s+/)[0] || null);
    });
    s.on('error', () => done(null));
  });
}
