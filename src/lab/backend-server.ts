/**
 * The lab's service host, run in every client and web namespace:
 *
 *   ip netns exec P-web1 node dist/src/lab/backend-server.js --name web1 [--ready FILE]
 *
 * - HTTP on 80: `GET /healthz` -> 200 `ok`; any other path -> 200 `web1 <ip>:<port>\n`
 *   (the client address this server saw; keep-alive, so wrk measures the data plane).
 * - TCP echo on 7: every byte back, for long-lived session tests.
 * - TCP whoami on 8: writes `web1 <ip>:<port>\n`, then closes.
 * - UDP on 7: replies `web1 <payload>`.
 *
 * Logs lifecycle events as JSON lines on stdout (the lab redirects it to a file); nothing
 * per request. Once every socket listens it writes `--ready FILE` (its PID). SIGTERM and
 * SIGINT exit 0.
 */
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export interface BackendOptions {
  name: string;
  bind: string;
  httpPort: number;
  echoPort: number;
  whoamiPort: number;
  udpPort: number;
}

type Log = (event: string, fields?: Record<string, unknown>) => void;

function peer(s: Socket): string {
  return `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
}

function listen(server: HttpServer | TcpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...(host === '::' ? { ipv6Only: true } : {}) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The four services on one address (`::`: IPv6 only, beside the IPv4 ones). */
async function serve(o: BackendOptions, host: string, log: Log): Promise<() => void> {
  const http = createHttpServer({ keepAlive: true }, (req, res) => {
    const body = req.url === '/healthz' ? 'ok' : `${o.name} ${peer(req.socket)}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  http.keepAliveTimeout = 60_000;
  http.headersTimeout = 65_000;

  const echo = createTcpServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  const whoami = createTcpServer((s) => {
    s.on('error', () => s.destroy());
    s.end(`${o.name} ${peer(s)}\n`);
  });
  const udp = host === '::' ? createSocket({ type: 'udp6', ipv6Only: true }) : createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    udp.send(Buffer.concat([Buffer.from(`${o.name} `), msg]), rinfo.port, rinfo.address);
  });
  for (const s of [http, echo, whoami]) s.on('error', (e) => log('error', { error: e.message }));

  await Promise.all([
    listen(http, o.httpPort, host),
    listen(echo, o.echoPort, host),
    listen(whoami, o.whoamiPort, host),
    new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(o.udpPort, host, () => {
        udp.off('error', reject);
        udp.on('error', (e) => log('error', { error: e.message }));
        resolve();
      });
    }),
  ]);
  return () => {
    http.closeAllConnections();
    for (const s of [http, echo, whoami]) s.close();
    udp.close();
  };
}

/**
 * Starts all four services; resolves once they all listen. Returns a closer. Bound to every
 * address (the default), they answer over IPv6 too (the dual-stack lab), on sockets of their
 * own so that IPv4 peers keep their plain addresses.
 */
export async function startBackend(o: BackendOptions, log: Log): Promise<() => void> {
  const closers = [await serve(o, o.bind, log)];
  if (o.bind === '0.0.0.0') {
    try {
      closers.push(await serve(o, '::', log));
    } catch (e) {
      log('no_ipv6', { error: (e as Error).message });
    }
  }
  return () => closers.forEach((c) => c());
}

function main(): void {
  const { values } = parseArgs({
    options: {
      name: { type: 'string' },
      ready: { type: 'string' },
      bind: { type: 'string', default: '0.0.0.0' },
      'http-port': { type: 'string', default: '80' },
      'echo-port': { type: 'string', default: '7' },
      'whoami-port': { type: 'string', default: '8' },
      'udp-port': { type: 'string', default: '7' },
    },
    strict: true,
  });
  if (!values.name) {
    process.stderr.write('backend-server: --name is required\n');
    process.exit(2);
  }
  const name = values.name;
  const log: Log = (event, fields = {}) =>
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), name, pid: process.pid, event, ...fields }) + '\n');
  const opts: BackendOptions = {
    name,
    bind: values.bind,
    httpPort: Number(values['http-port']),
    echoPort: Number(values['echo-port']),
    whoamiPort: Number(values['whoami-port']),
    udpPort: Number(values['udp-port']),
  };
  startBackend(opts, log).then(
    (close) => {
      log('listening', { ...opts });
      if (values.ready) writeFileSync(values.ready, `${process.pid}\n`);
      const stop = (signal: string): void => {
        log('stopping', { signal });
        close();
        process.exit(0);
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    },
    (e: Error) => {
      log('failed', { error: e.message });
      process.exit(1);
    },
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
