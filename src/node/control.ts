/**
 * The node's control socket (control/server.ts) with its handlers: status and readiness,
 * metrics, reload, maintenance, backend commands and stop, each runtime change queued behind
 * whatever operation is under way; and the reload itself, from reading the file to the
 * kernel holding the result.
 */
import type { Logger } from 'pino';
import { loadConfigFile, type LoadResult } from '../config/load.js';
import { ConfigError } from '../config/issues.js';
import { decodeBackendCommand } from '../control/backend-args.js';
import { renderMetrics } from '../control/metrics-http.js';
import { ControlServer } from '../control/server.js';
import { FwlbError } from '../lib/errors.js';
import type { SerialQueue } from '../lib/serial-queue.js';
import type { NodeDaemon } from '../services/node-daemon.js';

/** Reloads the config file (a bad one keeps the running config); its time is noted and logged. */
export async function reloadFile(daemon: NodeDaemon, file: string, log: Logger): Promise<{ ok: boolean; changed?: boolean; error?: string }> {
  const t0 = performance.now();
  // The loader reports every problem as a config error; should it throw anyway, that is a
  // failed reload like any other (counted, logged), never an unhandled rejection.
  const next = await loadConfigFile(file).catch((e: Error): LoadResult => ({ ok: false, error: new ConfigError(file, [{ path: [], message: `cannot load the config: ${e.message}` }]) }));
  const r = await daemon.reload(next);
  const tookMs = Math.round(performance.now() - t0);
  daemon.noteReloadTime(tookMs);
  log.info({ event: 'reload_done', ok: r.ok, tookMs }, `reload took ${tookMs} ms`);
  return r.ok ? { ok: true, changed: r.changed } : { ok: false, error: r.error.message };
}

export function controlServer(o: {
  controlPath: string;
  node: string;
  daemon: NodeDaemon;
  ops: SerialQueue;
  started: () => boolean;
  reload: () => Promise<unknown>;
  /** false: the node is still starting. */
  stop: (force: boolean) => boolean;
  log: Logger;
}): ControlServer {
  const { daemon, ops } = o;
  return new ControlServer(
    o.controlPath,
    {
      // A starting node has no full status yet: it says so (ERR_STARTING, with its readiness).
      status: () => {
        if (!o.started()) throw new FwlbError('ERR_STARTING', `node ${o.node} is not ready: ${daemon.readiness().reason}`);
        return daemon.status();
      },
      // Answered at once, starting or not: `fwlb status --wait-ready` polls it.
      ready: () => daemon.readiness(),
      metrics: async () => {
        if (!o.started()) throw new FwlbError('ERR_STARTING', `node ${o.node} is ${daemon.readiness().reason}`);
        return renderMetrics(await daemon.status());
      },
      reload: () => o.reload(),
      maintenance: (args) => {
        if (typeof args.on !== 'boolean') throw new FwlbError('ERR_BAD_REQUEST', 'on must be true or false');
        const on = args.on;
        return ops.run(() => daemon.maintenance(on));
      },
      backend: (args) => {
        const c = decodeBackendCommand(args);
        if (!c.ok) throw new FwlbError('ERR_BAD_REQUEST', c.reason);
        return ops.run(() => daemon.backend(c.value));
      },
      stop: (args) => {
        if (args.force !== undefined && typeof args.force !== 'boolean') throw new FwlbError('ERR_BAD_REQUEST', 'force must be true or false');
        if (!o.stop(args.force === true)) throw new FwlbError('ERR_STARTING', 'the node is still starting; stop it when it runs (or send SIGTERM)');
        return { stopping: true, force: args.force === true };
      },
    },
    o.log,
  );
}
