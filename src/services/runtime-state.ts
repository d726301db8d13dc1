/**
 * Runtime changes that last and, with --cluster, reach every node (issue 24): backend add /
 * weight / drain / disable / enable / remove and maintenance. Every change a node runs is kept
 * in its state file (fsm/runtime-log.ts, written atomically, checked on load) and replayed
 * when the daemon starts again. A change made with --cluster runs here first, then on every
 * peer over the config link (a RUNTIME frame: the cluster's log, its version and the change);
 * a peer that was away gets the whole log when it is back (the config distribution's rounds
 * ask each peer its runtime version too), and replays what it lacks.
 */
import type { Logger } from 'pino';
import { FrameType, type Frame } from '../codec/config/frame.js';
import { appendCommand, ClusterLogSchema, pruneCommands, RuntimeCommandSchema, type ClusterLog, type RuntimeCommand, type RuntimeDoc } from '../fsm/runtime-log.js';
import { nextVersion } from '../fsm/config-version.js';
import { decodeMessage, decodeOutcome, encodeMessage, type NodeOutcome } from '../codec/config/messages.js';

const SEND_TIMEOUT_MS = 10_000;

export interface RuntimeStateDeps {
  log: Logger;
  cluster: string;
  peers: readonly string[];
  send: (peer: string, type: FrameType, payload: Buffer, timeoutMs: number) => Promise<Buffer>;
  peerDown: (peer: string) => boolean;
  save: (doc: RuntimeDoc) => Promise<void>;
  /** Runs one change on this node, in the node's queue; throws as the control command does. */
  run: (c: RuntimeCommand) => Promise<unknown>;
}

const json = encodeMessage;

export class RuntimeState {
  private local: RuntimeCommand[] = [];
  private shared: ClusterLog = { version: 0, commands: [] };
  private readonly peerVersions = new Map<string, number>();

  constructor(private readonly d: RuntimeStateDeps) {}

  /**
   * The changes kept on disk run again with `run`, in order (at start, after the ruleset and
   * before VRRP: a node in maintenance never takes over, a drained backend never gets a new
   * flow); one that no longer applies is dropped, and said. Resolves those that held.
   */
  static async replay(doc: RuntimeDoc | undefined, cluster: string, run: (c: RuntimeCommand) => Promise<unknown>, log: Logger): Promise<RuntimeCommand[]> {
    if (!doc || doc.cluster !== cluster) return [];
    let held: RuntimeCommand[] = [];
    for (const c of doc.local) {
      try {
        await run(c);
        held = appendCommand(held, c);
      } catch (e) {
        log.warn({ event: 'runtime_restore_dropped', command: c, err: (e as Error).message }, `runtime change not restored (${(e as Error).message}): ${JSON.stringify(c)}`);
      }
    }
    if (doc.local.length) log.info({ event: 'runtime_restored', changes: held.length, clusterVersion: doc.shared.version }, `${held.length} runtime changes restored from the state file`);
    return held;
  }

  /** What the start replayed (`replay`), kept and written back: a change that no longer applies is gone from the file. */
  async adopt(doc: RuntimeDoc | undefined, held: RuntimeCommand[]): Promise<void> {
    if (!doc || doc.cluster !== this.d.cluster) return;
    this.shared = doc.shared;
    this.local = held;
    await this.persist();
  }

  /** The changes kept on disk run again (`replay` with this node's runner) and kept. */
  async restore(doc: RuntimeDoc | undefined): Promise<void> {
    await this.adopt(doc, await RuntimeState.replay(doc, this.d.cluster, this.d.run, this.d.log));
  }

  /** A change on this node only (it runs already: `result`), kept. */
  async recordLocal(c: RuntimeCommand): Promise<void> {
    this.local = appendCommand(this.local, c);
    await this.persist();
  }

  /** After a reload: the words about backends whose runtime state the reload dropped go. */
  async prune(holds: (service: string, backend: string) => boolean): Promise<void> {
    const before = this.local.length;
    this.local = pruneCommands(this.local, holds);
    if (this.local.length !== before) await this.persist();
  }

