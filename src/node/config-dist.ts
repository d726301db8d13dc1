/**
 * The node's config distribution (services/config-dist.ts), built from the config: its key
 * (derived from the cluster key), the TCP link on the sync addresses, the store in the
 * node's state directory, and what checking and applying a bundle means on this node: every
 * node's part compiled (a push made here; a peer's bundle is parsed only, its origin checked
 * the rest), then a reload as `fwlb reload` does (whole or nothing), then the files
 * written in place (atomically), so that a restart runs what the cluster runs. The runtime
 * changes (services/runtime-state.ts) ride on the same link, and are restored at the start.
 */
import type { Logger } from 'pino';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { safeFileName, type BundleFile } from '../codec/config/bundle.js';
import { deriveConfigKey, type FrameType } from '../codec/config/frame.js';
import type { RuntimeCommand, RuntimeDoc } from '../fsm/runtime-log.js';
import { RuntimeState } from '../services/runtime-state.js';
import { compileRuleset } from '../compiler/ruleset.js';
import { parseConfig, type LoadedConfig, type LoadResult } from '../config/load.js';
import { ConfigError, type ConfigIssue, type KeyPath } from '../config/issues.js';
import { nodeView } from '../config/node.js';
import { realClock, type Timer } from '../lib/clock.js';
import { FwlbError } from '../lib/errors.js';
import { bareAddress } from '../lib/ip.js';
import { listenConfigLink, requestConfigLink, scopedHost, type ConfigLinkListener } from '../adapters/config-link.js';
import { ConfigStore, writeAtomic } from '../adapters/config-store.js';
import { ConfigDistService } from '../services/config-dist.js';
import { readSyncKey } from './sync.js';

/**
 * The name the config itself has in a bundle, whatever its file is called on each node (the
 * hash of the same config is the same on every node).
 */
export const MAIN_FILE = '@config';

/**
 * The files a config is made of: itself (as MAIN_FILE), then its block lists (by the names it
 * gives them), with the config they make (parsed once: a reload runs it as it is). For a
 * push (`pushable`), a block list must lie beside the config or below it; the files a node
 * runs are read whatever their place (their hash tells what runs).
 */
export async function readConfigFiles(file: string, pushable = true): Promise<{ ok: true; files: BundleFile[]; loaded: LoadedConfig } | { ok: false; error: ConfigError }> {
  const refuse = (path: KeyPath, message: string, locate = (i: ConfigIssue) => i) => ({ ok: false as const, error: new ConfigError(file, [locate({ path, message })]) });
  let text: Buffer;
  try {
    text = await readFile(file);
  } catch (e) {
    return refuse([], `cannot read the config: ${(e as Error).message}`);
  }
  const parsed = await parseConfig(text.toString('utf8'), file);
  if (!parsed.ok) return parsed;
  const files: BundleFile[] = [{ name: MAIN_FILE, body: text }];
  for (const [i, f] of parsed.value.config.firewall.block_files.entries()) {
    if (pushable && (!safeFileName(f) || f === MAIN_FILE)) return refuse(['firewall', 'block_files', i], `"${f}": only files beside the config or below it (a relative path without "..") can be pushed`, parsed.value.locate);
    try {
      files.push({ name: f, body: await readFile(resolve(dirname(resolve(file)), f)) });
    } catch (e) {
      return refuse(['firewall', 'block_files', i], `cannot read ${f}: ${(e as Error).message}`, parsed.value.locate);
    }
  }
  return { ok: true, files, loaded: parsed.value };
}

/** A bundle's files as a config of this node's file (its block lists read from the bundle, not the disk). */
export function parseFiles(files: readonly BundleFile[], configFile: string): Promise<LoadResult> {
  const dir = dirname(resolve(configFile));
  const byPath = new Map(files.slice(1).map((f) => [resolve(dir, f.name), f.body.toString('utf8')]));
  return parseConfig(files[0]!.body.toString('utf8'), configFile, async (p) => {
    const t = byPath.get(resolve(p));
    if (t === undefined) throw new Error('not in the pushed files');
    return t;
  });
}

/**
 * Why the files are no config (for every node of the cluster, each node's ruleset compiled,
 * or only parsed for this node: its reload compiles its own part, whole or nothing), or
 * undefined; the parsed config with it.
 */
export async function checkFiles(files: readonly BundleFile[], configFile: string, scope: 'cluster' | 'self' = 'cluster'): Promise<{ problem?: string; parsed: LoadResult }> {
  const r = await parseFiles(files, configFile);
  if (!r.ok) return { problem: r.error.message, parsed: r };
  if (scope === 'self') return { parsed: r };
  for (const name of Object.keys(r.value.config.nodes)) {
    try {
      compileRuleset({ config: r.value.config, node: nodeView(r.value.config, name), blocklist: r.value.blocklist });
    } catch (e) {
      return { problem: `node ${name}: ${(e as Error).message}`, parsed: r };
    }
  }
  return { parsed: r };
}

export interface RestoredRuntime {
  doc: RuntimeDoc | undefined;
  held: RuntimeCommand[];
}

/**
 * The runtime changes kept in the state directory, run again with `run` (the node's start
 * calls it after the ruleset, before VRRP); a damaged part of the file is said and left out.
 */
export async function replayRuntime(stateDir: string, cluster: string, run: (c: RuntimeCommand) => Promise<unknown>, log: Logger): Promise<RestoredRuntime> {
  const problems: string[] = [];
  const doc = await new ConfigStore(stateDir).loadRuntime(problems);
  for (const p of problems) log.error({ event: 'runtime_store_damaged', problem: p }, `runtime state: ${p}: left out`);
  return { doc, held: await RuntimeState.replay(doc, cluster, run, log) };
}

