/**
 * Config distribution frames <-> bytes (issue 24). Pure: no sockets, no clock.
 *
 * Nodes hand each other configs over TCP between their sync addresses (adapters/config-link.ts):
 * one request frame, one reply frame per connection.
 *
 *  0               1               2               3
 *  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
 * +---------------+---------------+---------------+---------------+
 * |                    magic "FWCF" (0x46574346)                  |  0
 * +---------------+---------------+---------------+---------------+
 * |  version = 1  |     type      |          reserved (0)         |  4
 * +---------------+---------------+---------------+---------------+
 * |            nonce (16 bytes: the request's, echoed in its      |  8
 * |            reply, so a reply answers that request only)       |
 * +---------------+---------------+---------------+---------------+
 * |                        payload length                         | 24
 * +---------------+---------------+---------------+---------------+
 * |                  payload (payload length bytes)               | 28
 * +---------------+---------------+---------------+---------------+
 * |        HMAC-SHA256 over bytes 0 .. 28+len-1 (32 bytes)        |
 * +---------------+---------------+---------------+---------------+
 *
 * Types: PUSH 1 (payload: a bundle, codec/config/bundle.ts), CONFIRM 2, QUERY 3, REPLY 4,
 * RUNTIME 5 (runtime changes made with --cluster; payloads: JSON objects, checked by their reader). The key is derived from the cluster key
 * for this purpose alone (`deriveConfigKey`), never the state sync's.
 *
 * `FrameReader` takes a TCP stream's chunks and gives whole frames; it refuses, with one of a
 * closed set of reasons and before it buffers the body, a header that is not ours or a
 * length over the bound. Nothing here throws on bytes from the network.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export const FRAME_MAGIC = 0x46574346;
export const FRAME_VERSION = 1;
export const FRAME_HEADER_LEN = 28;
export const FRAME_MAC_LEN = 32;
export const FRAME_NONCE_LEN = 16;
/** The largest payload taken: a 4 MiB config and its block files, with room. */
export const FRAME_MAX_PAYLOAD = 16 * 1024 * 1024;
/** HKDF "info" that derives the config distribution key from the cluster key (key separation). */
export const CONFIG_KEY_INFO = 'fwlb config distribution v1';

