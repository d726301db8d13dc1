/**
 * The http probe: `GET check.http.path` on `address:(check.http.port ?? port)`; healthy iff
 * the response status equals `check.http.status`. The body is read and thrown away, the
 * connection is not reused (no agent, `Connection: close`), and the timeout covers the
 * whole exchange: connect, request, headers and body.
 */
import { request, type ClientRequest } from 'node:http';
import { settleOnce } from './probe.js';
import { describeError } from '../../lib/errors.js';
import type { Probe, ProbeResult, ProbeTarget } from '../../ports/health.js';

/** The Host header: the backend's address (bracketed if IPv6), with the port unless it is 80. */
export function hostHeader(address: string, family: 4 | 6, port: number): string {
  const host = family === 6 ? `[${address}]` : address;
  return port === 80 ? host : `${host}:${port}`;
}

export const httpProbe: Probe = {
  kind: 'http',
  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    return new Promise((resolve) => {
      const http = target.check.http ?? { path: '/', status: 200 };
      const port = http.port ?? target.port;
      let req: ClientRequest | undefined;
      const { finish } = settleOnce(timeoutMs, () => req?.destroy(), resolve);
      try {
        req = request({
          host: target.address,
          port,
          family: target.family,
          method: 'GET',
          path: http.path,
          agent: false,
          headers: {
            Host: hostHeader(target.address, target.family, port),
            'User-Agent': 'fwlb-health-check',
            Accept: '*/*',
            Connection: 'close',
          },
        });
      } catch (e) {
        finish(false, describeError(e));
        return;
      }
      req.on('error', (e) => finish(false, describeError(e)));
      req.once('response', (res) => {
        const ok = res.statusCode === http.status;
        const detail = ok ? `status ${res.statusCode}` : `status ${res.statusCode} (want ${http.status})`;
        res.resume(); // read and discard the body
        res.once('end', () => {
          finish(ok, detail);
          req?.destroy();
        });
        res.on('error', (e) => finish(false, describeError(e)));
        res.once('close', () => {
          if (!res.complete) finish(false, `${detail}, body cut short`);
        });
      });
      req.end();
    });
  },
};
