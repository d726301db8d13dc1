/**
 * The master's intake of conntrack events, per event, without a lab (issue 25): the kernel's
 * message (a real TCP event with DNAT, from the codec's fixtures, and synthetic IPv4 and IPv6
 * TCP entries with NAT as encodeCreate writes them) to the sync record's body, two ways:
 *  - before: decodeConntrack (an entry object, address text) then entryToBodyV2 (the text
 *    parsed back to bytes), what the intake did up to this change;
 *  - now: ctPayloadToBodyV2, the body read straight from the bytes.
 * Time per event (best of 5 runs of N events).
 *
 *   node dist/bench/intake.js [--events 200000]
 *
 * Prints figures; never asserts. Single thread, no I/O: it measures the JS, not the kernel.
 */
import { parseArgs } from 'node:util';
import { decodeConntrack, encodeCreate, CT_NEW, type ConntrackEntry } from '../src/codec/netlink/ctnetlink.js';
import { splitMessages, type NlMessage } from '../src/codec/netlink/nlmsg.js';
import { EVENT_UPDATE_TCP_ESTABLISHED } from '../src/codec/netlink/ctnetlink-fixtures.js';
import { entryToBodyV2 } from '../src/codec/sync/entry-v2.js';
import { ctPayloadToBodyV2 } from '../src/codec/sync/entry-v2-netlink.js';
import { table } from './util.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '200000' } } });
const N = Number(values.events);

const first = (b: Buffer): NlMessage => {
  const s = splitMessages(b);
  if (!s.ok) throw new Error(s.reason);
  return s.value.find((m) => m.header.type === CT_NEW)!;
};
const natEntry = (family: 4 | 6): ConntrackEntry => {
  const [c, v, s] = family === 4 ? ['198.18.0.10', '198.18.0.100', '198.18.1.11'] : ['2001:2::10', '2001:2::100', '2001:2:1::11'];
  return {
    family,
    orig: { src: c, dst: v, proto: 6, srcPort: 40000, dstPort: 80 },
    reply: { src: s, dst: c, proto: 6, srcPort: 8080, dstPort: 40000 },
    status: 0x1ae,
    timeout: 431999,
    mark: 7,
    tcp: { state: 'ESTABLISHED', wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x23, flagsReply: 0x23 },
  };
};
const inputs: [string, NlMessage][] = [
  ['kernel event: TCP ESTABLISHED, DNAT (fixture)', first(Buffer.from(EVENT_UPDATE_TCP_ESTABLISHED, 'hex'))],
  ['IPv4 TCP with DNAT, mark, protoinfo', first(encodeCreate(1, natEntry(4)))],
  ['IPv6 TCP with DNAT, mark, protoinfo', first(encodeCreate(1, natEntry(6)))],
];

/** ns per event of `f` over N events (best of 5; garbage collection included). */
function time(m: NlMessage, f: (m: NlMessage) => number): number {
  let best = Infinity;
  let sink = 0;
  for (let run = 0; run < 5; run++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) sink += f(m);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / N);
  }
  if (sink === 42) console.log(''); // keeps the work from being optimized away
  return best;
}

const before = (m: NlMessage) => {
  const d = decodeConntrack(m);
  return d.ok ? entryToBodyV2(d.value).length : 0;
};
const now = (m: NlMessage) => {
  const r = ctPayloadToBodyV2(m.payload);
  return r.ok ? r.body.length : 0;
};
const rows: string[][] = [];
for (const [name, m] of inputs) {
  const b = time(m, before);
  const n = time(m, now);
  rows.push([name, b.toFixed(0), n.toFixed(0), (b / n).toFixed(1)]);
}
console.log(`\nconntrack event -> sync record body, per event (${N} events, best of 5; node ${process.version}, one thread)`);
console.log(table(['message', 'decode + encode, ns', 'transcode, ns', 'ratio'], rows));
