/**
 * The torture loop for nodes sharing the traffic (active-active), for the lab test and the
 * benchmark alike: on the trio lab, one random node at a time fails in a random way (crash
 * with its links, kill -9 of its daemon, graceful stop, carrier loss of a shared link), the
 * survivors must take its buckets, it comes back and must take its own again; then the next.
 * The schedule comes from a seed, so a run can be replayed. Each failure's window (from the
 * failure to the node owning its buckets again) is returned, so the stalls and datagram losses
 * the clients saw can be charged to the failure that made them (`attribute`).
 */
import { appendFile, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom } from '../lib/random.js';
import { waitFor } from '../lib/wait.js';
import type { Lab } from './lab.js';
import { SESSIONS_JS } from './paths.js';

export const SHARING_FAILURES = ['crash', 'kill', 'graceful', 'link'] as const;
export type SharingFailure = (typeof SHARING_FAILURES)[number];

/** Nodes sharing the traffic, as the loop drives them. */
export interface SharingSystem {
  readonly nodes: readonly string[];
  /** Starts a node's daemon (after a graceful stop, a kill, or a crash and `recover`). */
  start(node: string): Promise<void>;
  /** Graceful stop of a node's daemon. */
  stop(node: string): Promise<void>;
  /** Every one of `live` sees exactly `live` as members and their kernels split every bucket between them. */
  converged(live: readonly string[]): Promise<boolean>;
  /** What each node says (members, owned buckets, readiness), for a failure's message. */
  describe?(): Promise<string>;
}

export interface SharingChurnOptions {
  seconds: number;
  seed: number;
  /** Settling time after the cluster is whole again, before the next failure. */
  settleMs?: number;
  /** How long the failed node stays down (at random up to this, at least 300 ms). */
  downMs?: number;
  /** Longest wait for the survivors to own the victim's buckets. */
  moveTimeoutMs?: number;
  /** Longest wait for the victim to be back and own its buckets. */
  backTimeoutMs?: number;
  /** A line per event (with its time), to place losses in the daemons' logs. */
  journal?: string;
  /** Shared links a `link` failure may cut (carrier loss at the switch). */
  links?: readonly string[];
}

export interface SharingFailureRecord {
  kind: SharingFailure;
  node: string;
  /** Link cut, for `link`. */
  link?: string;
  /** When the failure was made (ms since the epoch). */
  atMs: number;
  /** From the failure until the survivors' kernels owned its buckets, seen by polling. */
  movedMs: number;
  /** When the node was brought back (restarted, its link up): its rejoin begins. */
  rejoinAtMs: number;
  /** When the cluster was whole again (the node owning its buckets). */
  backAtMs: number;
}

