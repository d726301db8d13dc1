/**
 * Many long-lived TCP sessions from one process, for the "sessions kept" benchmark: N
 * connections to an echo service, each sending a numbered line every --every ms for
 * --seconds, each checking its echoes. Prints one JSON line:
 *   {"sessions": N, "connected": n, "kept": k, "lost": l, "worstStallMs": w, "stalls": [...]}
 * (TCP also names the worst stall's start, `worstStallFrom`, and its local port, `worstStallPort`.)
 * A session is kept when it stayed open and every line came back; its stall is the longest
 * time it waited for an echo, less the time this process itself was stalled meanwhile (its
 * loop ran more than 50 ms late: a saturated machine starves the client too, and then every
 * one of its sessions waits at once; `ownStalls` reports those apart).
 *
 *   node sessions.js HOST PORT [--count 200] [--every 50] [--seconds 10] [--grace 3000] [--udp]
 *
 * Sending ends after --seconds, or at once on SIGUSR2 (a test ends the sessions when its
 * last failure has settled, however long that took). Then up to --grace ms for the last
 * echoes (TCP: the report comes as soon as every open session has all its echoes): a session
 * still retransmitting after a failure is given that long to recover before it counts as lost.
 *
 * --gaps MS: the report also lists every wait of a session longer than MS (`gaps`: [start
 * ms since the epoch, length ms], per session, never joined across sessions) and, for UDP, the
 * send times of the datagrams never answered (`lostAt`), so a torture loop can tell which
 * failure made which stall and which loss. (UDP lists no gaps: a flow waits `every` between
 * answers anyway; its losses are what a failure costs it.)
 *
 * --udp: N UDP flows to a service that answers `NAME <payload>` (the lab's backends, port 7),
 * one datagram each --every ms. A flow is kept when the same backend answered throughout (its
 * conntrack entry, NAT included, survived) and its last datagrams were answered; datagrams
 * lost on the way are counted, as UDP may lose them, and the longest wait is its stall.
 */
import { connect, isIPv6, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { createSocket } from 'node:dgram';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { count: { type: 'string', default: '200' }, every: { type: 'string', default: '50' }, seconds: { type: 'string', default: '10' }, grace: { type: 'string', default: '3000' }, gaps: { type: 'string' }, udp: { type: 'boolean', default: false } },
});
const [host = '', port = ''] = positionals;
const count = Number(values.count);
const every = Number(values.every);
const graceMs = Number(values.grace);
const gapMs = values.gaps === undefined ? undefined : Number(values.gaps);
/** Waits longer than gapMs: [start, length], every session's. */
const gapList: [number, number][] = [];
function noteGap(from: number, to: number): void {
  const len = networkPart(from, to);
  if (gapMs !== undefined && len > gapMs) gapList.push([from, len]);
}
/**
 * This process's own stalls: its loop ran late by more than OWN_STALL_MS (a saturated
 * machine, a GC). Every session of the process waits through them at once; that wait is the
 * client's, not the network's, and is taken out of the stalls and gaps (and reported apart).
 */
const OWN_PROBE_MS = 10;
const OWN_STALL_MS = 50;
const ownStalls: [number, number][] = [];
let lastProbe = Date.now();
setInterval(() => {
  const now = Date.now();
  if (now - lastProbe > OWN_PROBE_MS + OWN_STALL_MS) ownStalls.push([lastProbe, now - lastProbe]);
  lastProbe = now;
}, OWN_PROBE_MS).unref();
/** The length of [from, to] this process was not stalled itself. */
function networkPart(from: number, to: number): number {
  let len = to - from;
  for (let i = ownStalls.length - 1; i >= 0; i--) {
    const [a, l] = ownStalls[i]!;
    if (a + l <= from) break;
    len -= Math.max(0, Math.min(to, a + l) - Math.max(from, a));
  }
  return Math.max(0, len);
}
const ownStallReport = () => ({ count: ownStalls.length, worstMs: Math.max(0, ...ownStalls.map(([, l]) => l)), totalMs: ownStalls.reduce((n, [, l]) => n + l, 0) });
/** The gaps, in order. */
function mergedGaps(): [number, number][] {
  // Each session's own gaps, in time order; never joined across sessions: two sessions that
  // stalled 200 ms each, one after the other, are two stalls of 200 ms, not one of 400.
  return [...gapList].sort((a, b) => a[0] - b[0]);
}
/** Ends the sending at once (SIGUSR2), or after --seconds: `end` is set by the mode run. */
let end: () => void = () => undefined;
let ended = false;
const endTimer = setTimeout(() => end(), Number(values.seconds) * 1000);
process.on('SIGUSR2', () => {
  clearTimeout(endTimer);
  end();
});

