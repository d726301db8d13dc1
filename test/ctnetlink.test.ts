/**
 * ctnetlink on the real kernel (needs root, conntrack(8) and nft): the Ctnetlink adapter and
 * the Conntrack built on it, in namespaces of their own (tct-<pid>-*, 198.18.0.0/15 only):
 *
 *   cli (198.18.10.2) -- rtr (nft DNAT of VIP 198.18.12.100: tcp/80 -> 198.18.11.2|.3:8080,
 *                              udp/53 -> 198.18.11.2:5353 with ct mark 42) -- srv (.2 and .3)
 *   bak: an empty namespace, the "backup" whose table create() writes.
 *
 * The test process stays in the root namespace; each scenario runs in a child started with
 * `ip netns exec NS node <this file>` (TCT_CHILD=<scenario>), which prints one JSON report on
 * stdout and must exit by itself. The router's scenario starts the server and the client
 * the same way, in their namespaces. Figures (dump time, create rate, events/s) are printed.
 * TCT_DEBUG=1 makes the backup child log its steps on stderr.
 *
 * The first tests need no root: the pure parts of the adapter (flow summaries).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Poller } from '../src/adapters/netlink/poller.js';
import {
  backendOf,
  Ctnetlink,
  createCtnetlinkConntrack,
  type CtAdapterEvent,
  isEstablished,
  serviceFilter,
  summarizeServiceFlows,
} from '../src/adapters/netlink/ctnetlink.js';
import { createConntrack, parseFlows } from '../src/adapters/conntrack.js';
import type { ServiceKey } from '../src/ports/conntrack.js';
import type { CtRecordEvent } from '../src/ports/sync.js';
import { entryToBodyV2 } from '../src/codec/sync/entry-v2.js';
import { NetlinkError } from '../src/adapters/netlink/errors.js';
import {
  type ConntrackEntry,
  hasStatus,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPS_ASSURED,
  IPS_CONFIRMED,
  IPS_DST_NAT,
  IPS_SEEN_REPLY,
  natOf,
  rawTuple,
} from '../src/codec/netlink/ctnetlink.js';

const SELF = fileURLToPath(import.meta.url);
/** Namespace prefix: the parent's pid, handed to the children (whose pids differ). */
const P = process.env.TCT_PREFIX ?? `tct-${process.pid}`;
process.env.TCT_PREFIX = P;
const NS = { cli: `${P}-cli`, rtr: `${P}-rtr`, srv: `${P}-srv`, bak: `${P}-bak` };
const VIP = '198.18.12.100';
const CLIENT = '198.18.10.2';
const B1 = '198.18.11.2';
const B2 = '198.18.11.3';
const CHILD_TIMEOUT_MS = 90_000;
const TCP_FLOWS = 6;
const UDP_FLOWS = 4;
const UDP_ASSURED = 2;
const BULK = 10_000;

const TCP_SVC: ServiceKey = { address: VIP, port: 80, proto: 'tcp', family: 4 };
const UDP_SVC: ServiceKey = { address: VIP, port: 53, proto: 'udp', family: 4 };

// =======================================================================================
// Pure parts (no root)

function entry(o: Partial<ConntrackEntry> & { sport: number; backend: string; proto?: number; state?: 'ESTABLISHED' | 'TIME_WAIT' }): ConntrackEntry {
  const proto = o.proto ?? IPPROTO_TCP;
  const dport = proto === IPPROTO_TCP ? 80 : 53;
  const [baddr, bport] = o.backend.split(':') as [string, string];
  const e: ConntrackEntry = {
    family: 4,
    orig: { src: CLIENT, dst: VIP, proto, srcPort: o.sport, dstPort: dport },
    reply: { src: baddr, dst: CLIENT, proto, srcPort: Number(bport), dstPort: o.sport },
    status: o.status ?? IPS_SEEN_REPLY | IPS_CONFIRMED | IPS_DST_NAT,
  };
  if (proto === IPPROTO_TCP) e.tcp = { state: o.state ?? 'ESTABLISHED' };
  return e;
}

// =======================================================================================
// Child side: traffic (server, client) and scenarios (router, backup)

/** TCP echo on 8080, UDP echo on 5353, on every address; ends when stdin closes. */
async function childServer(): Promise<void> {
  const sockets = new Set<Socket>();
  const tcp = createServer((s) => {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  const udp = createSocket('udp4');
  udp.on('message', (m, r) => udp.send(m, r.port, r.address));
  await new Promise<void>((r) => tcp.listen(8080, '0.0.0.0', r));
  await new Promise<void>((r) => udp.bind(5353, '0.0.0.0', r));
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const s of sockets) s.destroy();
    tcp.close();
    udp.close();
  });
}

/**
 * TCP_FLOWS sessions to VIP:80 (each echoes a line, then stays open) and UDP_FLOWS sockets
 * to VIP:53 (each gets an answer; the first UDP_ASSURED speak again after 2.2 s, which makes
 * the kernel mark them ASSURED). Prints their local ports; on "close <port>" on stdin closes
 * that TCP session; at the end of stdin closes everything.
 */
