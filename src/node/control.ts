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
import type { RuntimeCommand } from '../fsm/runtime-log.js';

/** Reloads the config file (a bad one keeps the running config); its time is noted and logged. */
export async function reloadFile(daemon: NodeDaemon, file: string, log: Logger, load: (file: string) => Promise<LoadResult> = loadConfigFile): Promise<{ ok: boolean; changed?: boolean; error?: string }> {
  const t0 = performance.now();
  // The loader reports every problem as a config error; should it throw anyway, that is a
  // failed reload like any other (counted, logged), never an unhandled rejection.
  const next = await load(file).catch((e: Error): LoadResult => ({ ok: false, error: new ConfigError(file, [{ path: [], message: `cannot load the config: ${e.message}` }]) }));
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
  /** `fwlb reload`, with `--confirm`: rolled back unless confirmed within confirmMs. */
  reload: (confirmMs?: number) => Promise<unknown>;
  /** `fwlb config push FILE` and `fwlb config confirm` (issue 24); they refuse, saying why, where the cluster has no distribution. */
  config: { push: (file: string, confirmMs?: number) => Promise<unknown>; confirm: () => Promise<unknown> };
  /**
   * Runtime changes that last (kept in the state file) and, with `cluster`, run on every node
   * (services/runtime-state.ts); absent while the node starts.
   */
  runtime?: () => { local(c: RuntimeCommand): Promise<unknown>; cluster(c: RuntimeCommand): Promise<unknown> } | undefined;
  /** false: the node is still starting. */
  stop: (force: boolean) => boolean;
  log: Logger;
}): ControlServer {
  const { daemon, ops } = o;
  /** A change kept in the state file once it ran; with `cluster: true`, run on every node. */
  const runtimeChange = async (args: Record<string, unknown>, c: RuntimeCommand, here: () => Promise<unknown>) => {
    if (args.cluster !== undefined && typeof args.cluster !== 'boolean') throw new FwlbError('ERR_BAD_REQUEST', 'cluster must be true or false');
    const rt = o.runtime?.();
    if (args.cluster === true) {
      if (!rt) throw new FwlbError('ERR_STARTING', 'the node is still starting');
      return rt.cluster(c);
    }
    const r = await here();
    await rt?.local(c);
    return r;
  };
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
      reload: (args) => o.reload(confirmArg(args)),
      // Not queued behind the node's operations here: the push queues its own applies (a
      // peer's push may reach this node while it waits for that peer's answer).
      config_push: (args) => {
        if (typeof args.file !== 'string' || !args.file.startsWith('/')) throw new FwlbError('ERR_BAD_REQUEST', 'file must be an absolute path');
        return o.config.push(args.file, confirmArg(args));
      },
      config_confirm: () => o.config.confirm(),
      maintenance: (args) => {
        if (typeof args.on !== 'boolean') throw new FwlbError('ERR_BAD_REQUEST', 'on must be true or false');
        const on = args.on;
        return runtimeChange(args, { op: 'maintenance', on }, () => ops.run(() => daemon.maintenance(on)));
      },
      backend: (args) => {
        const c = decodeBackendCommand(args);
        if (!c.ok) throw new FwlbError('ERR_BAD_REQUEST', c.reason);
        return runtimeChange(args, c.value, () => ops.run(() => daemon.backend(c.value)));
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

/** A request's confirmMs: absent, or whole milliseconds from a second to a day. */
function confirmArg(args: Record<string, unknown>): number | undefined {
  const v = args.confirmMs;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1000 || v > 24 * 3600_000) throw new FwlbError('ERR_BAD_REQUEST', 'confirmMs must be whole milliseconds from 1000 (1 s) to 86400000 (a day)');
  return v;
}