/** How often a config link that could not listen (its address not there yet) tries again. */
const LISTEN_RETRY_MS = 2000;

export interface ConfigDistParts {
  /** The config has a state sync and a cluster key: configs and runtime changes travel (else they stay here). */
  on: boolean;
  service: ConfigDistService;
  runtime: RuntimeState;
  /** The TCP link's own refusals (frames not ours, bad HMACs, strangers). */
  linkCounters: () => ReturnType<ConfigLinkListener['counters']> | undefined;
  close: () => Promise<void>;
}

export async function buildConfigDist(o: {
  loaded: LoadedConfig;
  node: string;
  configFile: string;
  stateDir: string;
  log: Logger;
  peerDown: (peer: string) => boolean;
  serial: <T>(f: () => Promise<T>) => Promise<T>;
  /** A reload with these config contents (the node daemon's, as `fwlb reload` does it). */
  reload: (next: LoadResult) => Promise<{ ok: true; changed: boolean } | { ok: false; error: Error }>;
  /** Runs one runtime change on this node (a backend command, maintenance), in the node's queue. */
  runCommand: (c: RuntimeCommand) => Promise<unknown>;
  /** What the start replayed of the state file (replayRuntime). */
  restored: RestoredRuntime;
}): Promise<ConfigDistParts> {
  const c = o.loaded.config;
  const view = nodeView(c, o.node);
  const ss = c.state_sync;
  const on = !!(ss && c.cluster.key_file);
  const role = ss?.interface ?? '';
  const ifname = view.interfaces[role] ?? role;
  const hostOf = (a: string) => scopedHost(bareAddress(a), ifname);
  const peers = on ? view.peers.filter((p) => p.addresses[role]).map((p) => ({ name: p.name, host: hostOf(p.addresses[role]!) })) : [];
  const key = on ? deriveConfigKey(await readSyncKey(c, o.configFile)) : Buffer.alloc(32);
  const store = new ConfigStore(o.stateDir);
  let checked: { files: readonly BundleFile[]; parsed: LoadResult } | undefined;
  const send = (peer: string, type: FrameType, payload: Buffer, timeoutMs: number) => {
    const p = peers.find((x) => x.name === peer);
    if (!p) return Promise.reject(new FwlbError('ERR_CONFIG_PUSH', `${peer} has no sync address`));
    return requestConfigLink({ host: p.host, port: ss!.port, key, type, payload, timeoutMs, localAddress: hostOf(view.addresses[role]!) });
  };
  const runtime = new RuntimeState({
    log: o.log,
    cluster: c.cluster.name,
    peers: peers.map((p) => p.name),
    send,
    peerDown: o.peerDown,
    save: (doc) => store.saveRuntime(doc),
    run: o.runCommand,
  });
  const service = new ConfigDistService({
    clock: realClock,
    wallNow: Date.now,
    log: o.log,
    self: o.node,
    cluster: c.cluster.name,
    peers: peers.map((p) => p.name),
    send,
    extension: runtime,
    peerDown: o.peerDown,
    store,
    check: async (files, scope) => {
      const r = await checkFiles(files, o.configFile, scope);
      checked = { files, parsed: r.parsed };
      return r.problem;
    },
    apply: async (files) => {
      // The files just checked are not parsed again (a config of 500 services takes 0.1-0.3 s).
      const next = checked?.files === files ? checked.parsed : await parseFiles(files, o.configFile);
      checked = undefined;
      if (!next.ok) return { ok: false, error: next.error.message };
      const r = await o.reload(next);
      if (!r.ok) return { ok: false, error: r.error.message };
      // In place once it runs: the block lists first, the config last (each atomically).
      const dir = dirname(resolve(o.configFile));
      for (const f of files.slice(1)) await writeAtomic(resolve(dir, f.name), f.body);
      await writeAtomic(resolve(o.configFile), files[0]!.body);
      return { ok: true, changed: r.changed };
    },
    serial: o.serial,
  });
  const stored = await store.load();
  const running = await readConfigFiles(o.configFile, false);
  service.start(stored, running.ok ? running.files : [{ name: MAIN_FILE, body: Buffer.alloc(0) }]);
  await runtime.adopt(o.restored.doc, o.restored.held);
  let listener: ConfigLinkListener | undefined;
  let closed = false;
  let retry: Timer | undefined;
  // The sync address may not be usable yet (an IPv6 address in DAD, a link still coming up):
  // the listener is tried again every LISTEN_RETRY_MS until it opens; said once.
  const listen = async (first: boolean): Promise<void> => {
    try {
      const l = await listenConfigLink({
        host: hostOf(view.addresses[role]!),
        port: ss!.port,
        key,
        peers: peers.map((p) => p.host),
        handle: (f, from) => service.handle(f, peers.find((p) => bareAddress(p.host.replace(/%.*$/, '')) === from)?.name ?? from),
        onRefused: (reason, from) => o.log.warn({ event: 'config_link_refused', reason, from }, `config link: a connection from ${from} refused (${reason})`),
      });
      if (closed) return void (await l.close());
      listener = l;
      if (!first) o.log.info({ event: 'config_link_listening' }, 'config link listening');
    } catch (e) {
      if (first) o.log.warn({ event: 'config_link_failed', err: (e as Error).message }, `config link not listening yet (${(e as Error).message}): trying again every ${LISTEN_RETRY_MS} ms`);
      if (!closed) retry = realClock.after(LISTEN_RETRY_MS, () => void listen(false));
    }
  };
  if (on) await listen(true);
  return {
    on,
    service,
    runtime,
    linkCounters: () => listener?.counters(),
    close: async () => {
      closed = true;
      retry?.cancel();
      service.stop();
      await listener?.close();
    },
  };
}