async function childClient(): Promise<void> {
  const tcp = new Map<number, Socket>();
  for (let i = 0; i < TCP_FLOWS; i++) {
    const s = connect({ host: VIP, port: 80 });
    s.on('error', () => s.destroy()); // a flow deleted under it may end in a reset
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.once('connect', () => s.write('hello\n'));
      s.once('data', () => resolve());
    });
    tcp.set(s.localPort as number, s);
  }
  const udp = await Promise.all(
    Array.from({ length: UDP_FLOWS }, async () => {
      const u = createSocket('udp4');
      await new Promise<void>((r) => u.bind(0, CLIENT, r));
      const answer = () => new Promise<void>((r) => u.once('message', () => r()));
      const a = answer();
      u.send('q', 53, VIP);
      await a;
      return u;
    }),
  );
  await sleep(2200);
  for (const u of udp.slice(0, UDP_ASSURED)) {
    const a = new Promise<void>((r) => u.once('message', () => r()));
    u.send('again', 53, VIP);
    await a;
  }
  process.stdout.write(JSON.stringify({ ready: true, tcp: [...tcp.keys()], udp: udp.map((u) => u.address().port) }) + '\n');
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (l) => {
    const m = /^close (\d+)$/.exec(l);
    if (m) tcp.get(Number(m[1]))?.end();
  });
  rl.on('close', () => {
    for (const s of tcp.values()) s.destroy();
    for (const u of udp) u.close();
  });
}

