/**
 * The liveness worker thread: a UDP socket of its own on each link it runs on (the state
 * sync's port + 1; the sync link, and with sharing every link with shared addresses), BEATs to the peers each interval and the detection of theirs (LivenessCore),
 * on its own event loop. Every BEAT is authenticated with the sync key (the sync codec's
 * HMAC) and bound to both nodes' current runs (the replay check of the sync protocol, every
 * BEAT taken as a HELLO: a BEAT that names our epoch proves the peer is alive now; one that
 * does not only teaches us its epoch). Each round of BEATs goes out on every link, each copy
 * with its own packet number and the round in its sequence field; the first copy of a round
 * to arrive counts, the others are counted as received only. The cheap checks come before the HMAC: the source is a
 * peer, the header claims that peer and us and a BEAT, and the replay check would take it.
 *
 * Messages in: { type: 'own', instances, leaving, ready } (what our BEATs say), { type: 'stop' }.
 * Out: the core's events (up, down, beat) and { type: 'counters', ... } each second.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { randomInt } from 'node:crypto';
import { Poller } from '../adapters/netlink/poller.js';
import { nameThread, realtimeThread } from '../adapters/realtime.js';
import { UdpSocket } from '../adapters/udp-socket.js';
import { realClock } from '../lib/clock.js';
import { decode, encode, peekHeader } from '../codec/sync/message.js';
import { check, initialReplayState, type ReplayState } from '../fsm/sync/replay.js';
import { LivenessCore, type BeatBody } from '../fsm/liveness-core.js';
import type { LivenessCounters } from '../ports/liveness.js';
import type { LivenessWorkerData } from '../ports/workers.js';
export type { LivenessCounters } from '../ports/liveness.js';

const d = workerData as LivenessWorkerData;
const key = Buffer.from(d.key);
const epoch = randomInt(1, 2 ** 32 - 1);
const tick = new BigInt64Array(d.tick);
const peers = d.peers.map((p) => ({ ...p, replay: initialReplayState(epoch) as ReplayState, packet: 0, lastRound: 0, roundEpoch: 0 }));
const byAddress = new Map(peers.flatMap((p) => p.addresses.filter((a): a is string => !!a).map((a) => [a, p] as const)));
const byName = new Map(peers.map((p) => [p.name, p]));
const counters: LivenessCounters = { sent: 0, received: 0, withheld: 0, dropped: {} };
const drop = (reason: string) => void (counters.dropped[reason] = (counters.dropped[reason] ?? 0) + 1);

/** Under SCHED_RR once set up (see the end of this file). */
let isRealtime = false;

const poller = new Poller({ keepAlive: true });
const onDatagram = (view: Uint8Array, from: string): void => {
    const p = byAddress.get(from);
    if (!p) return drop('unknown_peer');
    const h = peekHeader(view);
    if (!h || h.type !== 'beat' || h.sender !== p.id || h.receiver !== d.selfId) return drop(h ? 'misdirected' : 'not_a_beat');
    const pre = check(p.replay, { type: 'hello', epoch: h.epoch, peerEpoch: h.peerEpoch, packet: h.packet });
    if (!pre.verdict.accept) return drop(pre.verdict.reason);
    const r = decode(Buffer.from(view), key);
    if (!r.ok) return drop(r.reason);
    if (r.value.type !== 'beat') return drop('not_a_beat');
    const c = check(p.replay, { type: 'hello', epoch: r.value.epoch, peerEpoch: r.value.peerEpoch, packet: r.value.packet });
    if (!c.verdict.accept) return drop(c.verdict.reason);
    p.replay = c.state;
    counters.received++;
    // Only a BEAT that names our epoch was made after we started: proof of life. A round
    // already heard on another link (or an older one overtaken) says nothing new.
    if (r.value.peerEpoch !== epoch) return;
    // (Round 0: a sender that numbers no rounds, each BEAT counts.)
    if (r.value.seq !== 0 && r.value.epoch === p.roundEpoch && r.value.seq <= p.lastRound) return;
    p.roundEpoch = r.value.epoch;
    p.lastRound = r.value.seq;
    core.onBeat(p.name, r.value);
};
const socks = d.links.map((address, i) => UdpSocket.open({ poller, address, ...(d.linkIfnames?.[i] ? { ifname: d.linkIfnames[i] } : {}), port: d.port, rcvbuf: 1024 * 1024, sndbuf: 256 * 1024, onDatagram }));
let round = 0;
let roundPeer: string | undefined;

const core = new LivenessCore({
  clock: realClock,
  intervalMs: d.intervalMs,
  multiplier: d.multiplier,
  peers: peers.map((p) => p.name),
  send: (peer: string, body: BeatBody) => {
    const p = byName.get(peer)!;
    // A round is the core's one call per peer: it begins again at the first peer.
    if (roundPeer === undefined) roundPeer = peer;
    if (peer === roundPeer) round = (round + 1) >>> 0 || 1;
    p.addresses.forEach((address, i) => {
      if (!address) return;
      p.packet++;
      socks[i]!.send(encode({ type: 'beat', sender: d.selfId, receiver: p.id, epoch, peerEpoch: p.replay.peer?.epoch ?? 0, packet: p.packet, seq: round, ...body }, key), address, d.port);
      counters.sent++;
    });
  },
  readSocket: () => socks.forEach((s) => s.drain()),
  emit: (e) => parentPort?.postMessage(e),
  mainAlive: () => realClock.now() - Number(Atomics.load(tick, 0)) < d.mainStallMs,
});

const report = setInterval(() => parentPort?.postMessage({ type: 'counters', counters: { ...counters, realtime: isRealtime, withheld: core.withheld, dropped: { ...counters.dropped }, timing: core.timing } }), 1000);

parentPort?.on('message', (m: { type: 'own'; instances: BeatBody['instances']; leaving: boolean; ready?: boolean } | { type: 'stop' }) => {
  if (m.type === 'own') core.setOwn(m.instances, m.leaving, m.ready === true);
  else {
    core.stop();
    clearInterval(report);
    socks.forEach((s) => s.close());
    poller.close();
    parentPort?.close();
  }
});
core.start();

// Under SCHED_RR (adapters/realtime.ts): in a soak with both CPUs busy it sent 59 BEATs a
// second instead of 66 without it. Only now, with the sockets open and everything set up: a
// thread under SCHED_RR that does a start's work (koffi bindings, sockets, the first
// compiles) takes a CPU from every ordinary process for that long, on a machine of two.
isRealtime = realtimeThread(d.realtimePriority ?? 10);
nameThread('fwlb-liveness');
