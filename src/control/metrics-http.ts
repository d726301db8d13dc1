/**
 * `fwlb run --metrics ADDRESS:PORT`: /metrics over HTTP, built from the node's status at each
 * scrape (control/metrics.ts, loaded at the first scrape, not at every start); and the live
 * status page beside it (control/status-page.ts): `/`, its script `/status.js`, and
 * `/status.json`, the node's status as `fwlb status --json` gives it. Read-only; GET only.
 * Give it a loopback address (127.0.0.1:9780) unless the network it listens on is trusted.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { NodeStatus } from '../services/node-daemon.js';
import { parseAddressPort } from '../lib/ip.js';

const metricsModule = () => import('./metrics.js');
const pageModule = () => import('./status-page.js');

/** The page's own headers: nothing but this origin, no sniffing, never cached. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; img-src 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

/** Renders the metrics of a status (the control socket's `metrics` too). */
export async function renderMetrics(st: NodeStatus): Promise<string> {
  return (await metricsModule()).renderMetrics(st);
}

/** Listens at `at` ("ADDRESS:PORT"); undefined (logged) when it does not parse. */
export function serveMetrics(at: string, status: () => Promise<NodeStatus>, log: Logger): Server | undefined {
  // A bare port listens on loopback: the page and the metrics stay on the machine unless asked.
  const where = /^\d{1,5}$/.test(at) ? { address: '127.0.0.1', port: Number(at) } : parseAddressPort(at);
  if (!where?.port) {
    log.error({ metrics: at }, '--metrics takes PORT (on 127.0.0.1) or ADDRESS:PORT');
    return undefined;
  }
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/' || path === '/status.js') {
      void pageModule().then((p) =>
        path === '/' ? res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' }).end(p.STATUS_PAGE_HTML) : res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'text/javascript; charset=utf-8' }).end(p.STATUS_PAGE_JS),
      );
      return;
    }
    if (path === '/status.json') {
      status().then(
        (st) => res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'application/json' }).end(JSON.stringify(st)),
        (e: Error) => res.writeHead(503, { 'content-type': 'text/plain' }).end(e.message),
      );
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    Promise.all([metricsModule(), status()]).then(
      async ([m, st]) => res.writeHead(200, { 'content-type': m.METRICS_CONTENT_TYPE }).end(await m.renderMetrics(st)),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  server.on('error', (e) => log.error({ err: e.message }, 'metrics listener failed'));
  server.listen(where.port, where.address);
  return server;
}
