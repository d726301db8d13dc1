/**
 * One config, every node (issue 24): pushes a config to the peers over the sync link, takes
 * theirs, keeps the versions on disk, catches up a peer that was away, and runs the
 * commit-confirm (a version not confirmed in time is rolled back on every node, softly: a
 * reload). Which version wins is fsm/config-version.ts; the frames and bundles are
 * codec/config; the TCP link and the files are adapters; applying a bundle (whole or nothing,
 * as a reload) is the node's (node/config-dist.ts).
 *
 * A push: its files are checked here for every node (refused: sent nowhere), numbered past
 * every version this node knows of, then applied here and sent to every peer the liveness
 * does not know to be down, all at once (a peer checks only its own part: its reload does,
 * whole or nothing); each node answers applied or refused (why), and one that
 * cannot be reached is pending: every few seconds this node asks each peer which version it
 * runs and sends the newer one to a peer behind. So a peer that was down catches up when it
 * returns, and none blocks the others.
 */
import type { Logger } from 'pino';
import { decodeBundle, encodeBundle, filesHash, type Bundle, type BundleFile, type BundleMeta } from '../codec/config/bundle.js';
import { FrameType, type Frame } from '../codec/config/frame.js';
import { decodeMessage, decodeOutcome, encodeMessage, type NodeOutcome } from '../codec/config/messages.js';
import { comparePeer, judgePush, nextVersion, rollbackMeta, type ConfigRefusal, type PeerVersionState, type RunningVersion } from '../fsm/config-version.js';
import type { Clock, Timer } from '../lib/clock.js';
import { FwlbError } from '../lib/errors.js';
import type { PendingConfirm, StoredVersions, VersionStore } from '../ports/config-store.js';

/** Peers not in step are asked this often; those in step every SAME_EVERY rounds. */
export const RECONCILE_MS = 3000;
const SAME_EVERY = 10;
/** A query's time to answer; a push's (the peer reloads before it answers). */
const QUERY_TIMEOUT_MS = 1500;
const PUSH_TIMEOUT_MS = 15_000;

export type { NodeOutcome };

export interface ConfigDistDeps {
  clock: Clock;
  /** Wall time (ms since the epoch): versions' times and confirm deadlines that survive a restart. */
  wallNow: () => number;
  log: Logger;
  self: string;
  cluster: string;
  peers: readonly string[];
  /** One request to a peer; resolves its reply's payload, rejects when there is none. */
  send: (peer: string, type: FrameType, payload: Buffer, timeoutMs: number) => Promise<Buffer>;
  /** The liveness has the peer down (not asked then: a push never waits for it). */
  peerDown: (peer: string) => boolean;
  store: VersionStore;
  /**
   * Why these files are no config, or undefined: for every node of the cluster (`cluster`, a
   * push made here) or for this node (`self`: a peer's push, a rollback, a catch-up; the
   * origin checked the others).
   */
  check: (files: readonly BundleFile[], scope: 'cluster' | 'self') => Promise<string | undefined>;
  /** Applies the files as a reload does (whole or nothing) and writes them in place. */
  apply: (files: readonly BundleFile[]) => Promise<{ ok: true; changed: boolean } | { ok: false; error: string }>;
  /** Runs `f` after whatever operation is under way (the node's reloads and runtime changes). */
  serial: <T>(f: () => Promise<T>) => Promise<T>;
  /** What rides on the same link and rounds (services/runtime-state.ts): its frames, its part of an answer, the peers' parts. */
  extension?: { handle(f: Frame, from: string): Promise<Buffer>; describe(): Record<string, unknown>; peerSeen(peer: string, reply: Record<string, unknown>): void };
}

interface PeerView {
  version?: number;
  hash?: string;
  confirmed?: boolean;
  state: PeerVersionState;
  error?: string;
  askedAt?: number;
}

