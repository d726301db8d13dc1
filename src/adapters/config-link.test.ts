/**
 * The config link over real TCP on loopback (no root): a request answered with its nonce; a
 * frame signed with another key, a stranger's connection, a silent one, a frame over the
 * bound and a reply sent as a request are refused, closed and counted; a peer that is not
 * listening is "unreachable" at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { deriveConfigKey, encodeFrame, FrameType, FRAME_HEADER_LEN, FRAME_MAX_PAYLOAD } from '../codec/config/frame.js';
import { ConfigLinkError, listenConfigLink, requestConfigLink, scopedHost } from './config-link.js';

const key = deriveConfigKey(Buffer.alloc(32, 5));
const port = () => 30000 + Math.floor(Math.random() * 20000);

async function server(peers = ['127.0.0.1'], idleMs = 300) {
  const p = port();
  const refusals: string[] = [];
  const l = await listenConfigLink({ host: '127.0.0.1', port: p, key, peers, idleMs, handle: async (f, from) => Buffer.from(JSON.stringify({ type: f.type, from, echo: f.payload.toString() })), onRefused: (r) => refusals.push(r) });
  return { p, l, refusals };
}

test('a request is answered, signed, with its own nonce; the handler knows who asked', async () => {
  const s = await server();
  try {
    const reply = await requestConfigLink({ host: '127.0.0.1', port: s.p, key, type: FrameType.QUERY, payload: Buffer.from('hello'), timeoutMs: 2000 });
    assert.deepEqual(JSON.parse(reply.toString()), { type: FrameType.QUERY, from: '127.0.0.1', echo: 'hello' });
    assert.deepEqual(s.l.counters(), { connections: 1, refused: {} });
  } finally {
    await s.l.close();
  }
});

test('refused, closed and counted: another key, a stranger, silence, a frame over the bound, a reply sent as a request', async () => {
  const s = await server();
  try {
    await assert.rejects(requestConfigLink({ host: '127.0.0.1', port: s.p, key: deriveConfigKey(Buffer.alloc(32, 6)), type: FrameType.PUSH, payload: Buffer.from('x'), timeoutMs: 2000 }), (e: ConfigLinkError) => e.reason === 'unreachable');
    // Silence: closed after idleMs.
    const quiet = connect(s.p, '127.0.0.1');
    await once(quiet, 'close');
    // A header announcing more than the bound: refused before any body.
    const big = Buffer.alloc(FRAME_HEADER_LEN);
    big.writeUInt32BE(0x46574346, 0);
    big.writeUInt8(1, 4);
    big.writeUInt8(FrameType.PUSH, 5);
    big.writeUInt32BE(FRAME_MAX_PAYLOAD + 1, 24);
    const huge = connect(s.p, '127.0.0.1', () => huge.write(big));
    await once(huge, 'close');
    const reply = connect(s.p, '127.0.0.1', () => reply.write(encodeFrame(key, { type: FrameType.REPLY, nonce: Buffer.alloc(16), payload: Buffer.alloc(0) })));
    await once(reply, 'close');
    assert.deepEqual(s.l.counters().refused, { bad_hmac: 1, idle: 1, too_long: 1, not_request: 1 });
    assert.deepEqual(s.refusals.sort(), ['bad_hmac', 'idle', 'not_request', 'too_long']);
  } finally {
    await s.l.close();
  }
  const strangers = await server(['198.18.2.2']);
  try {
    await assert.rejects(requestConfigLink({ host: '127.0.0.1', port: strangers.p, key, type: FrameType.QUERY, payload: Buffer.alloc(0), timeoutMs: 2000 }));
    assert.deepEqual(strangers.l.counters().refused, { not_peer: 1 });
  } finally {
    await strangers.l.close();
  }
});

test('nobody listening: unreachable at once; a link-local peer gets its interface', async () => {
  const t0 = performance.now();
  await assert.rejects(requestConfigLink({ host: '127.0.0.1', port: port(), key, type: FrameType.QUERY, payload: Buffer.alloc(0), timeoutMs: 5000 }), (e: ConfigLinkError) => e.reason === 'unreachable');
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(scopedHost('fe80::a:2', 'eth2'), 'fe80::a:2%eth2');
  assert.equal(scopedHost('2001:2:2::2', 'eth2'), '2001:2:2::2');
  assert.equal(scopedHost('198.18.2.2', 'eth2'), '198.18.2.2');
});