  private persist(): Promise<void> {
    return this.d.save({ v: 1, cluster: this.d.cluster, local: this.local, shared: this.shared }).catch((e: Error) => this.d.log.error({ event: 'runtime_store_failed', err: e.message }, `runtime state not kept on disk: ${e.message}`));
  }

  /** `--cluster`: here first (its error is the answer), then on every peer; each node's outcome. */
  async clusterChange(c: RuntimeCommand): Promise<{ version: number; result: unknown; nodes: Record<string, NodeOutcome> }> {
    const result = await this.d.run(c);
    this.local = appendCommand(this.local, c);
    this.shared = { version: nextVersion(this.shared.version, [...this.peerVersions.values()]), commands: appendCommand(this.shared.commands, c) };
    await this.persist();
    const nodes: Record<string, NodeOutcome> = {};
    await Promise.all(this.d.peers.map(async (p) => (nodes[p] = await this.sendTo(p, c))));
    return { version: this.shared.version, result, nodes };
  }

  private async sendTo(peer: string, change?: RuntimeCommand): Promise<NodeOutcome> {
    if (this.d.peerDown(peer)) return { outcome: 'unreachable', message: `${peer} is down: it gets the change when it is back` };
    try {
      const r = decodeOutcome(await this.d.send(peer, FrameType.RUNTIME, json({ ...this.shared, ...(change ? { change } : {}) }), SEND_TIMEOUT_MS));
      if (r?.outcome === 'applied') this.peerVersions.set(peer, this.shared.version);
      return r ?? { outcome: 'unreachable', message: `${peer} answered with no outcome` };
    } catch (e) {
      return { outcome: 'unreachable', message: (e as Error).message };
    }
  }

  /** A peer's RUNTIME frame: its change when it is the next version here, else its whole log replayed. */
  async handle(f: Frame, from: string): Promise<Buffer> {
    const m = decodeMessage(f.payload);
    const log = ClusterLogSchema.safeParse(m && { version: m.version, commands: m.commands });
    const change = RuntimeCommandSchema.safeParse(m?.change);
    if (!log.success) return json({ outcome: 'refused', reason: 'bad_frame', message: 'not a runtime log' });
    if (log.data.version <= this.shared.version) return json({ outcome: 'refused', reason: log.data.version === this.shared.version ? 'replayed' : 'older', message: `runtime version ${log.data.version}, this node has ${this.shared.version}` });
    const todo = change.success && log.data.version === this.shared.version + 1 ? [change.data] : log.data.commands;
    for (const c of todo) {
      try {
        await this.d.run(c);
      } catch (e) {
        // Already so here (a backend added twice, one removed already): nothing to do.
        this.d.log.debug({ event: 'runtime_change_skipped', command: c, err: (e as Error).message }, 'runtime change from a peer skipped');
      }
      this.local = appendCommand(this.local, c);
    }
    this.shared = log.data;
    await this.persist();
    this.d.log.info({ event: 'runtime_applied', from, version: log.data.version, changes: todo.length }, `runtime version ${log.data.version} from ${from}: ${todo.length} change(s) applied`);
    return json({ outcome: 'applied', changed: true });
  }

  /** What a peer's question about versions hears of ours. */
  describe(): { runtimeVersion: number } {
    return { runtimeVersion: this.shared.version };
  }

  /** A peer's answer: one behind gets the whole log. */
  peerSeen(peer: string, reply: Record<string, unknown>): void {
    const v = reply.runtimeVersion;
    if (typeof v !== 'number') return;
    this.peerVersions.set(peer, v);
    if (v < this.shared.version) {
      void this.sendTo(peer).then((o) => this.d.log.info({ event: 'runtime_catch_up', peer, version: this.shared.version, outcome: o.outcome }, `${peer} was on runtime version ${v}: sent ${this.shared.version} (${o.outcome})`));
    }
  }

  status(): { version: number; local: number; shared: number } {
    return { version: this.shared.version, local: this.local.length, shared: this.shared.commands.length };
  }
}