export const FrameType = { PUSH: 1, CONFIRM: 2, QUERY: 3, REPLY: 4, RUNTIME: 5 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
const TYPES = new Set<number>(Object.values(FrameType));

export const FRAME_REJECTS = ['bad_magic', 'bad_version', 'bad_type', 'bad_reserved', 'too_long', 'bad_hmac', 'truncated'] as const;
export type FrameReject = (typeof FRAME_REJECTS)[number];

export interface Frame {
  type: FrameType;
  nonce: Buffer;
  payload: Buffer;
}

/** The key that signs config frames: HKDF-SHA256 of the cluster key with its own info. */
export function deriveConfigKey(clusterKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', clusterKey, new Uint8Array(0), CONFIG_KEY_INFO, 32));
}

export function encodeFrame(key: Uint8Array, f: Frame): Buffer {
  if (f.nonce.length !== FRAME_NONCE_LEN) throw new RangeError(`nonce: ${FRAME_NONCE_LEN} bytes, not ${f.nonce.length}`);
  if (f.payload.length > FRAME_MAX_PAYLOAD) throw new RangeError(`payload of ${f.payload.length} bytes: at most ${FRAME_MAX_PAYLOAD}`);
  const out = Buffer.alloc(FRAME_HEADER_LEN + f.payload.length + FRAME_MAC_LEN);
  out.writeUInt32BE(FRAME_MAGIC, 0);
  out.writeUInt8(FRAME_VERSION, 4);
  out.writeUInt8(f.type, 5);
  f.nonce.copy(out, 8);
  out.writeUInt32BE(f.payload.length, 24);
  f.payload.copy(out, FRAME_HEADER_LEN);
  const end = FRAME_HEADER_LEN + f.payload.length;
  createHmac('sha256', key).update(out.subarray(0, end)).digest().copy(out, end);
  return out;
}

/** The header's verdict: the payload length it announces, or why it is refused. */
function checkHeader(h: Buffer): { ok: true; type: FrameType; length: number } | { ok: false; reason: FrameReject } {
  if (h.readUInt32BE(0) !== FRAME_MAGIC) return { ok: false, reason: 'bad_magic' };
  if (h.readUInt8(4) !== FRAME_VERSION) return { ok: false, reason: 'bad_version' };
  const type = h.readUInt8(5);
  if (!TYPES.has(type)) return { ok: false, reason: 'bad_type' };
  if (h.readUInt16BE(6) !== 0) return { ok: false, reason: 'bad_reserved' };
  const length = h.readUInt32BE(24);
  if (length > FRAME_MAX_PAYLOAD) return { ok: false, reason: 'too_long' };
  return { ok: true, type: type as FrameType, length };
}

/** One whole frame's bytes -> the frame, or why not. The HMAC is checked in constant time. */
export function decodeFrame(key: Uint8Array, buf: Buffer): { ok: true; frame: Frame } | { ok: false; reason: FrameReject } {
  if (buf.length < FRAME_HEADER_LEN + FRAME_MAC_LEN) return { ok: false, reason: 'truncated' };
  const h = checkHeader(buf);
  if (!h.ok) return h;
  const end = FRAME_HEADER_LEN + h.length;
  if (buf.length !== end + FRAME_MAC_LEN) return { ok: false, reason: 'truncated' };
  const mac = createHmac('sha256', key).update(buf.subarray(0, end)).digest();
  if (!timingSafeEqual(mac, buf.subarray(end))) return { ok: false, reason: 'bad_hmac' };
  return { ok: true, frame: { type: h.type, nonce: Buffer.from(buf.subarray(8, 24)), payload: Buffer.from(buf.subarray(FRAME_HEADER_LEN, end)) } };
}

/**
 * A stream's chunks in, whole frames out. After a refusal it takes nothing more: the caller
 * closes the connection.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private need = FRAME_HEADER_LEN;
  private failed: FrameReject | undefined;

  constructor(private readonly key: Uint8Array) {}

  /** Bytes received so far and not yet given out as a frame. */
  get buffered(): number {
    return this.have;
  }

  /** Adds a chunk; returns the frames it completes, or the reason the stream is refused. */
  push(chunk: Buffer): { ok: true; frames: Frame[] } | { ok: false; reason: FrameReject } {
    if (this.failed) return { ok: false, reason: this.failed };
    this.chunks.push(chunk);
    this.have += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      // Not ours from its first four bytes on: refused without waiting for a whole header.
      if (this.need === FRAME_HEADER_LEN && this.have >= 4 && this.have < this.need && this.magicWrong()) return this.fail('bad_magic');
      if (this.have < this.need) return { ok: true, frames };
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.have);
      this.chunks = [all];
      const h = checkHeader(all);
      if (!h.ok) return this.fail(h.reason);
      const total = FRAME_HEADER_LEN + h.length + FRAME_MAC_LEN;
      if (this.have < total) {
        this.need = total;
        return { ok: true, frames };
      }
      const r = decodeFrame(this.key, all.subarray(0, total));
      if (!r.ok) return this.fail(r.reason);
      frames.push(r.frame);
      const rest = all.subarray(total);
      this.chunks = rest.length ? [rest] : [];
      this.have = rest.length;
      this.need = FRAME_HEADER_LEN;
    }
  }

  private magicWrong(): boolean {
    const head = this.chunks[0]!.length >= 4 ? this.chunks[0]! : Buffer.concat(this.chunks, this.have);
    return head.readUInt32BE(0) !== FRAME_MAGIC;
  }

  private fail(reason: FrameReject): { ok: false; reason: FrameReject } {
    this.failed = reason;
    this.chunks = [];
    this.have = 0;
    return { ok: false, reason };
  }
}
