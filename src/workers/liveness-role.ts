/**
 * The liveness half of the timing thread (workers/timing.ts): a UDP socket of its own on each
 * link it runs on (the state sync's port + 1; the sync link, and with sharing every link with
 * shared addresses), BEATs to the peers each interval and the detection of theirs
 * (LivenessCore). Every BEAT is authenticated with the sync key (the sync codec's HMAC) and
 * bound to both nodes' current runs (the replay check of the sync protocol, every BEAT taken
 * as a HELLO: a BEAT that names our epoch proves the peer is alive now; one that does not only
 * teaches us its epoch). Each round of BEATs goes out on every link, each copy with its own
 * packet number and the round in its sequence field; the first copy of a round to arrive
 * counts, the others are counted as received only. The cheap checks come before the HMAC:
 * the source is a peer, the header claims that peer and us and a BEAT, and the replay check
 * would take it.
 *
 * Messages in: { type: 'own', instances, leaving, ready } (what our BEATs say), { type: 'want' }
 * (the next BEAT of each peer is reported whatever it says), { type: 'stop' }.
 * Out: the core's events (up, down, late, and a BEAT only when it says something new: see
 * fsm/liveness-core.ts) and { type: 'counters', ... } (drops, timing) when they changed,
 * looked at once a second in a BEAT round (no timer of its own). The counts that change every
 * BEAT (sent, received, withheld, each peer's last BEAT) are in shared memory
 * (adapters/liveness/shared.ts), read by main when asked.
 */
import { randomInt } from 'node:crypto';
import { Poller } from '../adapters/netlink/poller.js';
import { UdpSocket } from '../adapters/udp-socket.js';
import { realClock } from '../lib/clock.js';
import { changeReporter } from '../lib/change-reporter.js';
import { decode, encode, lagField, peekHeader, readLagField } from '../codec/sync/message.js';
import { check, initialReplayState, type ReplayState } from '../fsm/sync/replay.js';
import { LivenessCore, type BeatBody, type CoreEvent } from '../fsm/liveness-core.js';
import type { LivenessCounters } from '../ports/liveness.js';
import type { LivenessInMessage, LivenessReport, LivenessWorkerData } from '../ports/workers.js';
import { LIVENESS_SHARED as S } from '../adapters/liveness/shared.js';

export interface LivenessRole {
  onMessage(m: Exclude<LivenessInMessage, { type: 'start' }>): void;
}