export interface ConfigDistStatus {
  version: number;
  hash: string;
  /** The running files are not those of `version` (the file was changed and reloaded by hand). */
  localChanges: boolean;
  origin: string | null;
  at: string | null;
  confirm: { version: number; inMs: number } | null;
  peers: Record<string, { version: number | null; hash: string | null; state: PeerVersionState; error: string | null }>;
  counters: { pushes: number; applied: number; rollbacks: number; refused: Partial<Record<ConfigRefusal, number>> };
  /** The TCP link's own refusals: frames not ours, bad signatures (unsigned or tampered), strangers (node/config-dist.ts). */
  link?: { connections: number; refused: Record<string, number> };
  /** Runtime changes kept (services/runtime-state.ts): the cluster's version, changes kept here and the cluster's. */
  runtime?: { version: number; local: number; shared: number };
}

const json = encodeMessage;

export class ConfigDistService {
  private current: Bundle | undefined;
  private previous: Bundle | undefined;
  private runningFiles: BundleFile[] = [];
  private runningHash = '';
  private confirm: (PendingConfirm & { timer: Timer; local?: boolean }) | undefined;
  private readonly peers = new Map<string, PeerView>();
  private readonly counters = { pushes: 0, applied: 0, rollbacks: 0, refused: {} as Partial<Record<ConfigRefusal, number>> };
  private loop: Timer | undefined;
  private round = 0;
  private reconciling: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly d: ConfigDistDeps) {
    for (const p of d.peers) this.peers.set(p, { state: 'unknown' });
  }

  private get version(): number {
    return this.current?.meta.version ?? 0;
  }

  /** What runs: the versions kept on disk and the files the node started with. */
  start(stored: StoredVersions, running: BundleFile[]): void {
    for (const p of stored.problems) this.d.log.error({ event: 'config_store_damaged', problem: p }, `config store: ${p}: left out`);
    this.current = stored.current?.meta.cluster === this.d.cluster ? stored.current : undefined;
    this.previous = stored.previous;
    this.setRunning(running);
    if (this.current && this.current.meta.hash !== this.runningHash) {
      this.d.log.warn({ event: 'config_local_changes', version: this.version }, `the config file is not version ${this.version} as pushed (changed by hand?): fwlb status flags it; push it to make it the cluster's`);
    }
    if (stored.confirm && stored.confirm.version === this.version) this.armConfirm(stored.confirm);
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.loop?.cancel();
    this.confirm?.timer.cancel();
  }

  /** The files running now. */
  files(): BundleFile[] {
    return this.runningFiles;
  }

  /** A reload of the file by hand went through: what runs now. */
  reloaded(running: BundleFile[]): void {
    this.setRunning(running);
    this.restate();
  }

  /** Our version or files changed: each peer's place against them, from what it last said (asked again if not in step). */
  private restate(): void {
    for (const [name, p] of this.peers) {
      if (p.version === undefined || p.hash === undefined) continue;
      this.peers.set(name, { ...p, state: comparePeer({ version: this.version, hash: this.runningHash }, { version: p.version, hash: p.hash }) });
    }
  }

  /**
   * `fwlb reload --confirm`: on this node only, the files that ran before the reload come
   * back (written in place, then a reload) unless `fwlb config confirm` comes within `ms`.
   */
  armLocalConfirm(ms: number, before: BundleFile[]): void {
    this.confirm?.timer.cancel();
    const timer = this.d.clock.after(ms, () =>
      void this.d.serial(async () => {
        if (this.confirm?.timer !== timer) return;
        this.confirm = undefined;
        this.counters.rollbacks++;
        this.d.log.warn({ event: 'config_rollback', local: true }, `the reload was not confirmed within ${ms / 1000} s: the config before it comes back`);
        const r = await this.d.apply(before);
        if (r.ok) this.setRunning(before);
        else this.d.log.error({ event: 'config_rollback_failed', err: r.error }, `the rollback of the reload failed: ${r.error}`);
      }),
    );
    this.confirm = { version: this.version, deadline: this.d.wallNow() + ms, timer, local: true };
  }

  private setRunning(files: BundleFile[]): void {
    this.runningFiles = files;
    this.runningHash = filesHash(files);
  }

  private running(): RunningVersion {
    return { cluster: this.d.cluster, version: this.version, hash: this.current?.meta.hash ?? this.runningHash, confirmed: !this.confirm };
  }

  /** Answers a peer's request (the config link's handler). */
  async handle(f: Frame, from: string): Promise<Buffer> {
    if (f.type === FrameType.QUERY) return json({ ...this.describe(), ...this.d.extension?.describe() });
    if (f.type === FrameType.RUNTIME && this.d.extension) return this.d.extension.handle(f, from);
    if (f.type === FrameType.CONFIRM) {
      const m = decodeMessage(f.payload);
      if (typeof m?.version !== 'number') return json({ outcome: 'refused', reason: 'bad_frame', message: 'a confirm without a version' });
      return json(await this.confirmHere(m.version, `confirmed by ${from}`));
    }
    if (f.type !== FrameType.PUSH) return json({ outcome: 'refused', reason: 'bad_frame', message: `frame type ${f.type}` });
    const r = decodeBundle(f.payload);
    if (!r.ok) return json(this.refused('bad_bundle', `bundle refused: ${r.reason}${r.detail ? ` (${r.detail})` : ''}`, from));
    return json(await this.d.serial(() => this.take(r.bundle, from)));
  }

  private describe() {
    // The files that run (a file changed by hand and reloaded shows as other files to the peers).
    return { node: this.d.self, cluster: this.d.cluster, version: this.version, hash: this.runningHash, confirmed: !this.confirm };
  }

  private refused(reason: ConfigRefusal, message: string, from: string): NodeOutcome {
    this.counters.refused[reason] = (this.counters.refused[reason] ?? 0) + 1;
    this.d.log.warn({ event: 'config_refused', reason, from }, `config from ${from} refused: ${message}`);
    return { outcome: 'refused', reason, message };
  }

  /** A bundle, ours or a peer's: judged, checked, applied, kept. */
  private async take(b: Bundle, from: string, checked = false): Promise<NodeOutcome> {
    const v = judgePush(this.running(), b.meta);
    if (!v.apply) return this.refused(v.reason, v.message, from);
    const problem = checked ? undefined : await this.d.check(b.files, 'self');
    if (problem) return this.refused('invalid', problem, from);
    return this.install(b, from);
  }

  /** A bundle applied and kept as the running version (its confirm, if it asks one, armed unless `confirmed`). */
  private async install(b: Bundle, from: string, confirmed = false): Promise<NodeOutcome> {
    const before: Bundle = this.current?.meta.hash === this.runningHash ? this.current : this.localBundle();
    const r = await this.d.apply(b.files);
    if (!r.ok) return this.refused('apply_failed', r.error, from);
    this.counters.applied++;
    this.previous = before;
    this.current = b;
    this.setRunning(b.files);
    this.restate();
    this.confirm?.timer.cancel();
    this.confirm = undefined;
    const pending = b.meta.confirmMs !== undefined && !confirmed ? { version: b.meta.version, deadline: this.d.wallNow() + b.meta.confirmMs } : undefined;
    if (pending) this.armConfirm(pending);
    await this.d.store.saveVersions(b, before).catch((e: Error) => this.d.log.error({ event: 'config_store_failed', err: e.message }, `config version ${b.meta.version} applied but not kept on disk: ${e.message}`));
    await this.d.store.saveConfirm(pending).catch(() => undefined);
    const how = confirmed ? 'confirmed on a peer' : b.meta.rollbackOf ? `rollback of version ${b.meta.rollbackOf}` : b.meta.confirmMs ? `to be confirmed within ${b.meta.confirmMs / 1000} s` : 'pushed';
    this.d.log.info({ event: 'config_version_applied', version: b.meta.version, hash: b.meta.hash.slice(0, 12), origin: b.meta.origin, from, changed: r.changed }, `config version ${b.meta.version} (${b.meta.hash.slice(0, 12)}, ${how} by ${b.meta.origin}) applied`);
    return { outcome: 'applied', changed: r.changed };
  }

  /** The files running now as a bundle of the running version (what a rollback goes back to). */
  private localBundle(): Bundle {
    return { meta: { cluster: this.d.cluster, version: Math.max(1, this.version), hash: this.runningHash, origin: this.d.self, at: this.d.wallNow() }, files: this.runningFiles };
  }

  /**
   * `fwlb config push`: the files checked for every node, numbered, then applied here and sent
   * to every peer at once (a peer's reload does not wait for ours). Resolves each node's
   * outcome; throws (ERR_CONFIG_PUSH) when nothing was sent.
   */
  async push(files: BundleFile[], confirmMs?: number): Promise<{ version: number; hash: string; nodes: Record<string, NodeOutcome> }> {
    this.counters.pushes++;
    const problem = await this.d.check(files, 'cluster');
    if (problem) {
      this.refused('invalid', problem, 'this node');
      throw new FwlbError('ERR_CONFIG_PUSH', `refused on this node, sent to no peer: ${problem}`);
    }
    await this.askAll();
    const hash = filesHash(files);
    const meta: BundleMeta = {
      cluster: this.d.cluster,
      version: nextVersion(this.version, [...this.peers.values()].map((p) => p.version)),
      hash,
      origin: this.d.self,
      at: this.d.wallNow(),
      ...(confirmMs !== undefined ? { confirmMs, previousHash: this.runningHash } : {}),
    };
    const b: Bundle = { meta, files };
    const v = judgePush(this.running(), meta);
    if (!v.apply) {
      this.refused(v.reason, v.message, 'this node');
      throw new FwlbError('ERR_CONFIG_PUSH', `refused on this node, sent to no peer: ${v.message}`);
    }
    const nodes: Record<string, NodeOutcome> = {};
    await Promise.all([
      this.d.serial(() => this.take(b, 'this node', true)).then((o) => (nodes[this.d.self] = o)),
      ...this.d.peers.map(async (p) => (nodes[p] = await this.sendBundle(p, b))),
    ]);
    return { version: meta.version, hash, nodes: { [this.d.self]: nodes[this.d.self]!, ...nodes } };
  }

  private async sendBundle(peer: string, b: Bundle): Promise<NodeOutcome> {
    // Not applied there, whatever the reason: asked again at the next round.
    if (this.d.peerDown(peer)) {
      this.notePeer(peer, { state: 'unknown', error: 'down' });
      return { outcome: 'unreachable', message: `${peer} is down: it gets version ${b.meta.version} when it is back` };
    }
    try {
      const o = decodeOutcome(await this.d.send(peer, FrameType.PUSH, encodeBundle(b), PUSH_TIMEOUT_MS));
      if (o?.outcome === 'applied') this.peers.set(peer, { version: b.meta.version, hash: b.meta.hash, state: 'same', askedAt: this.d.clock.now() });
      else this.notePeer(peer, { state: 'unknown', error: o?.outcome === 'refused' ? o.message : 'no outcome' });
      return o ?? { outcome: 'unreachable', message: `${peer} answered with no outcome` };
    } catch (e) {
      this.notePeer(peer, { state: 'unknown', error: (e as Error).message });
      return { outcome: 'unreachable', message: `${(e as Error).message}: it gets version ${b.meta.version} when it is back` };
    }
  }

  /** `fwlb config confirm` (or `fwlb reload --confirm`'s): here, then on every peer. */
  async confirmAll(): Promise<{ version: number; nodes: Record<string, NodeOutcome> }> {
    const version = this.confirm?.version ?? this.version;
    const local = this.confirm?.local === true;
    const nodes: Record<string, NodeOutcome> = { [this.d.self]: await this.confirmHere(version, 'fwlb config confirm') };
    if (local) return { version, nodes };
    await Promise.all(
      this.d.peers.map(async (p) => {
        if (this.d.peerDown(p)) return void (nodes[p] = { outcome: 'unreachable', message: `${p} is down: it learns of the confirm from its peers` });
        try {
          nodes[p] = decodeOutcome(await this.d.send(p, FrameType.CONFIRM, json({ version }), QUERY_TIMEOUT_MS)) ?? { outcome: 'unreachable', message: 'no outcome' };
        } catch (e) {
          nodes[p] = { outcome: 'unreachable', message: (e as Error).message };
        }
      }),
    );
    return { version, nodes };
  }

  private async confirmHere(version: number, why: string): Promise<NodeOutcome> {
    if (!this.confirm || this.confirm.version !== version || (this.confirm.local && why !== 'fwlb config confirm')) return { outcome: 'not_pending' };
    this.confirm.timer.cancel();
    this.confirm = undefined;
    await this.d.store.saveConfirm(undefined).catch(() => undefined);
    this.d.log.info({ event: 'config_confirmed', version, why }, `config version ${version} confirmed (${why})`);
    return { outcome: 'confirmed' };
  }

  private armConfirm(c: PendingConfirm): void {
    const timer = this.d.clock.after(Math.max(0, c.deadline - this.d.wallNow()), () => void this.d.serial(() => this.confirmMissed(c.version)));
    this.confirm = { ...c, timer };
  }

  /**
   * The confirm of `version` did not come in time. A peer that has it confirmed (the confirm
   * did not reach us) or runs a newer version settles it; otherwise back to the files before.
   */
  private async confirmMissed(version: number): Promise<void> {
    if (!this.confirm || this.confirm.version !== version || this.version !== version || !this.current) return;
    await this.askAll();
    const peers = [...this.peers.values()];
    if (peers.some((p) => p.version === version && p.confirmed)) return void (await this.confirmHere(version, 'a peer has it confirmed'));
    if (peers.some((p) => (p.version ?? 0) > version)) return;
    const meta = rollbackMeta(this.current.meta);
    if (!meta || this.previous?.meta.hash !== meta.hash) {
      this.d.log.error({ event: 'config_rollback_failed', version }, `config version ${version} was not confirmed, but the files before it are not here: it stays (a peer that has them rolls back and sends the rollback)`);
      return;
    }
    this.d.log.warn({ event: 'config_rollback', version }, `config version ${version} was not confirmed in time: rolling back to the files before it (as version ${meta.version})`);
    this.counters.rollbacks++;
    const r = await this.take({ meta, files: this.previous.files }, 'the missed confirm');
    if (r.outcome === 'applied') void this.reconcile();
  }

  /** Every peer asked which version it runs (in parallel); what they say is kept. */
  private async askAll(): Promise<void> {
    await Promise.all(this.d.peers.filter((p) => !this.d.peerDown(p)).map((p) => this.ask(p)));
  }

  private async ask(peer: string): Promise<PeerView> {
    try {
      const r = decodeMessage(await this.d.send(peer, FrameType.QUERY, json({ cluster: this.d.cluster }), QUERY_TIMEOUT_MS));
      if (typeof r?.version !== 'number' || typeof r.hash !== 'string') return this.notePeer(peer, { state: 'unknown', error: 'an answer without a version' });
      this.d.extension?.peerSeen(peer, r);
      const seen = { version: r.version, hash: r.hash, confirmed: r.confirmed === true };
      return this.notePeer(peer, { ...seen, state: comparePeer({ version: this.version, hash: this.runningHash }, seen) });
    } catch (e) {
      return this.notePeer(peer, { state: 'unknown', error: (e as Error).message });
    }
  }

  private notePeer(peer: string, v: PeerView): PeerView {
    const was = this.peers.get(peer);
    const next = { ...(v.version === undefined && was ? { version: was.version, hash: was.hash } : {}), ...v, askedAt: this.d.clock.now() } as PeerView;
    if (was && was.state !== next.state && (next.state === 'differs' || next.state === 'ahead' || next.state === 'behind')) {
      this.d.log.info({ event: 'config_peer_version', peer, version: next.version, state: next.state }, `${peer} runs config version ${next.version ?? '?'} (${next.state}; this node ${this.version})`);
    }
    this.peers.set(peer, next);
    return next;
  }

  /** One round at a time: a round asked for while one runs is that round. */
  private reconcile(): Promise<void> {
    this.reconciling ??= this.oneRound().finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  /** One round: peers not in step asked (all of them every SAME_EVERY rounds); one behind gets our version. */
  private async oneRound(): Promise<void> {
    const all = this.round++ % SAME_EVERY === 0;
    await Promise.all(
      this.d.peers.map(async (p) => {
        if (this.d.peerDown(p) || (!all && this.peers.get(p)?.state === 'same')) return;
        const v = await this.ask(p);
        if (v.state === 'behind' && this.current?.meta.rollbackOf !== undefined && v.version === this.current.meta.rollbackOf && v.confirmed) {
          return void (await this.undoRollback(p, v));
        }
        if (v.state === 'behind' && this.current) {
          const o = await this.sendBundle(p, this.current);
          this.d.log.info({ event: 'config_catch_up', peer: p, version: this.version, outcome: o.outcome }, `${p} was on version ${v.version}: sent version ${this.version} (${o.outcome}${'message' in o ? `: ${o.message}` : ''})`);
        }
        if (v.state === 'same' && v.confirmed && this.confirm?.version === this.version) await this.confirmHere(this.version, `${p} has it confirmed`);
      }),
    );
  }

  /**
   * This node rolled back a version alone (cut off from its peers when the confirm came and
   * when its time ran out) and `peer` has that version confirmed: the confirm wins, the
   * rollback is undone (the version's files again, kept from before the rollback). Without
   * this the node would stay "ahead" with the old files, its rollback refused by every peer.
   */
  private async undoRollback(peer: string, seen: PeerView): Promise<void> {
    const rollback = this.current;
    const back = this.previous;
    if (!rollback || !back || back.meta.version !== seen.version || back.meta.hash !== seen.hash) {
      this.d.log.error({ event: 'config_rollback_stranded', peer, version: seen.version }, `${peer} has version ${seen.version} confirmed, which this node rolled back, and its files are not here: push again`);
      return;
    }
    await this.d.serial(async () => {
      if (this.current !== rollback) return;
      this.d.log.warn({ event: 'config_rollback_undone', peer, version: back.meta.version }, `${peer} has config version ${back.meta.version} confirmed (this node was cut off when the confirm came and rolled back alone): it comes back here`);
      const problem = await this.d.check(back.files, 'self');
      if (problem) return void this.refused('invalid', problem, peer);
      await this.install(back, peer, true);
    });
  }

  /** Looks again soon: a peer came up (the liveness says so). */
  peerUp(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.loop?.cancel();
    this.loop = this.d.clock.after(ms, () => {
      void this.reconcile()
        .catch((e: Error) => this.d.log.error({ err: e.message }, 'config reconcile failed'))
        .finally(() => this.schedule(RECONCILE_MS));
    });
  }

  status(): ConfigDistStatus {
    const peers: ConfigDistStatus['peers'] = {};
    for (const [name, p] of this.peers) peers[name] = { version: p.version ?? null, hash: p.hash ?? null, state: p.state, error: p.error ?? null };
    return {
      version: this.version,
      hash: this.runningHash,
      localChanges: !!this.current && this.current.meta.hash !== this.runningHash,
      origin: this.current?.meta.origin ?? null,
      at: this.current ? new Date(this.current.meta.at).toISOString() : null,
      confirm: this.confirm ? { version: this.confirm.version, inMs: Math.max(0, this.confirm.deadline - this.d.wallNow()) } : null,
      peers,
      counters: { ...this.counters, refused: { ...this.counters.refused } },
    };
  }
}