/** Starts `node SELF` in a namespace in a mode; resolves with the process and its first JSON line. */
function startIn(ns: string, mode: string): Promise<{ proc: ChildProcess; first: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, SELF], {
      env: { ...process.env, TCT_CHILD: mode },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${mode} in ${ns} did not get ready`));
    }, 20_000);
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once('line', (l) => {
      clearTimeout(timer);
      resolve({ proc, first: JSON.parse(l) as Record<string, unknown> });
    });
    proc.once('exit', (code) => reject(new Error(`${mode} exited (${code}) before getting ready`)));
  });
}

function stop(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.stdin?.end();
  });
}

/** `conntrack -L` lines (the CLI, as the peer that confirms). */
function conntrackL(args: string[] = []): string[] {
  const r = spawnSync('conntrack', ['-L', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return r.stdout.split('\n').filter((l) => /^(tcp|udp|icmp)/.test(l));
}

/** The two tuples of a `conntrack -L` line, as "src:sport->dst:dport" strings. */
function cliTuples(line: string): { orig: string; reply: string } {
  const v = (k: string) => [...line.matchAll(new RegExp(`\\b${k}=(\\S+)`, 'g'))].map((m) => m[1]);
  const [s, d, sp, dp] = [v('src'), v('dst'), v('sport'), v('dport')];
  return { orig: `${s[0]}:${sp[0]}->${d[0]}:${dp[0]}`, reply: `${s[1]}:${sp[1]}->${d[1]}:${dp[1]}` };
}
function tupleText(t: ConntrackEntry['orig']): string {
  return `${t.src}:${t.srcPort}->${t.dst}:${t.dstPort}`;
}

function waitEvent(ct: Ctnetlink, pred: (e: CtAdapterEvent) => boolean, ms = 3000): Promise<CtAdapterEvent | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      off();
      resolve(undefined);
    }, ms);
    const off = ct.onEvent((e) => {
      if (!pred(e)) return;
      clearTimeout(t);
      off();
      resolve(e);
    });
  });
}

function stats(xs: number[]): { n: number; min: number; median: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => Number((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN).toFixed(2));
  return { n: s.length, min: q(0), median: q(0.5), max: q(1) };
}

/** The router: real flows through DNAT; dump, events, the Conntrack, get, delete. */
async function childRouter(): Promise<Record<string, unknown>> {
  const report: Record<string, unknown> = {};
  const poller = new Poller();
  const ct = Ctnetlink.open({ poller, events: ['new', 'update', 'destroy'] });
  const events: Array<CtAdapterEvent & { at: number }> = [];
  // Each event also as the sync record it becomes (read straight from the kernel's bytes):
  // handed to the record listener first, then as an entry, so the two lists pair up.
  const records: (CtRecordEvent | { kind: 'lost' })[] = [];
  ct.onRecord((e) => records.push(e));
  ct.onEvent((e) => events.push({ ...e, at: performance.now() }));

  const server = await startIn(NS.srv, 'server');
  const client = await startIn(NS.cli, 'client');
  const tcpPorts = client.first.tcp as number[];
  const udpPorts = client.first.udp as number[];
  report.clientPorts = { tcp: tcpPorts, udp: udpPorts };

  // Dump: every flow, with its tuples and NAT.
  const all = await ct.dump();
  const mine = (e: ConntrackEntry) => e.orig.src === CLIENT && e.orig.dst === VIP;
  report.dump = all.filter(mine).map((e) => ({
    proto: e.orig.proto,
    orig: tupleText(e.orig),
    reply: tupleText(e.reply),
    nat: natOf(e),
    status: e.status,
    state: e.tcp?.state,
    mark: e.mark,
    assured: hasStatus(e, 'ASSURED'),
  }));
  report.cliDump = conntrackL().map(cliTuples);
  report.dumpFamily6 = (await ct.dump({ family: 6 })).length;
  report.dumpMark42 = (await ct.dump({ mark: { value: 42 } })).map((e) => e.orig.proto);
  report.dumpTcpService = (await ct.dump(serviceFilter(TCP_SVC))).length;

  // Events seen so far for our flows.
  const ours = events.filter((e) => e.kind !== 'lost' && mine(e.entry));
  report.eventKinds = {
    newTcp: ours.filter((e) => e.kind === 'new' && e.entry.orig.proto === IPPROTO_TCP).length,
    newUdp: ours.filter((e) => e.kind === 'new' && e.entry.orig.proto === IPPROTO_UDP).length,
    establishedUpdates: ours.filter((e) => e.kind === 'update' && e.entry.tcp?.state === 'ESTABLISHED').length,
    assuredUdpUpdates: ours.filter((e) => e.kind === 'update' && e.entry.orig.proto === IPPROTO_UDP && hasStatus(e.entry, 'ASSURED')).length,
    selfFlags: [...new Set(ours.map((e) => (e.kind === 'lost' ? 'lost' : e.self)))],
  };

  // The Conntrack interface, beside the CLI one.
  const conn = createCtnetlinkConntrack(ct);
  const cli = createConntrack();
  report.serviceFlowsTcp = Object.fromEntries((await conn.serviceFlows(TCP_SVC)).byBackend);
  report.serviceFlowsTcpCli = Object.fromEntries((await cli.serviceFlows(TCP_SVC)).byBackend);
  report.serviceFlowsUdp = Object.fromEntries((await conn.serviceFlows(UDP_SVC)).byBackend);
  report.serviceFlowsUdpCli = Object.fromEntries((await cli.serviceFlows(UDP_SVC)).byBackend);

  // Copies for the backup, before anything is deleted: one TCP flow to B1, one UDP flow.
  const copies = all.filter((e) => mine(e) && ((e.orig.proto === IPPROTO_TCP && e.reply.src === B1) || e.orig.proto === IPPROTO_UDP));
  report.copies = [copies.find((e) => e.orig.proto === IPPROTO_TCP), copies.find((e) => e.orig.proto === IPPROTO_UDP)];

  // Delete the flows to B2: counted, confirmed by the CLI, seen as our own destroy events.
  const b2Flows = (report.serviceFlowsTcp as Record<string, { flows: number }>)[`${B2}:8080`]?.flows ?? 0;
  const destroyedBefore = events.filter((e) => e.kind === 'destroy').length;
  const t0 = performance.now();
  report.deleted = await conn.deleteBackendFlows(TCP_SVC, { address: B2, port: 8080 });
  report.deleteMs = Number((performance.now() - t0).toFixed(2));
  report.b2FlowsBefore = b2Flows;
  await sleep(100);
  report.cliAfterDelete = {
    b2: conntrackL(['-p', 'tcp', '--reply-src', B2]).length,
    b1: conntrackL(['-p', 'tcp', '--reply-src', B1]).length,
  };
  const destroys = events.filter((e) => e.kind === 'destroy').slice(destroyedBefore);
  report.deleteEvents = destroys.map((e) => (e.kind === 'destroy' ? { self: e.self, backend: e.entry.reply.src } : e.kind));
  report.deleteAgain = await conn.deleteBackendFlows(TCP_SVC, { address: B2, port: 8080 });

  // get: a live flow, and one that is not there.
  const b1 = (await ct.dump(serviceFilter(TCP_SVC))).find((e) => e.reply.src === B1);
  assert.ok(b1, 'a flow to B1');
  const got = await ct.get(b1.orig);
  report.get = got ? { orig: tupleText(got.orig), reply: tupleText(got.reply), id: got.id === b1.id, state: got.tcp?.state } : null;
  report.getMissing = (await ct.get({ ...b1.orig, srcPort: 1 })) === undefined;

  // delete: idempotent; its destroy event is ours.
  const ev = waitEvent(ct, (e) => e.kind === 'destroy' && e.entry.orig.srcPort === b1.orig.srcPort);
  report.delete1 = await ct.delete(b1.orig);
  report.delete2 = await ct.delete(b1.orig);
  const dev = await ev;
  report.deleteEventSelf = dev && dev.kind !== 'lost' ? dev.self : null;
  // A delete by `conntrack -D` is not ours.
  const u = (await ct.dump(serviceFilter(UDP_SVC)))[0];
  assert.ok(u);
  const ev2 = waitEvent(ct, (e) => e.kind === 'destroy' && e.entry.orig.srcPort === u.orig.srcPort);
  execFileSync('conntrack', ['-D', '-p', 'udp', '--orig-port-src', String(u.orig.srcPort)], { stdio: 'ignore' });
  const dev2 = await ev2;
  report.cliDeleteEventSelf = dev2 && dev2.kind !== 'lost' ? dev2.self : null;

  // A TCP close: the update events follow the state machine.
  const closing = (await ct.dump(serviceFilter(TCP_SVC)))[0];
  assert.ok(closing);
  const tw = waitEvent(ct, (e) => e.kind === 'update' && e.entry.orig.srcPort === closing.orig.srcPort && e.entry.tcp?.state === 'TIME_WAIT');
  client.proc.stdin?.write(`close ${closing.orig.srcPort}\n`);
  const twe = await tw;
  report.closeStates = events
    .filter((e) => e.kind === 'update' && e.entry.orig.srcPort === closing.orig.srcPort)
    .map((e) => (e.kind === 'lost' ? '' : e.entry.tcp?.state));
  report.timeWaitSeen = twe !== undefined;

  // Creating what is there: 'exists' (EEXIST), not an error.
  try {
    report.createExisting = await ct.create(closing);
  } catch (err) {
    report.createExisting = err instanceof NetlinkError ? err.errno : String(err);
  }

  await stop(client.proc);
  await stop(server.proc);
  // Every event's record: the bytes the encoder makes of the decoded entry, its mark and kind.
  report.records = {
    n: records.length,
    events: events.length,
    same: records.filter((r, i) => {
      const e = events[i];
      if (!e || r.kind !== e.kind) return false;
      if (r.kind === 'lost' || e.kind === 'lost') return true;
      return Buffer.from(r.body).equals(Buffer.from(entryToBodyV2(e.entry))) && r.mark === e.entry.mark && r.self === e.self;
    }).length,
  };
  report.counters = ct.counters();
  report.dropped = ct.dropped;
  ct.close();
  poller.close();
  await sleep(10);
  report.activeAfterClose = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap');
  return report;
}

/** A synthetic established TCP flow i, DNATed to one of two backends. */
function bulkEntry(i: number): ConntrackEntry {
  const src = `198.18.${20 + (i >> 8)}.${i & 0xff}`;
  const sport = 10_000 + (i % 50_000);
  const backend = i % 2 === 0 ? B1 : B2;
  return {
    family: 4,
    orig: { src, dst: VIP, proto: IPPROTO_TCP, srcPort: sport, dstPort: 80 },
    reply: { src: backend, dst: src, proto: IPPROTO_TCP, srcPort: 8080, dstPort: sport },
    status: IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED | IPS_DST_NAT,
    timeout: 3600,
    mark: i,
    tcp: { state: 'ESTABLISHED', wscaleOrig: 7, wscaleReply: 7, flagsOrig: 3, flagsReply: 3 },
  };
}

async function runPool<T>(items: T[], n: number, f: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await f(items[next++] as T);
    }),
  );
}

/**
 * The backup: create() the router's copies and 10k synthetic flows; dump time; events/s.
 *
 * The event listener opens first: with net.netfilter.nf_conntrack_events = 2 (the default,
 * "auto"), an entry made while no one listens in the namespace gets no event extension and
 * never reports anything, not even its destruction.
 */
async function childBackup(copies: ConntrackEntry[]): Promise<Record<string, unknown>> {
  const report: Record<string, unknown> = {};
  const T0 = performance.now();
  const step = (what: string) => process.env.TCT_DEBUG && process.stderr.write(`backup ${(performance.now() - T0).toFixed(0)} ms: ${what}\n`);
  const poller = new Poller();
  execFileSync('conntrack', ['-F'], { stdio: 'ignore' });
  const listener = Ctnetlink.open({ poller, events: ['new', 'destroy'] });
  const seen = { new: 0, newSelf: 0, destroy: 0, lost: 0, firstDestroy: 0, lastDestroy: 0 };
  listener.onEvent((e) => {
    if (e.kind === 'lost') seen.lost++;
    else if (e.kind === 'new') {
      seen.new++;
      if (e.self) seen.newSelf++;
    } else if (e.kind === 'destroy') {
      if (seen.firstDestroy === 0) seen.firstDestroy = performance.now();
      seen.destroy++;
      seen.lastDestroy = performance.now();
    }
  });
  const ct = Ctnetlink.open({ poller });

  // The router's entries, written here: same tuples and NAT, says conntrack(8).
  step('copies');
  report.created = [];
  for (const e of copies) (report.created as string[]).push(await ct.create(e));
  report.createdAgain = await Promise.all(copies.map((e) => ct.create(e)));
  // A later record of an entry changes it in place (mark, timeout); one that would clear
  // ASSURED is refused (the sync then replaces the entry); an absent entry is 'absent'.
  step('update in place');
  const tcpEntry = copies.find((e) => e.orig.proto === IPPROTO_TCP)!;
  const asRaw = (e: ConntrackEntry) => ({ ...e, orig: rawTuple(e.family, e.orig, 'o'), reply: rawTuple(e.family, e.reply, 'r') });
  report.updated = await ct.updateRaw({ ...asRaw(tcpEntry), mark: 77, timeout: 999 });
  const after = await ct.get(tcpEntry.orig);
  report.afterUpdate = { mark: after?.mark, timeoutBelow1000: (after?.timeout ?? 0) > 900 && (after?.timeout ?? 0) <= 999, assured: after ? hasStatus(after, 'ASSURED') : null, dnat: after ? natOf(after) : null };
  report.updateClearing = await ct.updateRaw({ ...asRaw(tcpEntry), status: (tcpEntry.status ?? 0) & ~IPS_ASSURED }).then((r) => r, (e: unknown) => (e instanceof NetlinkError ? e.errno : String(e)));
  report.updateAbsent = await ct.updateRaw({ ...asRaw(tcpEntry), orig: { ...asRaw(tcpEntry).orig, srcPort: 2 } });
  await ct.updateRaw({ ...asRaw(tcpEntry), mark: tcpEntry.mark ?? 0 }); // as it was, for the checks below
  // Writes in one go, outcomes at once: create (new), create (there), update, delete of
  // nothing, create then delete of a new one.
  const fresh = asRaw(bulkEntry(BULK + 7));
  report.batch = ct.writeBatch([
    { op: 'create', entry: fresh },
    { op: 'create', entry: asRaw(tcpEntry) },
    { op: 'update', entry: { ...asRaw(tcpEntry), mark: tcpEntry.mark ?? 0 } },
    { op: 'delete', entry: { ...fresh, orig: { ...fresh.orig, srcPort: 3 } } },
    { op: 'delete', entry: fresh },
  ]).map((r) => r ?? 'ok');
  report.batchLeft = (await ct.get(bulkEntry(BULK + 7).orig)) === undefined ? 'gone' : 'there';
  report.cli = conntrackL().map((l) => ({ ...cliTuples(l), assured: l.includes('[ASSURED]'), established: l.includes('ESTABLISHED'), mark: /mark=(\d+)/.exec(l)?.[1] }));
  report.dumped = (await ct.dump()).map((e) => ({ orig: tupleText(e.orig), reply: tupleText(e.reply), nat: natOf(e), status: e.status, tcp: e.tcp, mark: e.mark }));
  report.createRetries = ct.counters().createRetries;
  // The listener's own create is marked self.
  const own = bulkEntry(BULK + 1);
  report.ownCreate = await listener.create(own);
  await ct.delete(own.orig);
  // With skipSelfEvents the kernel drops our own writes' events (BPF on the event socket):
  // another writer's still arrive.
  const quiet = Ctnetlink.open({ poller, events: ['new'], skipSelfEvents: true });
  const heard: number[] = [];
  quiet.onEvent((e) => e.kind === 'new' && heard.push(e.entry.orig.srcPort ?? 0));
  const mine = bulkEntry(BULK + 2);
  const other = bulkEntry(BULK + 3);
  await quiet.create(mine);
  await ct.create(other);
  await sleep(100);
  report.quiet = { filtered: quiet.counters().selfEventsFiltered, skipped: quiet.counters().selfEventsSkipped, heard: heard.length, theirs: heard.includes(other.orig.srcPort ?? -1) };
  quiet.close();
  await ct.delete(mine.orig);
  await ct.delete(other.orig);

  // A create the kernel refuses: the error carries the errno name.
  step('refused');
  const [tcpCopy] = copies;
  assert.ok(tcpCopy);
  report.refused = await ct
    .create({ ...tcpCopy, orig: { ...tcpCopy.orig, srcPort: 1 }, reply: { ...tcpCopy.reply, dstPort: 1 }, status: 0 }, { keepConfirmed: false, timeout: 10 })
    .then((r) => r, (e: unknown) => (e instanceof NetlinkError ? `${e.errno} ${e.op}` : String(e)));

  // 10k entries through create(), 64 in flight.
  step('bulk create');
  const bulk = Array.from({ length: BULK }, (_, i) => bulkEntry(i));
  let t0 = performance.now();
  let createdBulk = 0;
  await runPool(bulk, 64, async (e) => {
    if ((await ct.create(e)) === 'created') createdBulk++;
  });
  const createMs = performance.now() - t0;
  report.bulkCreated = createdBulk;
  report.createPerSec = Math.round(BULK / (createMs / 1000));
  report.cliCount = Number(execFileSync('conntrack', ['-C'], { encoding: 'utf8' }).trim());
  await sleep(100);
  report.newEvents = { created: BULK + copies.length + 4, received: seen.new, self: seen.newSelf };

  // Dump time, ours and conntrack(8)'s (-L into /dev/null), several times each.
  step('dump time');
  const ours: number[] = [];
  let n = 0;
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    n = (await ct.dump()).length;
    ours.push(performance.now() - t0);
  }
  const theirs: number[] = [];
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    spawnSync('conntrack', ['-L'], { stdio: 'ignore' });
    theirs.push(performance.now() - t0);
  }
  report.dumpCount = n;
  // Streamed: batches as they are read, the dump waiting while a batch is handled; a stop.
  let streamed = 0;
  let batches = 0;
  report.streamTotal = await ct.dumpStream(async (entries) => {
    batches++;
    streamed += entries.length;
    await sleep(2); // a slow reader: the dump waits in the kernel meanwhile
  });
  report.streamed = { streamed, batchesAtLeast: batches >= Math.floor(n / 512) };
  report.streamStopped = await ct.dumpStream(() => 'stop');
  report.dumpMs = stats(ours);
  report.cliDumpMs = stats(theirs);
  const conn = createCtnetlinkConntrack(ct);
  t0 = performance.now();
  const flows = await conn.serviceFlows(TCP_SVC);
  report.serviceFlowsMs = Number((performance.now() - t0).toFixed(2));
  report.serviceFlows = Object.fromEntries(flows.byBackend);
  const cliFlows = execFileSync('conntrack', ['-L', '-p', 'tcp', '--orig-dst', VIP, '--orig-port-dst', '80'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 1 << 28,
  });
  report.matchesCli = JSON.stringify(Object.fromEntries(parseFlows(cliFlows).byBackend)) === JSON.stringify(report.serviceFlows);

  // Events/s, 1: `conntrack -F` (run asynchronously: our loop keeps reading) destroys them all;
  // the kernel makes the events as fast as it deletes, so this is the rate we keep up with.
  step('flush: events/s');
  {
    const total = Number(execFileSync('conntrack', ['-C'], { encoding: 'utf8' }).trim());
    const before = seen.destroy;
    seen.firstDestroy = 0;
    const flush = spawn('conntrack', ['-F'], { stdio: 'ignore' });
    const t = performance.now();
    await new Promise((r) => flush.once('exit', r));
    const flushMs = performance.now() - t;
    const deadline = Date.now() + 5000;
    while (seen.destroy - before < total && seen.lost === 0 && Date.now() < deadline) await sleep(20);
    const span = seen.lastDestroy - seen.firstDestroy;
    report.events = {
      total,
      received: seen.destroy - before,
      lost: seen.lost,
      flushMs: Number(flushMs.toFixed(1)),
      spanMs: Number(span.toFixed(1)),
      perSec: Math.round((seen.destroy - before) / (span / 1000)),
    };
  }

  // Events/s, 2: the same with the loop blocked during the flush (synchronous), so all the
  // events wait in the socket buffer: how fast we drain them.
  step('drain');
  {
    await runPool(bulk, 64, (e) => ct.create(e));
    const before = seen.destroy;
    const t = performance.now();
    execFileSync('conntrack', ['-F'], { stdio: 'ignore' });
    const blockedMs = performance.now() - t;
    const t1 = performance.now();
    const deadline = Date.now() + 5000;
    while (seen.destroy - before < BULK && seen.lost === 0 && Date.now() < deadline) await sleep(5);
    const drainMs = seen.lastDestroy - t1;
    report.drain = { queued: BULK, received: seen.destroy - before, lost: seen.lost, blockedMs: Number(blockedMs.toFixed(1)), drainMs: Number(drainMs.toFixed(1)), perSec: Math.round((seen.destroy - before) / (drainMs / 1000)) };
  }

  // A tiny buffer while the loop is blocked: the kernel drops, we say 'lost', and go on.
  step('overrun');
  {
    await runPool(bulk.slice(0, 2000), 64, (e) => ct.create(e));
    const ev = Ctnetlink.open({ poller, events: ['destroy'], eventBuffer: 4096 });
    const kinds: string[] = [];
    ev.onEvent((e) => kinds.push(e.kind));
    execFileSync('conntrack', ['-F'], { stdio: 'ignore' }); // synchronous: nothing is read meanwhile
    await sleep(100);
    report.overrun = { lost: kinds.filter((k) => k === 'lost').length, destroyKept: kinds.filter((k) => k === 'destroy').length };
    const again = waitEvent(ev, (e) => e.kind === 'destroy');
    await ct.create(bulk[0] as ConntrackEntry);
    await ct.delete((bulk[0] as ConntrackEntry).orig);
    report.overrun = { ...(report.overrun as object), eventAfter: (await again) !== undefined };
    ev.close();
  }

  step('end');
  execFileSync('conntrack', ['-F'], { stdio: 'ignore' });
  report.counters = ct.counters();
  report.listenerCounters = listener.counters();
  report.dropped = { ...ct.dropped, ...listener.dropped };
  ct.close();
  listener.close();
  poller.close();
  await sleep(10);
  report.activeAfterClose = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap');
  return report;
}

// =======================================================================================
// Parent side

interface ChildResult {
  report: Record<string, any>;
  code: number | null;
  killed: boolean;
  stderr: string;
  wallMs: number;
}

function runChild(ns: string, scenario: string, input = ''): Promise<ChildResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, SELF], {
      env: { ...process.env, TCT_CHILD: scenario },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end(input);
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, CHILD_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      let report: Record<string, any> = {};
      try {
        report = JSON.parse(out.trim().split('\n').pop() ?? '') as Record<string, any>;
      } catch {
        report = { unparsed: out };
      }
      resolve({ report, code, killed, stderr: err, wallMs: performance.now() - t0 });
    });
  });
}

async function readStdin(): Promise<string> {
  let s = '';
  for await (const c of process.stdin) s += String(c);
  return s;
}

const childMode = process.env.TCT_CHILD;
if (childMode === 'server') {
  await childServer();
} else if (childMode === 'client') {
  await childClient();
} else if (childMode) {
  try {
    const report = childMode === 'router' ? await childRouter() : await childBackup(JSON.parse(await readStdin()) as ConntrackEntry[]);
    process.stdout.write(JSON.stringify(report) + '\n');
  } catch (err) {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
} else {
  const haveTools = spawnSync('conntrack', ['--version']).status === 0 && spawnSync('nft', ['--version']).status === 0;
  const isRoot = process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0;
  const skip = isRoot && haveTools ? false : 'needs root, iproute2, nft and conntrack(8)';

  const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const RULESET = `
table ip tct {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${VIP} tcp dport 80 dnat to numgen inc mod 2 map { 0 : ${B1}, 1 : ${B2} } : 8080
    ip daddr ${VIP} udp dport 53 dnat to ${B1} : 5353
  }
  chain mark_udp {
    type filter hook forward priority filter; policy accept;
    udp dport 5353 ct mark set 42
  }
}
`;

test('summarizeServiceFlows groups by reply source and counts TCP ESTABLISHED / UDP ASSURED', () => {
  const es = [
    entry({ sport: 1, backend: '198.18.11.2:8080' }),
    entry({ sport: 2, backend: '198.18.11.2:8080', state: 'TIME_WAIT' }),
    entry({ sport: 3, backend: '198.18.11.3:8080' }),
    entry({ sport: 4, backend: '198.18.11.2:5353', proto: IPPROTO_UDP, status: IPS_SEEN_REPLY | IPS_ASSURED }),
    entry({ sport: 5, backend: '198.18.11.2:5353', proto: IPPROTO_UDP }),
  ];
  const tcp = summarizeServiceFlows(es, TCP_SVC);
  assert.deepEqual(Object.fromEntries(tcp.byBackend), {
    '198.18.11.2:8080': { flows: 2, established: 1 },
    '198.18.11.3:8080': { flows: 1, established: 1 },
  });
  const udp = summarizeServiceFlows(es, UDP_SVC);
  assert.deepEqual(Object.fromEntries(udp.byBackend), { '198.18.11.2:5353': { flows: 2, established: 1 } });
  assert.equal(summarizeServiceFlows(es, { ...TCP_SVC, port: 81 }).byBackend.size, 0);
  assert.equal(backendOf(es[0] as ConntrackEntry), '198.18.11.2:8080');
  assert.equal(isEstablished(es[1] as ConntrackEntry), false);
  assert.deepEqual(serviceFilter(UDP_SVC), { family: 4, orig: { proto: IPPROTO_UDP, dst: VIP, dstPort: 53 } });
});

  before(() => {
    if (skip) return;
    for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    for (const ns of Object.values(NS)) {
      ip(['netns', 'add', ns]);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    ip(['-n', NS.cli, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'c0', 'netns', NS.rtr]);
    ip(['-n', NS.srv, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 's0', 'netns', NS.rtr]);
    ip(['-n', NS.cli, 'addr', 'add', `${CLIENT}/24`, 'dev', 'eth0']);
    ip(['-n', NS.rtr, 'addr', 'add', '198.18.10.1/24', 'dev', 'c0']);
    ip(['-n', NS.rtr, 'addr', 'add', '198.18.11.1/24', 'dev', 's0']);
    ip(['-n', NS.srv, 'addr', 'add', `${B1}/24`, 'dev', 'eth0']);
    ip(['-n', NS.srv, 'addr', 'add', `${B2}/24`, 'dev', 'eth0']);
    for (const [ns, dev] of [[NS.cli, 'eth0'], [NS.srv, 'eth0'], [NS.rtr, 'c0'], [NS.rtr, 's0']] as const) ip(['-n', ns, 'link', 'set', dev, 'up']);
    ip(['-n', NS.cli, 'route', 'add', 'default', 'via', '198.18.10.1']);
    ip(['-n', NS.srv, 'route', 'add', 'default', 'via', '198.18.11.1']);
    execFileSync('ip', ['netns', 'exec', NS.rtr, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    execFileSync('ip', ['netns', 'exec', NS.rtr, 'nft', '-f', '-'], { input: RULESET });
  });

  after(() => {
    if (skip) return;
    for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  });

  let copies: ConntrackEntry[] = [];

  test('router: real flows through DNAT, seen by dump, events, the Conntrack; get and delete', { skip }, async () => {
    const r = await runChild(NS.rtr, 'router');
    assert.equal(r.killed, false, `the child did not exit by itself\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    const rep = r.report;
    const { tcp: tcpPorts, udp: udpPorts } = rep.clientPorts as { tcp: number[]; udp: number[] };

    // Dump: every flow with the right tuples, DNAT in the reply tuple.
    const tcpFlows = rep.dump.filter((d: any) => d.proto === IPPROTO_TCP);
    const udpFlows = rep.dump.filter((d: any) => d.proto === IPPROTO_UDP);
    assert.equal(tcpFlows.length, TCP_FLOWS);
    assert.equal(udpFlows.length, UDP_FLOWS);
    for (const d of tcpFlows) {
      const sport = Number(/:(\d+)->/.exec(d.orig)?.[1]);
      assert.ok(tcpPorts.includes(sport), d.orig);
      assert.equal(d.orig, `${CLIENT}:${sport}->${VIP}:80`);
      assert.match(d.reply, new RegExp(`^198\\.18\\.11\\.[23]:8080->${CLIENT}:${sport}$`));
      assert.deepEqual(d.nat, { dnat: { address: d.reply.split(':')[0], port: 8080 } });
      assert.equal(d.state, 'ESTABLISHED');
      assert.ok(d.assured);
      assert.ok(d.status & IPS_DST_NAT);
    }
    assert.equal(tcpFlows.filter((d: any) => d.reply.startsWith(`${B1}:`)).length, TCP_FLOWS / 2, 'numgen alternates');
    for (const d of udpFlows) {
      const sport = Number(/:(\d+)->/.exec(d.orig)?.[1]);
      assert.ok(udpPorts.includes(sport));
      assert.equal(d.reply, `${B1}:5353->${CLIENT}:${sport}`);
      assert.equal(d.mark, 42);
    }
    assert.equal(udpFlows.filter((d: any) => d.assured).length, UDP_ASSURED);
    // conntrack(8) sees the same tuples.
    const ours = rep.dump.map((d: any) => `${d.orig} ${d.reply}`).sort();
    const theirs = rep.cliDump.filter((c: any) => c.orig.includes(`->${VIP}:`)).map((c: any) => `${c.orig} ${c.reply}`).sort();
    assert.deepEqual(ours, theirs);
    assert.equal(rep.dumpFamily6, 0);
    assert.deepEqual([...new Set(rep.dumpMark42)], [IPPROTO_UDP]);
    assert.equal(rep.dumpMark42.length, UDP_FLOWS);
    assert.equal(rep.dumpTcpService, TCP_FLOWS);

    // Events: a new one per flow, ESTABLISHED / ASSURED updates, none of them ours.
    assert.equal(rep.eventKinds.newTcp, TCP_FLOWS);
    assert.equal(rep.eventKinds.newUdp, UDP_FLOWS);
    assert.equal(rep.eventKinds.establishedUpdates, TCP_FLOWS);
    assert.equal(rep.eventKinds.assuredUdpUpdates, UDP_ASSURED);
    assert.deepEqual(rep.eventKinds.selfFlags, [false]);
    // ... and each of them as a sync record, the same bytes as the decoded entry encoded.
    assert.ok(rep.records.n > TCP_FLOWS + UDP_FLOWS, `${rep.records.n} records`);
    assert.equal(rep.records.n, rep.records.events);
    assert.equal(rep.records.same, rep.records.n);

    // The Conntrack: counts per backend, the same as the CLI adapter's.
    assert.deepEqual(rep.serviceFlowsTcp, { [`${B1}:8080`]: { flows: 3, established: 3 }, [`${B2}:8080`]: { flows: 3, established: 3 } });
    assert.deepEqual(rep.serviceFlowsTcp, rep.serviceFlowsTcpCli);
    assert.deepEqual(rep.serviceFlowsUdp, { [`${B1}:5353`]: { flows: UDP_FLOWS, established: UDP_ASSURED } });
    assert.deepEqual(rep.serviceFlowsUdp, rep.serviceFlowsUdpCli);
    assert.equal(rep.deleted, rep.b2FlowsBefore);
    assert.equal(rep.deleted, 3);
    assert.deepEqual(rep.cliAfterDelete, { b2: 0, b1: 3 });
    assert.deepEqual(rep.deleteEvents, [
      { self: true, backend: B2 },
      { self: true, backend: B2 },
      { self: true, backend: B2 },
    ]);
    assert.equal(rep.deleteAgain, 0);

    // get / delete.
    assert.equal(rep.get.state, 'ESTABLISHED');
    assert.equal(rep.get.id, true);
    assert.equal(rep.getMissing, true);
    assert.equal(rep.delete1, 'deleted');
    assert.equal(rep.delete2, 'absent');
    assert.equal(rep.deleteEventSelf, true);
    assert.equal(rep.cliDeleteEventSelf, false);
    assert.equal(rep.timeWaitSeen, true);
    assert.ok(rep.closeStates.includes('TIME_WAIT'), rep.closeStates);
    assert.equal(rep.createExisting, 'exists');

    assert.deepEqual(rep.dropped, {});
    assert.equal(rep.counters.eventsByKind.lost, 0);
    assert.deepEqual(rep.activeAfterClose, []);
    copies = (rep.copies as Array<ConntrackEntry | undefined>).filter((e): e is ConntrackEntry => e !== undefined);
    assert.equal(copies.length, 2);
    console.log(
      `router: ${rep.dump.length} flows dumped; deleteBackendFlows removed ${rep.deleted} in ${rep.deleteMs} ms; ` +
        `TCP close seen as ${rep.closeStates.join(' > ')}; child ran ${r.wallMs.toFixed(0)} ms`,
    );
  });

  test('backup: create() writes the router\'s entries with the same tuples and NAT; 10k entries; dump time; events/s', { skip }, async () => {
    assert.equal(copies.length, 2, 'the router test ran first');
    const r = await runChild(NS.bak, 'backup', JSON.stringify(copies));
    assert.equal(r.killed, false, `the child did not exit by itself\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    const rep = r.report;
    assert.deepEqual(rep.created, ['created', 'created']);
    assert.deepEqual(rep.createdAgain, ['exists', 'exists']);
    assert.equal(rep.updated, 'updated');
    const tcpCopy = copies.find((e) => e.orig.proto === IPPROTO_TCP)!;
    assert.deepEqual(rep.afterUpdate, { mark: 77, timeoutBelow1000: true, assured: true, dnat: natOf(tcpCopy) }, 'changed in place, NAT kept');
    assert.equal(rep.updateClearing, 'EBUSY');
    assert.equal(rep.updateAbsent, 'absent');
    assert.deepEqual(rep.batch, ['ok', 'EEXIST', 'ok', 'ENOENT', 'ok']);
    assert.equal(rep.batchLeft, 'gone');
    assert.equal(rep.createRetries, 0, 'IPS_CONFIRMED kept: right the first time on this kernel');
    // conntrack(8) in the backup shows the router's tuples, NAT included.
    const want = copies.map((e) => ({ orig: tupleText(e.orig), reply: tupleText(e.reply) })).sort((a, b) => a.orig.localeCompare(b.orig));
    const got = (rep.cli as Array<{ orig: string; reply: string }>).map((c) => ({ orig: c.orig, reply: c.reply })).sort((a, b) => a.orig.localeCompare(b.orig));
    assert.deepEqual(got, want);
    const tcpCli = (rep.cli as any[]).find((c) => c.established);
    assert.ok(tcpCli?.assured, 'ESTABLISHED and [ASSURED]');
    const dumped = rep.dumped as any[];
    for (const e of copies) {
      const d = dumped.find((x) => x.orig === tupleText(e.orig));
      assert.ok(d);
      assert.equal(d.reply, tupleText(e.reply));
      assert.deepEqual(d.nat, natOf(e));
      assert.ok(d.status & IPS_DST_NAT, 'the NAT core set IPS_DST_NAT');
      assert.equal(d.status & (IPS_SEEN_REPLY | IPS_ASSURED), (e.status ?? 0) & (IPS_SEEN_REPLY | IPS_ASSURED));
      assert.equal(d.mark, e.mark);
      if (e.orig.proto === IPPROTO_TCP) {
        assert.equal(d.tcp.state, 'ESTABLISHED');
        assert.ok(d.tcp.flagsOrig & 0x08 && d.tcp.flagsReply & 0x08, 'be-liberal');
      }
    }
    assert.match(rep.refused, /^E[A-Z]+ IPCTNL_MSG_CT_NEW$/, 'refused, with the errno name');

    assert.equal(rep.bulkCreated, BULK);
    assert.equal(rep.cliCount, BULK + 2);
    assert.equal(rep.dumpCount, BULK + 2);
    assert.equal(rep.streamTotal, BULK + 2);
    assert.deepEqual(rep.streamed, { streamed: BULK + 2, batchesAtLeast: true });
    assert.equal(rep.streamStopped, 512, 'stopped after the first batch');
    assert.deepEqual(rep.serviceFlows, { [`${B1}:8080`]: { flows: BULK / 2 + 1, established: BULK / 2 + 1 }, [`${B2}:8080`]: { flows: BULK / 2, established: BULK / 2 } });
    assert.equal(rep.matchesCli, true);
    assert.equal(rep.events.lost, 0, 'no loss with the 8 MiB buffer');
    assert.equal(rep.events.received, rep.events.total);
    assert.deepEqual([rep.drain.received, rep.drain.lost], [BULK, 0]);
    assert.equal(rep.ownCreate, 'created');
    assert.deepEqual(rep.quiet, { filtered: true, skipped: 0, heard: 1, theirs: true }, 'our own write is not even delivered');
    assert.deepEqual(rep.newEvents, { created: BULK + 6, received: BULK + 6, self: 1 }); // + the batch's create, the two of the filter check
    assert.ok(rep.overrun.lost >= 1, JSON.stringify(rep.overrun));
    assert.ok(rep.overrun.destroyKept < BULK);
    assert.equal(rep.overrun.eventAfter, true);
    assert.deepEqual(rep.dropped, {});
    assert.equal(rep.listenerCounters.eventsByKind.lost, 0);
    assert.deepEqual(rep.activeAfterClose, []);
    const ratio = (rep.dumpMs.median / rep.cliDumpMs.median).toFixed(2);
    console.log(
      `backup: dump of ${rep.dumpCount} entries median ${rep.dumpMs.median} ms (min ${rep.dumpMs.min}, max ${rep.dumpMs.max}; ` +
        `conntrack -L >/dev/null median ${rep.cliDumpMs.median} ms; ours/theirs ${ratio}); serviceFlows over them ${rep.serviceFlowsMs} ms; ` +
        `create ${rep.createPerSec}/s (64 in flight); destroy events consumed ${rep.events.perSec}/s ` +
        `(${rep.events.received} in ${rep.events.spanMs} ms while conntrack -F ran ${rep.events.flushMs} ms, lost ${rep.events.lost}); ` +
        `${rep.drain.received} queued destroy events drained at ${rep.drain.perSec}/s (${rep.drain.drainMs} ms); ` +
        `overrun with a 4 KiB buffer: ${rep.overrun.destroyKept} kept, lost reported ${rep.overrun.lost}x; child ran ${r.wallMs.toFixed(0)} ms`,
    );
  });
}