/** Opens the sockets and starts the BEATs; `post` hands events to the daemon; `realtime` says whether the thread runs under SCHED_RR. */
export function startLiveness(d: LivenessWorkerData, post: (m: CoreEvent | LivenessReport) => void, realtime: () => boolean): LivenessRole {
  const key = Buffer.from(d.key);
  const epoch = randomInt(1, 2 ** 32 - 1);
  const slots = new BigInt64Array(d.shared);
  const peers = d.peers.map((p, i) => ({ ...p, slot: S.peer0 + S.PEER_SLOTS * i, replay: initialReplayState(epoch) as ReplayState, packet: 0, lastRound: 0, roundEpoch: 0 }));
  const byAddress = new Map(peers.flatMap((p) => p.addresses.filter((a): a is string => !!a).map((a) => [a, p] as const)));
  const byName = new Map(peers.map((p) => [p.name, p]));
  const counters: LivenessCounters = { sent: 0, received: 0, withheld: 0, dropped: {} };
  const drop = (reason: string) => void (counters.dropped[reason] = (counters.dropped[reason] ?? 0) + 1);

  const poller = new Poller({ keepAlive: true });
  const onDatagram = (view: Uint8Array, from: string): void => {
    const p = byAddress.get(from);
    if (!p) return drop('unknown_peer');
    const h = peekHeader(view);
    if (!h || h.type !== 'beat' || h.sender !== p.id || h.receiver !== d.selfId) return drop(h ? 'misdirected' : 'not_a_beat');
    const pre = check(p.replay, { type: 'hello', epoch: h.epoch, peerEpoch: h.peerEpoch, packet: h.packet });
    if (!pre.verdict.accept) return drop(pre.verdict.reason);
    // A BEAT keeps nothing of the datagram (its fields are read out): no copy.
    const r = decode(view, key);
    if (!r.ok) return drop(r.reason);
    if (r.value.type !== 'beat') return drop('not_a_beat');
    const c = check(p.replay, { type: 'hello', epoch: r.value.epoch, peerEpoch: r.value.peerEpoch, packet: r.value.packet });
    if (!c.verdict.accept) return drop(c.verdict.reason);
    p.replay = c.state;
    counters.received++;
    Atomics.store(slots, S.received, BigInt(counters.received));
    // Only a BEAT that names our epoch was made after we started: proof of life. A round
    // already heard on another link (or an older one overtaken) says nothing new.
    if (r.value.peerEpoch !== epoch) return;
    // (Round 0: a sender that numbers no rounds, each BEAT counts.)
    if (r.value.seq !== 0 && r.value.epoch === p.roundEpoch && r.value.seq <= p.lastRound) return;
    p.roundEpoch = r.value.epoch;
    p.lastRound = r.value.seq;
    Atomics.store(slots, p.slot + 3, BigInt(S.TOLD | lagField(r.value)));
    core.onBeat(p.name, r.value);
    const seen = core.peerState(p.name);
    if (seen && seen.beats > 0) {
      Atomics.store(slots, p.slot, BigInt(Math.round(seen.lastBeatAtMs)));
      Atomics.store(slots, p.slot + 1, BigInt(seen.beats));
    }
  };
  // A few BEATs wait at a time: 8 slots (the default 64 are for the sync's data), each of the default size.
  const socks = d.links.map((address, i) => UdpSocket.open({ poller, address, ...(d.linkIfnames?.[i] ? { ifname: d.linkIfnames[i] } : {}), port: d.port, rcvbuf: 1024 * 1024, sndbuf: 256 * 1024, batch: 8, onDatagram }));
  post({ type: 'fds', fds: socks.map((s) => s.descriptor) });
  let round = 0;
  let roundPeer: string | undefined;
  const ownLag = (now: number) => ownLagOf(d, slots, peers, now);
  let own = { behind: false, writing: false, why: '' };

  /** What main has of the drops and the timing; posted again when it changed, looked at once a second. */
  const reportChange = changeReporter(realClock, 1000, post);
  const reportIfChanged = (force = false): void => reportChange((): LivenessReport => ({ type: 'counters', realtime: realtime(), dropped: counters.dropped, timing: core.timing }), force);

  const core: LivenessCore = new LivenessCore({
    clock: realClock,
    intervalMs: d.intervalMs,
    multiplier: d.multiplier,
    peers: peers.map((p) => p.name),
    send: (peer: string, body: BeatBody) => {
      const p = byName.get(peer)!;
      // A round is the core's one call per peer: it begins again at the first peer.
      if (roundPeer === undefined) roundPeer = peer;
      const now = realClock.now();
      if (peer === roundPeer) {
        round = (round + 1) >>> 0 || 1;
        if (d.dieAfterRounds !== undefined && round >= d.dieAfterRounds) throw new Error(`failpoint liveness.thread: the timing thread dies after ${round} BEAT rounds`);
        const was = own.behind;
        own = ownLag(now);
        // Main holds preemption while we are behind (services/vrrp.ts): told once per change.
        if (own.behind !== was) post({ type: 'own_behind', behind: own.behind, why: own.why || `caught up (lag bound ${d.lagBoundMs ?? 1000} ms)` });
        reportIfChanged();
      }
      // The peer's lag behind us: its oldest change not acknowledged (the state sync's, in main).
      const since = Number(Atomics.load(slots, p.slot + 2));
      const lag = { lagMs: since > 0 ? now - since : 0, behind: own.behind, writing: own.writing };
      p.addresses.forEach((address, i) => {
        if (!address) return;
        p.packet++;
        socks[i]!.send(encode({ type: 'beat', sender: d.selfId, receiver: p.id, epoch, peerEpoch: p.replay.peer?.epoch ?? 0, packet: p.packet, seq: round, ...body, ...lag }, key), address, d.port);
        counters.sent++;
      });
      Atomics.store(slots, S.sent, BigInt(counters.sent));
    },
    readSocket: () => socks.forEach((s) => s.drain()),
    emit: post,
    // The tick is at most tickMs old while main runs: older than mainStallMs + tickMs, it was
    // held at least mainStallMs.
    mainAlive: () => {
      const alive = realClock.now() - Number(Atomics.load(slots, S.tick)) < d.mainStallMs + d.tickMs;
      if (!alive) Atomics.store(slots, S.withheld, BigInt(core.withheld + 1));
      return alive;
    },
  });
  core.start();
  reportIfChanged(true);

  return {
    onMessage: (m) => {
      if (m.type === 'own') core.setOwn(m.instances, m.leaving, m.ready === true);
      else if (m.type === 'want') core.want();
      else {
        core.stop();
        socks.forEach((s) => s.close());
        poller.close();
      }
    },
  };
}

/**
 * What our BEATs say of the state sync's lag, per round: WRITING while records we received
 * wait for our kernel; BEHIND when the oldest of them waited longer than the bound, or the
 * last BEAT of a peer heard within the detection time says our lag behind it is over the
 * bound. Written to the shared slots for main's status.
 */
function ownLagOf(d: LivenessWorkerData, slots: BigInt64Array, peers: readonly { name: string; slot: number }[], now: number): { behind: boolean; writing: boolean; why: string } {
  const boundMs = d.lagBoundMs ?? 1000;
  const at = (slot: number): number => Number(Atomics.load(slots, slot));
  const since = at(S.writeSince);
  const why: string[] = [];
  if (since > 0 && now - since > boundMs) why.push(`records received ${Math.round(now - since)} ms ago still wait for our kernel`);
  for (const q of peers) {
    // What a peer no longer heard from said is stale (it may be gone for good).
    if (now - at(q.slot) > d.intervalMs * d.multiplier) continue;
    const told = at(q.slot + 3);
    const lagMs = told & S.TOLD ? readLagField(told).lagMs : 0;
    if (lagMs > boundMs) why.push(`${q.name} says we lag ${lagMs} ms behind its changes`);
  }
  const behind = why.length > 0;
  Atomics.store(slots, S.ownFlags, BigInt(lagField({ behind, writing: since > 0 })));
  // No string built per round unless behind (a round is every 15 ms).
  return { behind, writing: since > 0, why: behind ? `${why.join('; ')} (lag bound ${boundMs} ms)` : '' };
}