interface S {
  sock: Socket;
  connected: boolean;
  sent: number;
  echoed: number;
  lastEcho: number;
  maxGap: number;
  /** When the longest wait began (ms since the epoch). */
  maxGapFrom: number;
  failed: boolean;
  /** Why it failed, first reason only (an error code, 'closed', 'mismatch'). */
  why?: string;
  port?: number;
  buf: string;
}

const sessions: S[] = [];
function fail(s: S, why: string): void {
  if (!s.failed) s.why = `${why}@${new Date().toISOString()}`;
  s.failed = true;
}
if (values.udp) runUdp();
else for (let i = 0; i < count; i++) {
  const s: S = { sock: connect({ host, port: Number(port) }), connected: false, sent: 0, echoed: 0, lastEcho: 0, maxGap: 0, maxGapFrom: 0, failed: false, buf: '' };
  s.sock.setNoDelay(true);
  s.sock.setEncoding('utf8');
  s.sock.on('connect', () => {
    s.connected = true;
    s.port = s.sock.localPort;
    s.lastEcho = Date.now();
  });
  s.sock.on('data', (d: string) => {
    s.buf += d;
    let nl: number;
    while ((nl = s.buf.indexOf('\n')) >= 0) {
      if (s.buf.slice(0, nl) !== String(s.echoed)) fail(s, 'mismatch');
      s.buf = s.buf.slice(nl + 1);
      s.echoed++;
      const now = Date.now();
      noteGap(s.lastEcho, now);
      const waited = networkPart(s.lastEcho, now);
      if (waited > s.maxGap) {
        s.maxGap = waited;
        s.maxGapFrom = s.lastEcho;
      }
      s.lastEcho = now;
    }
  });
  s.sock.on('error', (e: NodeJS.ErrnoException) => fail(s, `error:${e.code ?? e.message}`));
  s.sock.on('close', () => {
    if (s.sent === 0 || s.echoed < s.sent) fail(s, 'closed');
  });
  sessions.push(s);
}

const tick = values.udp ? undefined : setInterval(() => {
  const now = Date.now();
  for (const s of sessions) {
    if (!s.connected || s.failed) continue;
    if (s.sent > s.echoed) {
      // Waiting for an echo: the wait runs from the last echo (or the last idle moment).
      // (Resetting lastEcho here when the wait was shorter than the longest so far hid every
      // later stall shorter than the session's worst.)
      const waited = networkPart(s.lastEcho, now);
      if (waited > s.maxGap) {
        s.maxGap = waited;
        s.maxGapFrom = s.lastEcho;
      }
    } else s.lastEcho = now;
    s.sock.write(`${s.sent++}\n`);
  }
}, every);

if (!values.udp) end = () => {
  if (ended) return;
  ended = true;
  clearInterval(tick);
  // The last lines' echoes, and a last chance for stalled sessions to recover: the report
  // comes once every open session has all its echoes, or after the grace.
  const t0 = Date.now();
  const settled = () => sessions.every((s) => !s.connected || s.failed || s.echoed === s.sent);
  const report = () => {
    const kept = sessions.filter((s) => s.connected && !s.failed && s.sent > 0 && s.echoed === s.sent);
    const stalls = kept.map((s) => s.maxGap).sort((a, b) => b - a);
    const lostSessions = sessions.filter((s) => !kept.includes(s));
    // Why each lost session was lost (the first reason, with its time) and its local port,
    // to find it in conntrack and in the daemons' logs.
    const lostWhy = lostSessions.slice(0, 10).map((s) => ({ port: s.port ?? null, why: s.why ?? (s.echoed < s.sent ? `unanswered:${s.sent - s.echoed}` : 'not_connected'), lastEcho: s.lastEcho ? new Date(s.lastEcho).toISOString() : null }));
    const worst = kept.reduce<S | undefined>((w, s) => (!w || s.maxGap > w.maxGap ? s : w), undefined);
    process.stdout.write(
      JSON.stringify({ sessions: count, connected: sessions.filter((s) => s.connected).length, kept: kept.length, lost: count - kept.length, worstStallMs: stalls[0] ?? null, worstStallFrom: worst ? new Date(worst.maxGapFrom).toISOString() : null, worstStallPort: worst?.port ?? null, stalls: stalls.slice(0, 5), lostWhy, ownStalls: ownStallReport(), ...(gapMs !== undefined ? { gaps: mergedGaps() } : {}) }) + '\n',
    );
    for (const s of sessions) s.sock.destroy();
    process.exit(0);
  };
  const poll = setInterval(() => {
    if (settled() || Date.now() - t0 >= graceMs) {
      clearInterval(poll);
      report();
    }
  }, 20);
};

