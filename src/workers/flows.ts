/**
 * The flow-counting worker (a worker thread): counts the load balancer's flows per service
 * and backend with blocking netlink dumps, so that neither the kernel's walk of a large
 * table (it runs inside our recvfrom: a filter that matches nothing walks the whole table in
 * one call, tens of ms with 100,000 entries) nor the counting runs on the daemon's event loop,
 * where the VRRP adverts are sent. One dump per address family for all the services,
 * counted in place (ServiceFlowTally).
 *
 * Messages: in { id, services: ServiceKey[] }; out { id, ok: true, summaries: [[backend,
 * {flows, established}][]] per service } or { id, ok: false, error }.
 */
import { parentPort } from 'node:worker_threads';
import { AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW, SOL_SOCKET, SO_RCVBUF, int32, lastErrno, libc } from '../adapters/libc.js';
import { encodeDumpRequest, NETLINK_NETFILTER } from '../codec/netlink/ctnetlink.js';
import { NLMSG_DONE, NLMSG_ERROR, splitMessages } from '../codec/netlink/nlmsg.js';
import { ServiceFlowTally } from '../codec/netlink/ct-tally.js';
import type { ServiceKey } from '../ports/conntrack.js';
import type { FlowRequest, FlowAnswer } from '../ports/workers.js';
import { nameThread } from '../adapters/realtime.js';

nameThread('fwlb-flows');

const c = libc();
let fd = -1;
const buf = Buffer.alloc(64 * 1024);
const TO_KERNEL = Buffer.alloc(12);
TO_KERNEL.writeUInt16LE(AF_NETLINK, 0);
let seq = 1;

function socket(): number {
  if (fd >= 0) return fd;
  fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) throw new Error(`netlink socket: errno ${lastErrno()}`);
  c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, int32(1024 * 1024), 4);
  const sa = Buffer.alloc(12);
  sa.writeUInt16LE(AF_NETLINK, 0);
  if (c.bind(fd, sa, 12) !== 0) throw new Error(`netlink bind: errno ${lastErrno()}`);
  return fd;
}

/** One blocking dump of the family's entries (to `address` only, if given); each message to every tally. */
function dumpInto(family: 4 | 6, address: string | undefined, tallies: ServiceFlowTally[]): void {
  const s = socket();
  const mySeq = seq++;
  const req = encodeDumpRequest(mySeq, address === undefined ? { family } : { family, orig: { dst: address } });
  if (c.sendto(s, req, req.length, 0, TO_KERNEL, 12) !== req.length) throw new Error(`netlink sendto: errno ${lastErrno()}`);
  for (;;) {
    const n = c.recvfrom(s, buf, buf.length, 0, null, null);
    if (n < 0) throw new Error(`netlink recvfrom: errno ${lastErrno()}`);
    const msgs = splitMessages(buf.subarray(0, n));
    if (!msgs.ok) throw new Error(`netlink: ${msgs.reason}`);
    for (const m of msgs.value) {
      if (m.header.seq !== mySeq) continue; // a late part of an abandoned dump
      if (m.header.type === NLMSG_DONE) return;
      if (m.header.type === NLMSG_ERROR) {
        const errno = m.payload.length >= 4 ? -m.payload.readInt32LE(0) : 0;
        if (errno === 0) continue;
        throw new Error(`conntrack dump refused: errno ${errno}`);
      }
      for (const t of tallies) t.add(m);
    }
  }
}

type Summaries = Extract<FlowAnswer, { ok: true }>['summaries'];

function count(services: ServiceKey[]): Summaries {
  const tallies = services.map((s) => new ServiceFlowTally(s));
  // One dump per family: narrowed to the address when every service of the family has the
  // same one (the kernel walks its whole table for each dump either way).
  for (const family of [4, 6] as const) {
    const idx = services.flatMap((s, i) => (s.family === family ? [i] : []));
    if (idx.length === 0) continue;
    const addresses = new Set(idx.map((i) => services[i]!.address));
    dumpInto(family, addresses.size === 1 ? [...addresses][0] : undefined, idx.map((i) => tallies[i] as ServiceFlowTally));
  }
  return tallies.map((t) => [...t.summary().byBackend]);
}

parentPort?.on('message', (r: FlowRequest) => {
  let answer: FlowAnswer;
  try {
    answer = { id: r.id, ok: true, summaries: count(r.services) };
  } catch (e) {
    // A broken socket is opened afresh next time.
    if (fd >= 0) c.close(fd);
    fd = -1;
    answer = { id: r.id, ok: false, error: (e as Error).message };
  }
  parentPort?.postMessage(answer);
});
