/**
 * Config distribution over TCP between the nodes' sync addresses (issue 24): a listener that
 * takes one signed request frame per connection and answers it with one signed reply, and a
 * client that sends one request and waits for its reply (codec/config/frame.ts).
 *
 * A connection from an address that is not a peer's is closed at once; one that sends
 * garbage (a frame refused: not ours, too long, a bad HMAC) is closed and counted by reason;
 * one that stays silent is closed after `idleMs`. Connections at once are bounded, so a
 * flood of them cannot take the daemon's memory; the ruleset lets only the peers in anyway.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { encodeFrame, FrameReader, FrameType, FRAME_NONCE_LEN, type Frame, type FrameReject } from '../codec/config/frame.js';

/** A link-local IPv6 address needs its interface: "fe80::1%eth2". */
export function scopedHost(address: string, ifname: string): string {
  return /^fe80:/i.test(address) && !address.includes('%') ? `${address}%${ifname}` : address;
}

/** The address as the socket reports it, without scope and IPv4-mapped prefix. */
const bare = (a: string | undefined) => (a ?? '').replace(/%.*$/, '').replace(/^::ffff:(?=\d+\.)/, '').toLowerCase();

export interface ConfigLinkListener {
  close(): Promise<void>;
  counters(): { connections: number; refused: Record<string, number> };
}

export interface ListenOptions {
  host: string;
  port: number;
  key: Buffer;
  /** The peers' addresses: nobody else is answered. */
  peers: readonly string[];
  /** Answers a request: the reply's type and payload (the nonce is the request's). */
  handle: (f: Frame, from: string) => Promise<Buffer>;
  /** Whatever the reason a connection was refused (also counted). */
  onRefused?: (reason: FrameReject | 'not_peer' | 'idle' | 'not_request', from: string) => void;
  idleMs?: number;
  maxConnections?: number;
}

export function listenConfigLink(o: ListenOptions): Promise<ConfigLinkListener> {
  const peers = new Set(o.peers.map((p) => bare(p)));
  const refused: Record<string, number> = {};
  let connections = 0;
  const refuse = (s: Socket, reason: FrameReject | 'not_peer' | 'idle' | 'not_request') => {
    refused[reason] = (refused[reason] ?? 0) + 1;
    o.onRefused?.(reason, bare(s.remoteAddress));
    s.destroy();
  };
  const server: Server = createServer((s) => {
    connections++;
    const from = bare(s.remoteAddress);
    if (!peers.has(from)) return refuse(s, 'not_peer');
    s.setTimeout(o.idleMs ?? 10_000, () => refuse(s, 'idle'));
    s.on('error', () => s.destroy());
    const reader = new FrameReader(o.key);
    let answered = false;
    s.on('data', (chunk: Buffer) => {
      if (answered) return;
      const r = reader.push(chunk);
      if (!r.ok) return refuse(s, r.reason);
      const f = r.frames[0];
      if (!f) return;
      answered = true;
      if (f.type === FrameType.REPLY) return refuse(s, 'not_request');
      void o.handle(f, from).then(
        (payload) => s.end(encodeFrame(o.key, { type: FrameType.REPLY, nonce: f.nonce, payload })),
        () => s.destroy(),
      );
    });
  });
  server.maxConnections = o.maxConnections ?? 16;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host, port: o.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve({
        close: () => new Promise<void>((r) => server.close(() => r())),
        counters: () => ({ connections, refused: { ...refused } }),
      });
    });
  });
}

/** How long a connection to a peer may take to open (the sync link is one segment). */
export const CONNECT_TIMEOUT_MS = 1000;

/** Why a request got no usable reply. */
export class ConfigLinkError extends Error {
  constructor(
    readonly reason: 'unreachable' | 'timeout' | 'bad_reply',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Sends one request to a peer and resolves its reply's payload. Rejects (ConfigLinkError)
 * when the peer cannot be reached, does not answer within `timeoutMs`, or answers with
 * anything but a signed reply to this request.
 */
export function requestConfigLink(o: { host: string; port: number; key: Buffer; type: FrameType; payload: Buffer; timeoutMs: number; localAddress?: string }): Promise<Buffer> {
  const nonce = randomBytes(FRAME_NONCE_LEN);
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: o.host, port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    const reader = new FrameReader(o.key);
    let done = false;
    const finish = (err: ConfigLinkError | undefined, payload?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(connecting);
      s.destroy();
      if (err) reject(err);
      else resolve(payload!);
    };
    const timer = setTimeout(() => finish(new ConfigLinkError('timeout', `no answer from ${o.host} within ${o.timeoutMs} ms`)), o.timeoutMs);
    // A peer on the sync link answers a SYN at once; one that does not is away (down, cut off).
    const connecting = setTimeout(() => finish(new ConfigLinkError('unreachable', `${o.host}: no connection within ${CONNECT_TIMEOUT_MS} ms`)), Math.min(CONNECT_TIMEOUT_MS, o.timeoutMs));
    s.on('connect', () => {
      clearTimeout(connecting);
      s.write(encodeFrame(o.key, { type: o.type, nonce, payload: o.payload }));
    });
    s.on('error', (e) => finish(new ConfigLinkError('unreachable', `${o.host}: ${e.message}`)));
    s.on('close', () => finish(new ConfigLinkError('unreachable', `${o.host} closed the connection without an answer`)));
    s.on('data', (chunk: Buffer) => {
      const r = reader.push(chunk);
      if (!r.ok) return finish(new ConfigLinkError('bad_reply', `${o.host} answered with a frame refused: ${r.reason}`));
      const f = r.frames[0];
      if (!f) return;
      if (f.type !== FrameType.REPLY || !f.nonce.equals(nonce)) return finish(new ConfigLinkError('bad_reply', `${o.host} answered with something other than the reply to this request`));
      finish(undefined, f.payload);
    });
  });
}
