/**
 * The reader and the table parsers on replies captured from a real BIRD 2.0.12 (Debian 12's
 * bird2) over its control socket (test/fixtures/bird/, the bytes as they came, greeting
 * first): a node's protocols with a BGP session up, its details with two channels, its
 * routes, a router's routes, `configure` done and refused, a parse error, BFD sessions (up, one
 * down, and a BIRD without BFD).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BirdReplyReader, birdMessage, isBirdError, type BirdReply } from './reply.js';
import { bgpSession, detail, exportedRoutes, parseBfdSessions, parseProtocols } from './show.js';

const FIX = fileURLToPath(new URL('../../../../test/fixtures/bird/', import.meta.url));

/** The greeting and the reply of a captured exchange, fed in chunks of 7 bytes. */
function captured(name: string): { greeting: BirdReply; reply: BirdReply } {
  const text = fs.readFileSync(FIX + name, 'utf8');
  const r = new BirdReplyReader();
  const events = [];
  for (let i = 0; i < text.length; i += 7) events.push(...r.feed(text.slice(i, i + 7)));
  assert.equal(r.pending, false);
  assert.deepEqual(events.map((e) => e.kind), ['reply', 'reply']);
  const [g, x] = events as { kind: 'reply'; reply: BirdReply }[];
  assert.equal(g!.reply.code, 1);
  assert.match(g!.reply.lines[0]!.text, /^BIRD 2\.0\.12 ready\.$/);
  return { greeting: g!.reply, reply: x!.reply };
}

test('show protocols on a node: device, the two static protocols, the BGP session Established', () => {
  const p = parseProtocols(captured('node-show-protocols.txt').reply);
  assert.ok(p.ok);
  assert.deepEqual(p.value.map((x) => [x.name, x.proto, x.table, x.state]), [
    ['device1', 'Device', '---', 'up'],
    ['fwlb4', 'Static', 'master4', 'up'],
    ['fwlb6', 'Static', 'master6', 'up'],
    ['upstream', 'BGP', '---', 'up'],
  ]);
  assert.equal(bgpSession(p.value[3]!), 'Established');
  assert.match(p.value[3]!.since, /^\d{2}:\d{2}:\d{2}\.\d{3}$/);
});

test('show protocols all NAME: the session, the neighbour, the routes exported per channel', () => {
  const p = parseProtocols(captured('node-show-protocols-all-upstream.txt').reply);
  assert.ok(p.ok);
  const bgp = p.value[0]!;
  assert.equal(bgpSession(bgp), 'Established');
  assert.equal(detail(bgp, 'Neighbor address'), '198.18.200.0');
  assert.equal(detail(bgp, 'Neighbor AS'), '65000');
  assert.deepEqual(exportedRoutes(bgp), { ipv4: 1, ipv6: 1 });
  assert.equal(bgp.details.find((d) => d.key === 'BGP Next hop' && d.channel === 'ipv6')?.value, '2001:2:0:200::1');
});

test('show route all: tables, routes, their attributes and communities, as lines under 1007/1008/1012', () => {
  const { reply } = captured('node-show-route-all.txt');
  assert.equal(reply.code, 0);
  const text = reply.lines.map((l) => `${l.code} ${l.text}`).join('\n');
  assert.match(text, /1007 198\.18\.30\.100\/32 +unicast \[fwlb4 [^\]]+\] \* \(200\)/);
  assert.match(text, /1012 \tBGP\.community: \(65010,100\)/);
  const router = captured('router-show-route-all.txt').reply.lines.map((l) => l.text).join('\n');
  assert.match(router, /BGP\.local_pref: 0/);
  assert.match(router, /BGP\.community: \(65010,100\) \(65535,0\)/);
});

test('configure: done, nothing new, refused (the file, line and column), a command BIRD cannot parse', () => {
  for (const f of ['node-configure.txt', 'node-configure-nothing.txt']) {
    const { reply } = captured(f);
    assert.equal(reply.code, 3);
    assert.equal(isBirdError(reply), false);
    assert.equal(birdMessage(reply), 'Reconfigured');
  }
  const bad = captured('node-configure-error.txt').reply;
  assert.equal(bad.code, 8002);
  assert.ok(isBirdError(bad));
  assert.match(birdMessage(bad), /fw1-zbroken\.conf:1:53 syntax error/);
  const parse = captured('node-parse-error.txt').reply;
  assert.equal(parse.code, 9001);
  const p = parseProtocols(captured('node-show-protocols-nomatch.txt').reply);
  assert.ok(!p.ok);
  assert.match(p.why, /^BIRD says 9001: syntax error/);
});

test('show bfd sessions: a node\'s one session Up; the router\'s four, one Down after its node\'s link went; none without a BFD protocol', () => {
  const node = parseBfdSessions(captured('node-show-bfd-sessions.txt').reply);
  assert.ok(node.ok);
  assert.deepEqual(node.value, [{ protocol: 'bfd1', address: '198.18.3.1', iface: 'eth0', state: 'Up', since: '02:27:20.759', intervalS: 0.1, timeoutS: 0.5 }]);
  const rt = parseBfdSessions(captured('router-show-bfd-sessions-down.txt').reply);
  assert.ok(rt.ok);
  assert.deepEqual(rt.value.map((s) => [s.address, s.state]), [['198.18.3.4', 'Down'], ['198.18.3.3', 'Up'], ['198.18.3.5', 'Up'], ['198.18.3.2', 'Up']]);
  const none = captured('node-show-bfd-sessions-none.txt').reply;
  assert.equal(none.code, 9001);
  assert.deepEqual(parseBfdSessions(none), { ok: true, value: [] });
  // Not a BFD table: refused with the reason, not thrown.
  const wrong = parseBfdSessions(captured('node-show-protocols.txt').reply);
  assert.equal(wrong.ok, false);
  assert.equal(parseBfdSessions({ code: 0, lines: [{ code: 1020, text: ' 198.18.3.1 eth0 Up' }] }).ok, false);
});