/** Runs the loop; returns the failures done, in order. Throws (with what each node said) when the cluster does not converge. */
export async function sharingTortureLoop(lab: Lab, sys: SharingSystem, o: SharingChurnOptions): Promise<SharingFailureRecord[]> {
  const random = seededRandom(o.seed);
  const note = (line: string) => (o.journal ? appendFile(o.journal, `${new Date().toISOString()} [sharing] ${line}\n`) : Promise.resolve());
  const links = o.links ?? ['eth0', 'eth1'];
  const end = Date.now() + o.seconds * 1000;
  const done: SharingFailureRecord[] = [];
  const converge = async (live: readonly string[], what: string, timeoutMs: number): Promise<void> => {
    try {
      await waitFor(what, async () => ((await sys.converged(live)) ? true : undefined), timeoutMs, 10);
    } catch (e) {
      const said = (await sys.describe?.().catch((err: Error) => `(describe failed: ${err.message})`)) ?? '';
      await note(`not converged: ${what}`);
      throw new Error(`seed ${o.seed}, failure ${done.length + 1}: ${(e as Error).message}\n${said}`);
    }
  };
  await converge(sys.nodes, 'every node a member at the start', o.backTimeoutMs ?? 30_000);
  while (Date.now() < end) {
    const node = sys.nodes[Math.floor(random() * sys.nodes.length)]!;
    const kind = SHARING_FAILURES[Math.floor(random() * SHARING_FAILURES.length)]!;
    const link = kind === 'link' ? links[Math.floor(random() * links.length)]! : undefined;
    const downMs = 300 + Math.floor(random() * Math.max(0, (o.downMs ?? 2000) - 300));
    const live = sys.nodes.filter((n) => n !== node);
    const what = `${kind}${link ? ` ${link}` : ''} ${node}`;
    await note(`seed ${o.seed}: ${what}`);
    const atMs = Date.now();
    switch (kind) {
      case 'crash':
        await lab.crash(node);
        break;
      case 'kill':
        await lab.daemonKill(node);
        break;
      case 'graceful':
        await sys.stop(node);
        break;
      case 'link':
        await lab.linkDown(node, link!, { cable: true });
        break;
    }
    await converge(live, `the survivors own ${node}'s buckets after "${what}"`, o.moveTimeoutMs ?? 10_000);
    const movedMs = Date.now() - atMs;
    await sleep(downMs);
    const rejoinAtMs = Date.now();
    switch (kind) {
      case 'crash':
        await lab.recover(node);
        await sys.start(node);
        break;
      case 'kill':
      case 'graceful':
        await sys.start(node);
        break;
      case 'link':
        await lab.linkUp(node, link!);
        break;
    }
    await converge(sys.nodes, `${node} back with its buckets after "${what}"`, o.backTimeoutMs ?? 30_000);
    const backAtMs = Date.now();
    done.push({ kind, node, ...(link ? { link } : {}), atMs, movedMs, rejoinAtMs, backAtMs });
    await note(`${node} back (buckets moved in ${movedMs} ms, whole again after ${backAtMs - atMs} ms)`);
    await sleep(o.settleMs ?? 1000);
  }
  return done;
}

/** What a sessions client reports (src/lab/sessions.ts), with its gaps and, for UDP, its lost datagrams' send times. */
export interface ClientResult { sessions: number; connected: number; kept: number; lost: number; worstStallMs: number | null; lostWhy?: unknown[]; datagramsSent?: number; datagramsLost?: number; gaps?: [number, number][]; lostAt?: number[] }

/**
 * TCP sessions (a line every 50 ms) and UDP flows (a datagram every 200 ms) to `vip` port 7
 * from each client, split evenly, until `end()`: it signals them, gives a session still
 * retransmitting 20 s to recover, and returns their reports (TCP then UDP, per client).
 */
export function churnClients(lab: Lab, o: { clients: readonly string[]; vip: string; tcp: number; udp: number }): { end: () => Promise<ClientResult[]> } {
  const runs = o.clients.flatMap((client) =>
    (['tcp', 'udp'] as const).map((kind) => {
      const log = `${lab.stateDir}/${client}-${kind}.log`;
      const args = kind === 'tcp' ? ['--count', String(Math.round(o.tcp / o.clients.length)), '--every', '50'] : ['--udp', '--count', String(Math.round(o.udp / o.clients.length)), '--every', '200'];
      // Ended by signal (the duration only bounds a run whose end never comes).
      return { log, h: lab.spawn(client, [process.execPath, SESSIONS_JS, o.vip, '7', ...args, '--seconds', '86400', '--grace', '20000', '--gaps', '150'], { log }) };
    }),
  );
  return {
    end: async () => {
      for (const r of runs) r.h.kill('SIGUSR2');
      const out: ClientResult[] = [];
      for (const r of runs) {
        await r.h.wait(60_000);
        out.push(JSON.parse((await readFile(r.log, 'utf8')).trim().split('\n').pop()!) as ClientResult);
      }
      return out;
    },
  };
}

/** The buckets (conntrack marks) a node's kernel says it owns (its `shared_owned` set). */
export async function ownedBuckets(lab: Lab, node: string): Promise<Set<number>> {
  const out = await lab.exec(node, ['nft', 'list', 'set', 'inet', 'fwlb', 'shared_owned']);
  const m = /elements = \{([^}]*)\}/s.exec(out);
  const marks = new Set<number>();
  for (const part of (m?.[1] ?? '').split(',')) {
    const t = part.trim();
    if (!t) continue;
    const r = /^(\d+)-(\d+)$/.exec(t);
    if (r) for (let v = Number(r[1]); v <= Number(r[2]); v++) marks.add(v);
    else marks.add(Number(t));
  }
  return marks;
}

