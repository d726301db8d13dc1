import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeFrame, deriveConfigKey, encodeFrame, FrameReader, FrameType, FRAME_HEADER_LEN, FRAME_MAC_LEN, FRAME_MAX_PAYLOAD, FRAME_REJECTS } from './frame.js';
import { deriveSyncKey } from '../sync/message.js';

const key = deriveConfigKey(Buffer.alloc(32, 7));
const nonce = Buffer.alloc(16, 0xab);

test('a frame round-trips; the key is the cluster key derived for config alone (not the sync key)', () => {
  const payload = Buffer.from('{"cluster":"lab"}');
  const bytes = encodeFrame(key, { type: FrameType.QUERY, nonce, payload });
  assert.equal(bytes.length, FRAME_HEADER_LEN + payload.length + FRAME_MAC_LEN);
  assert.equal(bytes.subarray(0, 4).toString('latin1'), 'FWCF');
  const r = decodeFrame(key, bytes);
  assert.ok(r.ok);
  assert.deepEqual([r.frame.type, r.frame.nonce, r.frame.payload], [FrameType.QUERY, nonce, payload]);
  assert.notDeepEqual(key, deriveSyncKey(Buffer.alloc(32, 7)));
  // Signed with the sync key (or any other): refused.
  assert.deepEqual(decodeFrame(deriveSyncKey(Buffer.alloc(32, 7)), bytes), { ok: false, reason: 'bad_hmac' });
});

test('every truncation and every single-byte change of a frame is refused with a named reason, never a throw', () => {
  const bytes = encodeFrame(key, { type: FrameType.PUSH, nonce, payload: Buffer.from('a config, in short') });
  for (let n = 0; n < bytes.length; n++) {
    const r = decodeFrame(key, bytes.subarray(0, n));
    assert.equal(r.ok, false, `truncated to ${n}`);
  }
  for (let i = 0; i < bytes.length; i++) {
    const bad = Buffer.from(bytes);
    bad[i] = bad[i]! ^ 0x01;
    const r = decodeFrame(key, bad);
    assert.equal(r.ok, false, `byte ${i} flipped`);
    if (!r.ok) assert.ok((FRAME_REJECTS as readonly string[]).includes(r.reason));
  }
});

test('the stream reader: frames split anywhere (byte by byte too) come out whole; a header not ours or a length over the bound is refused before the body', () => {
  const frames = [Buffer.from('one'), Buffer.alloc(5000, 1), Buffer.alloc(0)].map((p, i) => encodeFrame(key, { type: FrameType.REPLY, nonce: Buffer.alloc(16, i), payload: p }));
  const all = Buffer.concat(frames);
  for (const step of [1, 7, 100, all.length]) {
    const r = new FrameReader(key);
    const got: Buffer[] = [];
    for (let i = 0; i < all.length; i += step) {
      const out = r.push(all.subarray(i, i + step));
      assert.ok(out.ok);
      got.push(...out.frames.map((f) => f.payload));
    }
    assert.deepEqual(got.map((g) => g.length), [3, 5000, 0], `chunks of ${step}`);
    assert.equal(r.buffered, 0);
  }
  const huge = Buffer.from(frames[0]!.subarray(0, FRAME_HEADER_LEN));
  huge.writeUInt32BE(FRAME_MAX_PAYLOAD + 1, 24);
  const r = new FrameReader(key);
  assert.deepEqual(r.push(huge), { ok: false, reason: 'too_long' });
  assert.deepEqual(r.push(Buffer.from('more')), { ok: false, reason: 'too_long' }, 'nothing more is taken after a refusal');
  assert.deepEqual(new FrameReader(key).push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), { ok: false, reason: 'bad_magic' });
});

test('property: random bytes never throw and never give a frame; random frames round-trip through the reader in random chunks', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      const buf = Buffer.from(b);
      assert.equal(decodeFrame(key, buf).ok, false);
      const r = new FrameReader(key).push(buf);
      assert.ok(!r.ok || r.frames.length === 0);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.constantFrom(...Object.values(FrameType)), fc.uint8Array({ maxLength: 3000 }), fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 20 }), (type, payload, cuts) => {
      const bytes = encodeFrame(key, { type, nonce, payload: Buffer.from(payload) });
      const r = new FrameReader(key);
      const frames = [];
      let off = 0;
      for (let i = 0; off < bytes.length; i++) {
        const n = cuts[i % cuts.length]!;
        const out = r.push(bytes.subarray(off, off + n));
        off += n;
        assert.ok(out.ok);
        frames.push(...out.frames);
      }
      assert.equal(frames.length, 1);
      assert.deepEqual(frames[0]!.payload, Buffer.from(payload));
    }),
    { numRuns: 300 },
  );
});
