import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as F from './ctnetlink-fixtures.js';
import { CT_NEW, decodeConntrack, encodeCreate, statusBits, type ConntrackEntry } from './ctnetlink.js';
import { splitMessages, type NlMessage } from './nlmsg.js';
import { ServiceFlowTally } from './ct-tally.js';
import { summarizeServiceFlows } from '../../adapters/netlink/ctnetlink.js';
import type { ServiceKey } from '../../ports/conntrack.js';

function messages(h: string): NlMessage[] {
  const s = splitMessages(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
  assert.ok(s.ok);
  return s.value;
}

function tally(svc: ServiceKey, ms: NlMessage[]): ServiceFlowTally {
  const t = new ServiceFlowTally(svc);
  for (const m of ms) t.add(m);
  return t;
}

/** The reference: decode every entry, then summarize (what status did before). */
function reference(svc: ServiceKey, ms: NlMessage[]) {
  const entries: ConntrackEntry[] = [];
  for (const m of ms) {
    const r = decodeConntrack(m);
    if (r.ok) entries.push(r.value);
  }
  return summarizeServiceFlows(entries, svc);
}

test('kernel dump bytes: the TCP flow through DNAT counts for its backend, established', () => {
  const svc: ServiceKey = { family: 4, address: '198.18.12.100', port: 80, proto: 'tcp' };
  const t = tally(svc, messages(F.DUMP_REPLY));
  assert.deepEqual([...t.summary().byBackend], [['198.18.11.2:8080', { flows: 1, established: 1 }]]);
  assert.equal(t.entries, 1);
  assert.equal(t.malformed, 0);
  assert.deepEqual(t.summary(), reference(svc, messages(F.DUMP_REPLY)));
});

test('kernel dump bytes: the UDP service counts its assured flow; other services count nothing', () => {
  const udp: ServiceKey = { family: 4, address: '198.18.12.100', port: 53, proto: 'udp' };
  assert.deepEqual(tally(udp, messages(F.DUMP_REPLY)).summary(), reference(udp, messages(F.DUMP_REPLY)));
  assert.equal(tally(udp, messages(F.DUMP_REPLY)).entries, 1);
  const none: ServiceKey = { family: 4, address: '198.18.12.101', port: 80, proto: 'tcp' };
  assert.equal(tally(none, messages(F.DUMP_REPLY)).summary().byBackend.size, 0);
  const v6: ServiceKey = { family: 6, address: '2001:2::1', port: 80, proto: 'tcp' };
  assert.equal(tally(v6, messages(F.DUMP_REPLY)).summary().byBackend.size, 0);
});

const TCP_STATES = ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE'] as const;

const flowArb = (family: 4 | 6) =>
  fc.record({
    proto: fc.constantFrom(6, 17),
    vip: fc.integer({ min: 0, max: 1 }),
    dport: fc.constantFrom(80, 53, 443),
    backend: fc.integer({ min: 1, max: 4 }),
    bport: fc.constantFrom(8080, 8081),
    sport: fc.integer({ min: 1024, max: 65535 }),
    assured: fc.boolean(),
    state: fc.constantFrom(...TCP_STATES),
  }).map((f): ConntrackEntry => {
    const vip = family === 4 ? `198.18.12.${100 + f.vip}` : `2001:2:12::${100 + f.vip}`;
    const client = family === 4 ? '198.18.10.2' : '2001:2:10::2';
    const backend = family === 4 ? `198.18.11.${f.backend}` : `2001:2:11::${f.backend}`;
    const e: ConntrackEntry = {
      family,
      orig: { src: client, dst: vip, proto: f.proto, srcPort: f.sport, dstPort: f.dport },
      reply: { src: backend, dst: client, proto: f.proto, srcPort: f.bport, dstPort: f.sport },
      status: statusBits(f.assured ? ['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'DST_NAT'] : ['CONFIRMED', 'DST_NAT']),
      timeout: 100,
    };
    if (f.proto === 6) e.tcp = { state: f.state };
    return e;
  });

const asMessage = (e: ConntrackEntry, i: number): NlMessage => {
  const s = splitMessages(encodeCreate(i, e));
  assert.ok(s.ok);
  const m = s.value[0] as NlMessage;
  assert.equal(m.header.type, CT_NEW);
  return m;
};

test('property: the in-place tally equals decoding every entry and summarizing (IPv4 and IPv6)', () => {
  fc.assert(
    fc.property(fc.constantFrom(4 as const, 6 as const).chain((fam) => fc.tuple(fc.constant(fam), fc.array(flowArb(fam), { maxLength: 60 }))), fc.constantFrom(80, 53, 443), fc.constantFrom('tcp' as const, 'udp' as const), ([family, flows], port, proto) => {
      const svc: ServiceKey = { family, address: family === 4 ? '198.18.12.100' : '2001:2:12::100', port, proto };
      const ms = flows.map(asMessage);
      const t = tally(svc, ms);
      assert.equal(t.malformed, 0);
      assert.deepEqual(new Map([...t.summary().byBackend].sort()), new Map([...reference(svc, ms).byBackend].sort()));
    }),
    { numRuns: 200 },
  );
});

test('property: garbage and mutilated messages are counted as malformed or skipped, never thrown', () => {
  const base = messages(F.DUMP_REPLY);
  const svc: ServiceKey = { family: 4, address: '198.18.12.100', port: 80, proto: 'tcp' };
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: base.length - 1 }),
      fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }),
      fc.nat(),
      (which, edits, cut) => {
        const m = base[which] as NlMessage;
        const p = Buffer.from(m.payload);
        for (const e of edits) p[e.at % p.length] = e.v;
        const t = new ServiceFlowTally(svc);
        t.add({ header: m.header, payload: p.subarray(0, cut % (p.length + 1)) });
        assert.ok(t.entries + t.malformed <= 1);
      },
    ),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 0xffff }), (bytes, type) => {
      const t = new ServiceFlowTally(svc);
      t.add({ header: { len: 16 + bytes.length, type, flags: 0, seq: 0, pid: 0 }, payload: Buffer.from(bytes) });
      if (type !== CT_NEW) assert.equal(t.malformed, 1);
    }),
    { numRuns: 500 },
  );
});