/** What the clients saw during one failure's window: while the node was down, and while it rejoined. */
export interface FailureCost {
  /** Longest TCP stall that began in the window. */
  worstStallMs: number;
  /** UDP datagrams sent in the window and never answered. */
  datagramsLost: number;
  /** Of those, what began once the node was brought back (its rejoin). */
  rejoin: { worstStallMs: number; datagramsLost: number };
}

/**
 * Charges each stall and each lost datagram to a failure. A stall during which a failure was
 * made (it began at most `slackMs` before it: the last echo before a loss comes up to one send
 * interval earlier) is that failure's; any other goes to the failure whose window holds its
 * start (from the failure until the next one: a failure's effects can outlast the moment the
 * cluster is whole again, e.g. a node that just took its buckets back). A datagram sent at most
 * `slackMs` before a failure counts as sent during it. What falls before the first failure is
 * charged to `before`.
 */
export function attribute(failures: readonly { atMs: number; rejoinAtMs?: number }[], gaps: readonly [number, number][], lostAt: readonly number[], slackMs = 60): { perFailure: FailureCost[]; before: FailureCost } {
  const empty = (): FailureCost => ({ worstStallMs: 0, datagramsLost: 0, rejoin: { worstStallMs: 0, datagramsLost: 0 } });
  const perFailure: FailureCost[] = failures.map(empty);
  const before = empty();
  const slot = (t: number): { c: FailureCost; rejoining: boolean } => {
    let i = -1;
    for (let k = 0; k < failures.length; k++) if (failures[k]!.atMs <= t) i = k;
    if (i < 0) return { c: before, rejoining: false };
    const r = failures[i]!.rejoinAtMs;
    return { c: perFailure[i]!, rejoining: r !== undefined && t >= r };
  };
  for (const [from, len] of gaps) {
    // A failure made while the stall ran (or just after its last echo) made it.
    let during = -1;
    for (let k = 0; k < failures.length; k++) if (failures[k]!.atMs <= from + len && failures[k]!.atMs >= from - slackMs) during = k;
    const { c, rejoining } = during >= 0 ? { c: perFailure[during]!, rejoining: false } : slot(from);
    c.worstStallMs = Math.max(c.worstStallMs, len);
    if (rejoining) c.rejoin.worstStallMs = Math.max(c.rejoin.worstStallMs, len);
  }
  for (const t of lostAt) {
    const { c, rejoining } = slot(t + slackMs);
    c.datagramsLost++;
    if (rejoining) c.rejoin.datagramsLost++;
  }
  return { perFailure, before };
}

/** Per kind of failure: how many, the worst stall, the datagrams lost, the slowest bucket move (when known). */
export interface KindCost {
  count: number;
  worstStallMs: number;
  datagramsLost: number;
  worstMoveMs: number;
  /** Of which in the rejoins. */
  rejoin: { worstStallMs: number; datagramsLost: number };
}

/** Per kind of failure: how many, the worst stall, the datagrams lost (and of those, the rejoins'), the slowest bucket move (when known). */
export function byKind<K extends string>(failures: readonly { kind: K; movedMs?: number }[], costs: readonly FailureCost[], kinds: readonly K[]): Record<K, KindCost> {
  const out = Object.fromEntries(kinds.map((k) => [k, { count: 0, worstStallMs: 0, datagramsLost: 0, worstMoveMs: 0, rejoin: { worstStallMs: 0, datagramsLost: 0 } }])) as Record<K, KindCost>;
  failures.forEach((f, i) => {
    const k = out[f.kind];
    const c = costs[i]!;
    k.count++;
    k.worstStallMs = Math.max(k.worstStallMs, c.worstStallMs);
    k.datagramsLost += c.datagramsLost;
    k.rejoin.worstStallMs = Math.max(k.rejoin.worstStallMs, c.rejoin.worstStallMs);
    k.rejoin.datagramsLost += c.rejoin.datagramsLost;
    k.worstMoveMs = Math.max(k.worstMoveMs, f.movedMs ?? 0);
  });
  return out;
}
