/**
 * The tcp probe: a backend is healthy if it completes a TCP handshake on
 * `address:(check.tcp.port ?? port)` within the timeout. The connection is closed at
 * once, nothing is sent (keepalived's TCP_CHECK).
 */
import { connect } from 'node:net';
import { settleOnce } from './probe.js';
import { describeError } from '../../lib/errors.js';
import type { Probe, ProbeResult, ProbeTarget } from '../../ports/health.js';

export const tcpProbe: Probe = {
  kind: 'tcp',
  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    return new Promise((resolve) => {
      const port = target.check.tcp?.port ?? target.port;
      let socket: ReturnType<typeof connect> | undefined;
      const { finish } = settleOnce(timeoutMs, () => socket?.destroy(), resolve);
      try {
        socket = connect({ host: target.address, port, family: target.family });
      } catch (e) {
        // Bad arguments (an invalid port) throw synchronously.
        finish(false, describeError(e));
        return;
      }
      socket.once('connect', () => {
        finish(true, 'connected');
        socket?.destroy();
      });
      socket.on('error', (e) => {
        finish(false, describeError(e));
        socket?.destroy();
      });
    });
  },
};
