/**
 * `show protocols [all]` replies read into values: the columns, a two-token "since", BGP's
 * session state from the info and from the details; what is not a protocol table is an
 * error that says why (property test: never a throw).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BirdReplyReader, type BirdReply } from './reply.js';
import { bgpSession, detail, parseBfdSessions, parseProtocols } from './show.js';

function reply(text: string): BirdReply {
  const ev = new BirdReplyReader().feed(text);
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.kind, 'reply');
  return (ev[0] as { reply: BirdReply }).reply;
}

test('show protocols: every row, BGP\'s session state from its info', () => {
  const r = parseProtocols(
    reply(
      '2002-Name       Proto      Table      State  Since         Info\n' +
        '1002-device1    Device     ---        up     09:12:01.331\n' +
        ' fwlb4      Static     master4    up     09:12:01.331\n' +
        ' upstream4  BGP        ---        start  09:12:06.874  Active        Socket: Connection refused\n' +
        '0000 \n',
    ),
  );
  assert.ok(r.ok);
  assert.deepEqual(r.value.map((p) => [p.name, p.proto, p.table, p.state, p.since]), [
    ['device1', 'Device', '---', 'up', '09:12:01.331'],
    ['fwlb4', 'Static', 'master4', 'up', '09:12:01.331'],
    ['upstream4', 'BGP', '---', 'start', '09:12:06.874'],
  ]);
  assert.equal(r.value[2]!.info, 'Active Socket: Connection refused');
  assert.equal(bgpSession(r.value[2]!), 'Active');
  assert.equal(bgpSession(r.value[1]!), undefined);
});

test('show protocols all NAME: the details; a date-and-time "since"', () => {
  const r = parseProtocols(
    reply(
      '2002-Name       Proto      Table      State  Since         Info\n' +
        '1002-upstream4  BGP        ---        up     2026-12-07 09:12:06  Established\n' +
        '1006-  BGP state:          Established\n' +
        '    Neighbor address: 198.18.7.1\n' +
        '    Neighbor AS:      65000\n' +
        '    Hold timer:       7.412/9\n' +
        '0000 \n',
    ),
  );
  assert.ok(r.ok);
  const p = r.value[0]!;
  assert.equal(p.since, '2026-12-07 09:12:06');
  assert.equal(p.info, 'Established');
  assert.equal(detail(p, 'Neighbor address'), '198.18.7.1');
  assert.equal(detail(p, 'Hold timer'), '7.412/9');
  assert.equal(bgpSession(p), 'Established');
});

test('an error reply, a short row, a stray line: errors that say why', () => {
  assert.deepEqual(parseProtocols(reply('8003 No protocols match\n')), { ok: false, why: 'BIRD says 8003: No protocols match' });
  assert.equal(parseProtocols(reply('1002-a b\n0000 \n')).ok, false);
  assert.match((parseProtocols(reply('1007-198.18.0.100/32 unicast\n0000 \n')) as { why: string }).why, /unexpected line 1007/);
});

test('property: any reply is read without a throw', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(0, 1002, 1006, 1020, 2002, 1007, 8001, 9001), fc.string({ maxLength: 80 })), { minLength: 1, maxLength: 10 }), (lines) => {
      const reply = { code: lines.at(-1)![0], lines: lines.map(([code, text]) => ({ code, text })) };
      for (const r of [parseProtocols(reply), parseBfdSessions(reply)]) assert.ok(r.ok ? Array.isArray(r.value) : typeof r.why === 'string');
    }),
  );
});
