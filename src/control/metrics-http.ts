/**
 * `fwlb run --metrics ADDRESS:PORT`: /metrics over HTTP, built from the node's status at each
 * scrape (control/metrics.ts, loaded at the first scrape, not at every start).
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { NodeStatus } from '../services/node-daemon.js';
import { parseAddressPort } from '../lib/ip.js';

const metricsModule = () => import('./metrics.js');

/** Renders the metrics of a status (the control socket's `metrics` too). */
export async function renderMetrics(st: NodeStatus): Promise<string> {
  return (await metricsModule()).renderMetrics(st);
}

/** Listens at `at` ("ADDRESS:PORT"); undefined (logged) when it does not parse. */
export function serveMetrics(at: string, status: () => Promise<NodeStatus>, log: Logger): Server | undefined {
  const where = parseAddressPort(at);
  if (!where?.port) {
    log.error({ metrics: at }, '--metrics takes ADDRESS:PORT');
    return undefined;
  }
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
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
