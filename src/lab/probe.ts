/**
 * A one-shot traffic probe run inside a lab namespace (the lab has no socat or nc):
 *
 *   node probe.js echo HOST PORT PAYLOAD   TCP: send PAYLOAD, print what comes back (as many bytes)
 *   node probe.js read HOST PORT           TCP: print everything until the server closes (whoami)
 *   node probe.js udp  HOST PORT PAYLOAD   UDP: send PAYLOAD, print the first reply
 *   node probe.js http URL                 HTTP GET: print the body; exit 1 unless 200
 *   node probe.js connect HOST PORT        TCP connect: print "connected", "refused" (a RST came back),
 *                                          "unreachable" (an ICMP error) or "timeout" (nothing at all);
 *                                          exit 0 in every case: the outcome is the answer
 *
 * Options: --timeout MS (default 2000). Exit 0 on success, 1 on failure or timeout, with
 * the reason on stderr.
 */
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { connect } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** TCP: connect, optionally write `send`, collect until `want` bytes arrived or the peer closed. */
export function tcpExchange(host: string, port: number, send: string | null, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const want = send === null ? Infinity : Buffer.byteLength(send);
    const chunks: Buffer[] = [];
    let got = 0;
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`tcp ${host}:${port}: timeout after ${timeoutMs} ms (got ${got} bytes)`));
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks).toString());
    };
    s.on('connect', () => { if (send !== null) s.write(send); });
    s.on('data', (b: Buffer) => {
      chunks.push(b);
      got += b.length;
      if (got >= want) finish();
    });
    s.on('end', finish);
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`tcp ${host}:${port}: ${e.message}`));
    });
  });
}

export type ConnectOutcome = 'connected' | 'refused' | 'unreachable' | 'timeout';

/** TCP: only the handshake, classified by what came back. */
export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (o: ConnectOutcome) => {
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.on('connect', () => done('connected'));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'unreachable'));
  });
}

export function udpExchange(host: string, port: number, send: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`udp ${host}:${port}: no reply after ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('message', (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(msg.toString());
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      s.close();
      reject(new Error(`udp ${host}:${port}: ${e.message}`));
    });
    s.send(send, port, host);
  });
}

export function httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error(`http ${url}: timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { timeout: { type: 'string', default: '2000' } }, allowPositionals: true });
  const timeout = Number(values.timeout);
  const [mode, a, b, c] = positionals;
  let out: string;
  switch (mode) {
    case 'echo':
      out = await tcpExchange(a ?? '', Number(b), c ?? '', timeout);
      break;
    case 'read':
      out = await tcpExchange(a ?? '', Number(b), null, timeout);
      break;
    case 'connect':
      out = (await tcpConnect(a ?? '', Number(b), timeout)) + '\n';
      break;
    case 'udp':
      out = await udpExchange(a ?? '', Number(b), c ?? '', timeout);
      break;
    case 'http': {
      const r = await httpGet(a ?? '', timeout);
      if (r.status !== 200) throw new Error(`http ${a}: status ${r.status}`);
      out = r.body;
      break;
    }
    default:
      throw new Error('usage: probe.js echo|read|udp|http ... (see the source header)');
  }
  process.stdout.write(out);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: Error) => {
    process.stderr.write(`probe: ${e.message}\n`);
    process.exitCode = 1;
  });
}