/** UDP flows (see the header). */
function runUdp(): void {
  interface U { sock: ReturnType<typeof createSocket>; sent: number; sentAt: number[]; answered: Set<number>; backend?: string; lastEcho: number; maxGap: number; maxGapFrom: number; failed: boolean; why?: string; port?: number; lastAnswered: number }
  const flows: U[] = [];
  for (let i = 0; i < count; i++) {
    const u: U = { sock: createSocket(isIPv6(host) ? 'udp6' : 'udp4'), sent: 0, sentAt: [], answered: new Set(), lastEcho: 0, maxGap: 0, maxGapFrom: 0, failed: false, lastAnswered: -1 };
    u.sock.on('message', (m) => {
      const [name, n] = m.toString('utf8').trim().split(' ');
      const seq = Number(n);
      if (!Number.isInteger(seq) || seq >= u.sent) return;
      if (u.backend === undefined) u.backend = name;
      else if (u.backend !== name && !u.failed) {
        u.failed = true;
        u.why = `backend ${u.backend} -> ${name}@${new Date().toISOString()}`;
      }
      u.answered.add(seq);
      u.lastAnswered = Math.max(u.lastAnswered, seq);
      const now = Date.now();
      if (u.lastEcho && networkPart(u.lastEcho, now) > u.maxGap) {
        u.maxGap = networkPart(u.lastEcho, now);
        u.maxGapFrom = u.lastEcho;
      }
      u.lastEcho = now;
    });
    u.sock.on('error', (e: NodeJS.ErrnoException) => {
      if (!u.failed) u.why = `error:${e.code ?? e.message}`;
      u.failed = true;
    });
    u.sock.connect(Number(port), host, () => {
      u.port = u.sock.address().port;
    });
    flows.push(u);
  }
  // Spread over the interval (the server's one socket would drop a burst of every flow at once).
  const SLOTS = Math.max(1, Math.min(50, Math.floor(every / 5)));
  let slot = 0;
  const t = setInterval(() => {
    for (let i = slot; i < flows.length; i += SLOTS) {
      const u = flows[i]!;
      if (u.port !== undefined && !u.failed) {
        if (gapMs !== undefined) u.sentAt.push(Date.now());
        u.sock.send(String(u.sent++));
      }
    }
    slot = (slot + 1) % SLOTS;
  }, every / SLOTS);
  end = () => {
    if (ended) return;
    ended = true;
    clearInterval(t);
    setTimeout(() => {
      // Kept: one backend throughout, and one of the last three datagrams answered.
      const kept = flows.filter((u) => !u.failed && u.sent > 0 && u.lastAnswered >= u.sent - 3);
      const lost = flows.filter((u) => !kept.includes(u));
      const stalls = kept.map((u) => u.maxGap).sort((a, b) => b - a);
      const datagramsLost = flows.reduce((n, u) => n + (u.sent - u.answered.size), 0);
      const lostWhy = lost.slice(0, 10).map((u) => ({ port: u.port ?? null, why: u.why ?? `unanswered since ${u.lastAnswered + 1} of ${u.sent}`, lastEcho: u.lastEcho ? new Date(u.lastEcho).toISOString() : null }));
      const lostAt: number[] = [];
      if (gapMs !== undefined) for (const u of flows) for (let q = 0; q < u.sent; q++) if (!u.answered.has(q) && u.sentAt[q] !== undefined) lostAt.push(u.sentAt[q]!);
      process.stdout.write(JSON.stringify({ sessions: count, connected: flows.filter((u) => u.answered.size > 0).length, kept: kept.length, lost: lost.length, worstStallMs: stalls[0] ?? null, stalls: stalls.slice(0, 5), ownStalls: ownStallReport(), datagramsSent: flows.reduce((n, u) => n + u.sent, 0), datagramsLost, lostWhy, ...(gapMs !== undefined ? { gaps: mergedGaps(), lostAt: lostAt.sort((a, b) => a - b) } : {}) }) + '\n');
      for (const u of flows) u.sock.close();
      process.exit(0);
    }, Math.min(graceMs, 2000));
  };
}
