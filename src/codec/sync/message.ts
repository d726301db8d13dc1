/**
 * fwlb state-sync messages <-> bytes, wire format version 2. Pure: no sockets, no clock.
 *
 * One message per UDP datagram, on the dedicated sync link, unicast to one peer:
 *
 *  0               1               2               3
 *  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
 * +---------------+---------------+---------------+---------------+
 * |                    magic "FWSY" (0x46575359)                  |  0
 * +---------------+---------------+---------------+---------------+
 * |  version = 2  |     type      |     flags     |  reserved (0) |  4
 * +---------------+---------------+---------------+---------------+
 * |        sender node id         |       receiver node id        |  8
 * +---------------+---------------+---------------+---------------+
 * |                   epoch (sender's, never 0)                   | 12
 * +---------------+---------------+---------------+---------------+
 * |              packet number (64 bits, below 2^53)              | 16
 * |                                                               |
 * +---------------+---------------+---------------+---------------+
 * |                       stream sequence                         | 24
 * +---------------+---------------+---------------+---------------+
 * |        peer epoch (the receiver's, as known; 0 = unknown)     | 28
 * +---------------+---------------+---------------+---------------+
 * |              cumulative ack (valid with flag ACK)             | 32
 * +---------------+---------------+---------------+---------------+
 * |        payload length         |        receive window         | 36
 * +---------------+---------------+---------------+---------------+
 * |                 payload (payload length bytes)                | 40
 * +---------------+---------------+---------------+---------------+
 * |      HMAC-SHA256 over bytes 0 .. 40+len-1, first 16 bytes     | 40+len
 * +---------------+---------------+---------------+---------------+
 *
 * All integers big-endian. Node ids are the nodes' positions in the config's `nodes` map.
 *
 * - epoch: drawn at random (non-zero) when the daemon starts; a new epoch from a peer means
 *   the peer restarted. Every stream (sequence numbers, acks) lives inside one pair of epochs.
 * - packet number: +1 for every message the sender sends to this receiver in this epoch,
 *   retransmissions included. It exists only for replay protection (fsm/sync/replay.ts).
 * - stream sequence: for the reliable types (DATA, BULK_END) the message's own position in
 *   the sender's stream; for the others the sequence the sender will use next, so a receiver
 *   learns of lost messages at the tail of the stream from a keepalive.
 * - peer epoch: binds the message to the receiver's current incarnation: a message captured
 *   before the receiver restarted names an old epoch and is refused.
 * - cumulative ack (flag ACK): the next sequence the sender expects from the receiver's
 *   stream, i.e. everything before it arrived. Any message may piggyback it.
 * - receive window (with flag ACK): how many messages past the cumulative ack the sender of
 *   this message can take now; 0xffff: no limit. A node whose kernel writes fall behind
 *   closes it and opens it again (in its next message, or an ACK at once) as they catch up:
 *   flow control, so a bulk sync of a million entries never outruns the joining node.
 * - flags: ACK 0x01 (any type; always on ACK), BULK 0x02 (DATA: part of a bulk transfer),
 *   SYNCED 0x04 (HELLO: the sender's own bulk sync is complete). Other bits are refused.
 *
 * Payloads by type:
 *   DATA (1)          records, one after the other, at least one:
 *                     | record type u8 | reserved u8 | body length u16 | body ... |
 *                     record types: CT_UPDATE 1, CT_DESTROY 2. Bodies are opaque here;
 *                     conntrack entries are binary TLV (codec/sync/entry-v2.ts, 59 bytes
 *                     for a NAT'd TCP entry).
 *   ACK (2)           | NACK range count u16 | reserved u16 | (first u32, last u32) ... |
 *                     inclusive ranges of sequences missing at the receiver, at or after the ack.
 *   HELLO (3)         empty.
 *   BULK_REQUEST (4)  | request id u32 (non-zero) |
 *   BULK_END (5)      | request id u32 (0: a push nobody asked for) | record count u32 |
 *   BEAT (6)          | interval ms u16 | multiplier u8 | flags u8 (LEAVING 0x01, READY 0x02) |
 *                     | instance count u16 | lag u16 (BEHIND 0x8000, WRITING 0x4000, the
 *                     receiver's lag behind the sender in ms, 0..16383) | (vrid u8, state u8, priority u8,
 *                     flags u8 (IPV6 0x01)) per VRRP instance of the sender, in config order |
 *                     (advert source, 16 bytes) per IPv6 instance, in the same order |
 *                     liveness, unreliable; states: 0 initialize, 1 backup, 2 master, 3 fault.
 *                     The source is the link-local address the instance's adverts leave from
 *                     (:: while it has none): a receiver knows an IPv6 advert's sender by it.
 *                     A BEAT without IPv6 instances is as before the flag existed. The lag
 *                     field was reserved (0) before issue 25: nodes from before then send 0 and ignore it.
 *
 * The HMAC key is derived from the cluster key (`deriveSyncKey`), never the raw key, so the
 * same secret can authenticate other things (config distribution) without cross-protocol use.
 *
 * Versions: 1 carried JSON entry bodies (about 330 bytes each); 2 (this one) carries binary
 * ones. The header is the same, so a node reads the version of any datagram before its HMAC
 * (`peekVersion`) and refuses another version's peer with a log line naming both.
 *
 * `decode` never throws, whatever the bytes: it returns one of a closed set of reasons, and
 * checks the HMAC (in constant time) before it looks at anything past the framing.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { FwlbError } from '../../lib/errors.js';
import { formatIPv6, parseIPv6 } from '../../lib/ip-bytes.js';
import {
  OFF_ACK,
  OFF_WINDOW,
  SYNC_WINDOW_OPEN,
  OFF_EPOCH,
  OFF_FLAGS,
  OFF_MAGIC,
  OFF_PACKET,
  OFF_PAYLOAD_LEN,
  OFF_PEER_EPOCH,
  OFF_RECEIVER,
  OFF_SENDER,
  OFF_SEQ,
  OFF_TYPE,
  OFF_VERSION,
  SYNC_ACK_FIXED_LEN,
  SYNC_BULK_END_LEN,
  SYNC_BEAT_FIXED_LEN,
  SYNC_BEAT_INSTANCE_LEN,
  SYNC_BEAT_MAX_INSTANCES,
  SYNC_BEAT_F_LEAVING,
  SYNC_BEAT_F_READY,
  SYNC_BEAT_I_IPV6,
  SYNC_BEAT_LAG_BEHIND,
  SYNC_BEAT_LAG_MS_MAX,
  SYNC_BEAT_LAG_WRITING,
  SYNC_BEAT_SOURCE_LEN,
  SYNC_TYPE_BEAT,
  SYNC_BULK_REQUEST_LEN,
  SYNC_DEFAULT_MAX_MESSAGE,
  SYNC_F_ACK,
  SYNC_F_BULK,
  SYNC_F_SYNCED,
  SYNC_HEADER_LEN,
  SYNC_HMAC_LEN,
  SYNC_KEY_INFO,
  SYNC_KEY_LEN,
  SYNC_MAGIC,
  SYNC_MAX_NACK_RANGES,
  SYNC_MAX_PACKET_NUMBER,
  SYNC_MAX_PAYLOAD,
  SYNC_MIN_CLUSTER_KEY_LEN,
  SYNC_NACK_RANGE_LEN,
  SYNC_OVERHEAD,
  SYNC_RECORD_CT_DESTROY,
  SYNC_RECORD_CT_UPDATE,
  SYNC_RECORD_HEADER_LEN,
  SYNC_TYPE_ACK,
  SYNC_TYPE_BULK_END,
  SYNC_TYPE_BULK_REQUEST,
  SYNC_TYPE_DATA,
  SYNC_TYPE_HELLO,
  SYNC_VERSION,
} from './constants.js';
import { isSeq, seqDiff } from './serial.js';

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

export type SyncRecordType = 'ct_update' | 'ct_destroy';

/** One replicated change: an opaque conntrack entry encoding and what happened to it. */
export interface SyncRecord {
  type: SyncRecordType;
  body: Uint8Array;
}

/** An inclusive range of stream sequences. */
export interface SeqRange {
  first: number;
  last: number;
}

/** Fields every message has (see the diagram above). */
export interface SyncHeader {
  sender: number;
  receiver: number;
  epoch: number;
  /** The receiver's epoch as the sender knows it; 0 while unknown. */
  peerEpoch: number;
  packet: number;
  seq: number;
  /** Cumulative ack of the receiver's stream (flag ACK); undefined when not carried. */
  ack?: number;
  /** With `ack`: messages past it the sender of this message can take now; undefined: no limit. */
  window?: number;
}

export interface SyncDataMessage extends SyncHeader {
  type: 'data';
  /** Part of a bulk transfer (flag BULK). */
  bulk: boolean;
  records: SyncRecord[];
}
export interface SyncAckMessage extends SyncHeader {
  type: 'ack';
  ack: number;
  nacks: SeqRange[];
}
export interface SyncHelloMessage extends SyncHeader {
  type: 'hello';
  /** The sender's own bulk sync is complete (flag SYNCED). */
  synced: boolean;
}
export interface SyncBulkRequestMessage extends SyncHeader {
  type: 'bulk_request';
  requestId: number;
}
export interface SyncBulkEndMessage extends SyncHeader {
  type: 'bulk_end';
  /** The request this transfer answers; 0 for a push nobody asked for (a resync). */
  requestId: number;
  /** Records sent in the transfer. */
  count: number;
}

/** One VRRP instance of the sender, in config order, as its BEAT reports it. */
export interface BeatInstance {
  vrid: number;
  /** BEAT_STATES: initialize, backup, master, fault. */
  state: BeatState;
  priority: number;
  /** An IPv6 instance: the link-local address its adverts leave from ('::' while it has none). Absent: IPv4. */
  source?: string;
}
export const BEAT_STATES = ['initialize', 'backup', 'master', 'fault'] as const;
export type BeatState = (typeof BEAT_STATES)[number];

/**
 * Liveness (fsm/liveness.ts): sent every `intervalMs`, unreliable (no stream sequence of its
 * own). The receiver declares the sender down after intervalMs x multiplier without one (the
 * sender's own detection time, as BFD's). It also says, authenticated, what the sender's VRRP
 * instances are and at which priority, so that an advert claiming to be the sender's can be
 * checked against it.
 */
export interface SyncBeatMessage extends SyncHeader {
  type: 'beat';
  intervalMs: number;
  multiplier: number;
  /** The sender is stopping (its priority-0 adverts are genuine). */
  leaving: boolean;
  /** The sender holds the cluster's state (sharing: it may take its buckets). Absent: false. */
  ready?: boolean;
  instances: BeatInstance[];
  /** The receiver's lag behind the sender (ms, at most 16383): its oldest change the receiver has not acknowledged. Absent: 0. */
  lagMs?: number;
  /** The sender's own table lags a peer's by more than its bound. Absent: false. */
  behind?: boolean;
  /** Records the sender received wait for its kernel write. Absent: false. */
  writing?: boolean;
}

export type SyncMessage = SyncDataMessage | SyncAckMessage | SyncHelloMessage | SyncBulkRequestMessage | SyncBulkEndMessage | SyncBeatMessage;
export type SyncMessageType = SyncMessage['type'];

/** Message types by wire value, and their names for logs (one table, like pfsync's). */
export const SYNC_MESSAGE_TYPES: Readonly<Record<number, SyncMessageType>> = {
  [SYNC_TYPE_DATA]: 'data',
  [SYNC_TYPE_ACK]: 'ack',
  [SYNC_TYPE_HELLO]: 'hello',
  [SYNC_TYPE_BULK_REQUEST]: 'bulk_request',
  [SYNC_TYPE_BULK_END]: 'bulk_end',
  [SYNC_TYPE_BEAT]: 'beat',
};
const TYPE_CODE: Readonly<Record<SyncMessageType, number>> = {
  data: SYNC_TYPE_DATA,
  ack: SYNC_TYPE_ACK,
  hello: SYNC_TYPE_HELLO,
  bulk_request: SYNC_TYPE_BULK_REQUEST,
  bulk_end: SYNC_TYPE_BULK_END,
  beat: SYNC_TYPE_BEAT,
};

/** Flags each type may carry. */
const ALLOWED_FLAGS: Readonly<Record<SyncMessageType, number>> = {
  data: SYNC_F_ACK | SYNC_F_BULK,
  ack: SYNC_F_ACK,
  hello: SYNC_F_ACK | SYNC_F_SYNCED,
  bulk_request: SYNC_F_ACK,
  bulk_end: SYNC_F_ACK,
  beat: 0,
};

export const SYNC_RECORD_TYPES: Readonly<Record<number, SyncRecordType>> = {
  [SYNC_RECORD_CT_UPDATE]: 'ct_update',
  [SYNC_RECORD_CT_DESTROY]: 'ct_destroy',
};
const RECORD_CODE: Readonly<Record<SyncRecordType, number>> = {
  ct_update: SYNC_RECORD_CT_UPDATE,
  ct_destroy: SYNC_RECORD_CT_DESTROY,
};

/** Why a received datagram was dropped; each is a counter `sync_rx_dropped_total{reason}`. */
export const SYNC_DECODE_REASONS = [
  'too_short', // fewer bytes than header + HMAC
  'bad_magic', // does not start with "FWSY"
  'bad_version', // a wire format version we do not speak
  'bad_length', // payload length disagrees with the datagram's length
  'bad_hmac', // the HMAC does not verify: wrong key, corruption or forgery
  'bad_header', // authentic, but epoch 0 or a packet number of 2^53 or more
  'bad_type', // authentic, but an unknown message type
  'bad_flags', // flag bits the type does not define (or ACK without the ACK flag)
  'bad_payload', // a payload of the wrong size or content for its type
  'bad_record', // a DATA record truncated, overrunning, or of an unknown type
] as const;
export type SyncDecodeReason = (typeof SYNC_DECODE_REASONS)[number];

export type SyncDecodeResult = { ok: true; value: SyncMessage } | { ok: false; reason: SyncDecodeReason };

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/**
 * The HMAC key for sync, derived from the cluster key (the `cluster.key_file` content, as
 * bytes) with HKDF-SHA256 (RFC 5869) and a label of its own.
 */
export function deriveSyncKey(clusterKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', clusterKey, new Uint8Array(0), SYNC_KEY_INFO, SYNC_KEY_LEN));
}

/** Why a cluster key is unfit, or undefined when it will do. */
export function syncKeyProblem(clusterKey: Uint8Array): string | undefined {
  if (!(clusterKey instanceof Uint8Array)) return 'the cluster key is not bytes';
  if (clusterKey.length < SYNC_MIN_CLUSTER_KEY_LEN) {
    return `the cluster key has ${clusterKey.length} bytes; at least ${SYNC_MIN_CLUSTER_KEY_LEN} are needed`;
  }
  return undefined;
}

function mac(key: Uint8Array, covered: Uint8Array): Buffer {
  return createHmac('sha256', key).update(covered).digest().subarray(0, SYNC_HMAC_LEN);
}

// ---------------------------------------------------------------------------------------
// Sizes and batching
// ---------------------------------------------------------------------------------------

/** Bytes a record takes inside DATA. */
export function recordSize(r: SyncRecord): number {
  return SYNC_RECORD_HEADER_LEN + r.body.length;
}

/** Bytes of a DATA message carrying these records, header and HMAC included. */
export function dataMessageSize(records: readonly SyncRecord[]): number {
  let n = SYNC_OVERHEAD;
  for (const r of records) n += recordSize(r);
  return n;
}

/** The largest record body that fits alone in a message of `maxMessage` bytes. */
export function maxRecordBody(maxMessage = SYNC_DEFAULT_MAX_MESSAGE): number {
  return Math.min(maxMessage, SYNC_OVERHEAD + SYNC_MAX_PAYLOAD) - SYNC_OVERHEAD - SYNC_RECORD_HEADER_LEN;
}

/** True when the record fits alone in a message of `maxMessage` bytes. */
export function recordFits(r: SyncRecord, maxMessage = SYNC_DEFAULT_MAX_MESSAGE): boolean {
  return r.body.length <= maxRecordBody(maxMessage);
}

/**
 * Splits records, in order, into groups that each fit in one DATA message of at most
 * `maxMessage` bytes (HMAC included). Greedy: a group is closed when the next record would
 * not fit. A record that cannot fit even alone is a programming error (our own encoder made
 * it): it throws ERR_SYNC_RECORD_TOO_LARGE; check with `recordFits` first.
 */
export function batch(records: readonly SyncRecord[], maxMessage = SYNC_DEFAULT_MAX_MESSAGE): SyncRecord[][] {
  const groups: SyncRecord[][] = [];
  let group: SyncRecord[] = [];
  let size = SYNC_OVERHEAD;
  for (const r of records) {
    if (!recordFits(r, maxMessage)) {
      throw new FwlbError('ERR_SYNC_RECORD_TOO_LARGE', `a ${r.body.length}-byte record does not fit in a ${maxMessage}-byte sync message`);
    }
    const rs = recordSize(r);
    if (group.length > 0 && size + rs > maxMessage) {
      groups.push(group);
      group = [];
      size = SYNC_OVERHEAD;
    }
    group.push(r);
    size += rs;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

const isU16 = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff;
const isU32 = isSeq;

/** Everything wrong with a message we are about to send; empty when it can be encoded. */
export function messageProblems(m: SyncMessage): string[] {
  const p: string[] = [];
  if (!m || typeof m !== 'object') return ['not a message'];
  const type = (m as { type?: unknown }).type;
  if (typeof type !== 'string' || !(type in TYPE_CODE)) return [`unknown message type ${String(type)}`];
  if (!isU16(m.sender)) p.push(`sender ${m.sender} is not a 16-bit node id`);
  if (!isU16(m.receiver)) p.push(`receiver ${m.receiver} is not a 16-bit node id`);
  if (!isU32(m.epoch) || m.epoch === 0) p.push(`epoch ${m.epoch} is not a non-zero 32-bit number`);
  if (!isU32(m.peerEpoch)) p.push(`peer epoch ${m.peerEpoch} is not a 32-bit number`);
  if (typeof m.packet !== 'number' || !Number.isInteger(m.packet) || m.packet < 0 || m.packet > SYNC_MAX_PACKET_NUMBER) {
    p.push(`packet number ${m.packet} is outside 0..2^53-1`);
  }
  if (!isU32(m.seq)) p.push(`sequence ${m.seq} is not a 32-bit number`);
  if (m.ack !== undefined && !isU32(m.ack)) p.push(`ack ${m.ack} is not a 32-bit number`);
  switch (m.type) {
    case 'data':
      if (!Array.isArray(m.records) || m.records.length === 0) p.push('DATA carries at least one record');
      else {
        for (const r of m.records) {
          if (!r || !(r.type in RECORD_CODE)) p.push(`unknown record type ${String(r?.type)}`);
          else if (!(r.body instanceof Uint8Array)) p.push('a record body is not bytes');
          else if (r.body.length > 0xffff) p.push(`a record body of ${r.body.length} bytes exceeds 65535`);
        }
      }
      break;
    case 'ack':
      if (m.ack === undefined) p.push('ACK needs the cumulative ack');
      if (!Array.isArray(m.nacks) || m.nacks.length > SYNC_MAX_NACK_RANGES) p.push(`ACK carries at most ${SYNC_MAX_NACK_RANGES} NACK ranges`);
      else if (m.ack !== undefined) for (const r of m.nacks) p.push(...rangeProblems(r, m.ack));
      break;
    case 'hello':
      break;
    case 'bulk_request':
      if (!isU32(m.requestId) || m.requestId === 0) p.push(`request id ${m.requestId} is not a non-zero 32-bit number`);
      break;
    case 'bulk_end':
      if (!isU32(m.requestId)) p.push(`request id ${m.requestId} is not a 32-bit number`);
      if (!isU32(m.count)) p.push(`count ${m.count} is not a 32-bit number`);
      break;
    case 'beat':
      if (m.ack !== undefined) p.push('BEAT carries no ack');
      if (!Number.isInteger(m.intervalMs) || m.intervalMs < 1 || m.intervalMs > 0xffff) p.push(`beat interval ${m.intervalMs} ms is outside 1..65535`);
      if (!Number.isInteger(m.multiplier) || m.multiplier < 1 || m.multiplier > 255) p.push(`beat multiplier ${m.multiplier} is outside 1..255`);
      if (!Array.isArray(m.instances) || m.instances.length > SYNC_BEAT_MAX_INSTANCES) p.push(`BEAT carries at most ${SYNC_BEAT_MAX_INSTANCES} instances`);
      else {
        for (const i of m.instances) {
          if (!i || !Number.isInteger(i.vrid) || i.vrid < 1 || i.vrid > 255) p.push(`beat instance VRID ${i?.vrid} is outside 1..255`);
          else if (!BEAT_STATES.includes(i.state)) p.push(`beat instance state ${String(i.state)} is unknown`);
          else if (!Number.isInteger(i.priority) || i.priority < 0 || i.priority > 255) p.push(`beat instance priority ${i.priority} is outside 0..255`);
          else if (i.source !== undefined && !parseIPv6(i.source)) p.push(`beat instance source ${String(i.source)} is not an IPv6 address`);
        }
      }
      break;
  }
  if (p.length === 0 && payloadLength(m) > SYNC_MAX_PAYLOAD) p.push(`payload of ${payloadLength(m)} bytes exceeds ${SYNC_MAX_PAYLOAD}`);
  return p;
}

function rangeProblems(r: SeqRange, ack: number): string[] {
  if (!r || !isSeq(r.first) || !isSeq(r.last)) return ['a NACK range is not two 32-bit numbers'];
  if (seqDiff(r.last, r.first) < 0) return [`NACK range ${r.first}..${r.last} is backwards`];
  if (seqDiff(r.first, ack) < 0) return [`NACK range ${r.first}..${r.last} starts before the ack ${ack}`];
  return [];
}

function payloadLength(m: SyncMessage): number {
  switch (m.type) {
    case 'data':
      return dataMessageSize(m.records) - SYNC_OVERHEAD;
    case 'ack':
      return SYNC_ACK_FIXED_LEN + m.nacks.length * SYNC_NACK_RANGE_LEN;
    case 'hello':
      return 0;
    case 'bulk_request':
      return SYNC_BULK_REQUEST_LEN;
    case 'bulk_end':
      return SYNC_BULK_END_LEN;
    case 'beat':
      return SYNC_BEAT_FIXED_LEN + m.instances.length * SYNC_BEAT_INSTANCE_LEN + m.instances.filter((i) => i.source !== undefined).length * SYNC_BEAT_SOURCE_LEN;
  }
}

/** Bytes of the encoded message, HMAC included. */
export function encodedLength(m: SyncMessage): number {
  return SYNC_OVERHEAD + payloadLength(m);
}

function flagsOf(m: SyncMessage): number {
  let f = m.ack !== undefined ? SYNC_F_ACK : 0;
  if (m.type === 'data' && m.bulk) f |= SYNC_F_BULK;
  if (m.type === 'hello' && m.synced) f |= SYNC_F_SYNCED;
  return f;
}

/**
 * Encodes a message and signs it with `key` (from `deriveSyncKey`). Our own values only, so
 * an invalid one is a programming error: it throws ERR_SYNC_ENCODE (see `messageProblems`).
 */
export function encode(m: SyncMessage, key: Uint8Array): Buffer {
  const problems = messageProblems(m);
  if (problems.length > 0) throw new FwlbError('ERR_SYNC_ENCODE', `cannot encode sync message: ${problems.join('; ')}`);
  const len = payloadLength(m);
  const buf = Buffer.alloc(SYNC_OVERHEAD + len);
  buf.writeUInt32BE(SYNC_MAGIC, OFF_MAGIC);
  buf[OFF_VERSION] = SYNC_VERSION;
  buf[OFF_TYPE] = TYPE_CODE[m.type];
  buf[OFF_FLAGS] = flagsOf(m);
  buf.writeUInt16BE(m.sender, OFF_SENDER);
  buf.writeUInt16BE(m.receiver, OFF_RECEIVER);
  buf.writeUInt32BE(m.epoch, OFF_EPOCH);
  buf.writeUInt32BE(Math.floor(m.packet / 2 ** 32), OFF_PACKET);
  buf.writeUInt32BE(m.packet % 2 ** 32, OFF_PACKET + 4);
  buf.writeUInt32BE(m.seq, OFF_SEQ);
  buf.writeUInt32BE(m.peerEpoch, OFF_PEER_EPOCH);
  buf.writeUInt32BE(m.ack ?? 0, OFF_ACK);
  buf.writeUInt16BE(len, OFF_PAYLOAD_LEN);
  buf.writeUInt16BE(m.ack !== undefined && m.window !== undefined ? Math.min(m.window, SYNC_WINDOW_OPEN - 1) : SYNC_WINDOW_OPEN, OFF_WINDOW);
  // The reserved byte stays zero.
  let at = SYNC_HEADER_LEN;
  switch (m.type) {
    case 'data':
      for (const r of m.records) {
        buf[at] = RECORD_CODE[r.type];
        buf.writeUInt16BE(r.body.length, at + 2);
        buf.set(r.body, at + SYNC_RECORD_HEADER_LEN);
        at += recordSize(r);
      }
      break;
    case 'ack':
      buf.writeUInt16BE(m.nacks.length, at);
      at += SYNC_ACK_FIXED_LEN;
      for (const r of m.nacks) {
        buf.writeUInt32BE(r.first, at);
        buf.writeUInt32BE(r.last, at + 4);
        at += SYNC_NACK_RANGE_LEN;
      }
      break;
    case 'hello':
      break;
    case 'bulk_request':
      buf.writeUInt32BE(m.requestId, at);
      break;
    case 'bulk_end':
      buf.writeUInt32BE(m.requestId, at);
      buf.writeUInt32BE(m.count, at + 4);
      break;
    case 'beat':
      buf.writeUInt16BE(m.intervalMs, at);
      buf[at + 2] = m.multiplier;
      buf[at + 3] = (m.leaving ? SYNC_BEAT_F_LEAVING : 0) | (m.ready ? SYNC_BEAT_F_READY : 0);
      buf.writeUInt16BE(m.instances.length, at + 4);
      buf.writeUInt16BE(lagField(m), at + 6);
      at += SYNC_BEAT_FIXED_LEN;
      for (const i of m.instances) {
        buf[at] = i.vrid;
        buf[at + 1] = BEAT_STATES.indexOf(i.state);
        buf[at + 2] = i.priority;
        buf[at + 3] = i.source !== undefined ? SYNC_BEAT_I_IPV6 : 0;
        at += SYNC_BEAT_INSTANCE_LEN;
      }
      for (const i of m.instances) {
        if (i.source === undefined) continue;
        buf.set(parseIPv6(i.source)!, at);
        at += SYNC_BEAT_SOURCE_LEN;
      }
      break;
  }
  mac(key, buf.subarray(0, SYNC_HEADER_LEN + len)).copy(buf, SYNC_HEADER_LEN + len);
  return buf;
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

/**
 * Decodes and authenticates one datagram, in this order: framing (length, magic, version,
 * payload length), HMAC, header values, type, flags, payload. Record bodies are copies (plain Uint8Arrays), so
 * the caller may reuse `buf`. Never throws on any bytes: every read is bounds-checked first
 * (the fuzz tests in message.test.ts hold it to that).
 */
/**
 * The wire version of a datagram that has our magic, or undefined: unauthenticated, for the
 * log line that refuses a peer of another version (never for a decision).
 */
export function peekVersion(buf: Uint8Array): number | undefined {
  if (!(buf instanceof Uint8Array) || buf.length < SYNC_OVERHEAD) return undefined;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return dv.getUint32(OFF_MAGIC) === SYNC_MAGIC ? dv.getUint8(OFF_VERSION) : undefined;
}

/** The header fields a datagram claims, unauthenticated (peekHeader). */
export interface ClaimedHeader {
  type: SyncMessageType | undefined;
  sender: number;
  receiver: number;
  epoch: number;
  peerEpoch: number;
  packet: number;
}

/**
 * The header a datagram of this version claims, read before authenticating, for the cheap
 * checks that spare a flood the HMAC: is it the peer at that source address, for us, and
 * would the replay check refuse it anyway (the verdict depends on these fields only, so a
 * message the check refuses is refused whether or not it is authentic). Never for a decision
 * beyond dropping. Undefined when the datagram is not of this version or too short.
 */
export function peekHeader(buf: Uint8Array): ClaimedHeader | undefined {
  if (peekVersion(buf) !== SYNC_VERSION) return undefined;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    type: SYNC_MESSAGE_TYPES[dv.getUint8(OFF_TYPE)],
    sender: dv.getUint16(OFF_SENDER),
    receiver: dv.getUint16(OFF_RECEIVER),
    epoch: dv.getUint32(OFF_EPOCH),
    peerEpoch: dv.getUint32(OFF_PEER_EPOCH),
    packet: dv.getUint32(OFF_PACKET) * 2 ** 32 + dv.getUint32(OFF_PACKET + 4),
  };
}

/**
 * A datagram -> its message, authenticated. A DATA message's record bodies are views of
 * `buf` (no copy per record: a bulk sync receives millions): the caller keeps `buf` as long
 * as it keeps the records, and copies a buffer it will reuse before it decodes.
 */
export function decode(buf: Uint8Array, key: Uint8Array): SyncDecodeResult {
  const fail = (reason: SyncDecodeReason): SyncDecodeResult => ({ ok: false, reason });
  if (!(buf instanceof Uint8Array) || buf.length < SYNC_OVERHEAD) return fail('too_short');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(OFF_MAGIC) !== SYNC_MAGIC) return fail('bad_magic');
  if (dv.getUint8(OFF_VERSION) !== SYNC_VERSION) return fail('bad_version');
  const len = dv.getUint16(OFF_PAYLOAD_LEN);
  if (buf.length !== SYNC_OVERHEAD + len) return fail('bad_length');

  // Authenticate before reading anything else: nothing unauthenticated reaches the parsers.
  const end = SYNC_HEADER_LEN + len;
  const expected = mac(key, buf.subarray(0, end));
  if (!timingSafeEqual(expected, buf.subarray(end, end + SYNC_HMAC_LEN))) return fail('bad_hmac');

  const epoch = dv.getUint32(OFF_EPOCH);
  const packetHigh = dv.getUint32(OFF_PACKET);
  if (epoch === 0 || packetHigh > Math.floor(SYNC_MAX_PACKET_NUMBER / 2 ** 32)) return fail('bad_header');
  const type = SYNC_MESSAGE_TYPES[dv.getUint8(OFF_TYPE)];
  if (type === undefined) return fail('bad_type');
  const flags = dv.getUint8(OFF_FLAGS);
  if ((flags & ~ALLOWED_FLAGS[type]) !== 0) return fail('bad_flags');
  if (type === 'ack' && (flags & SYNC_F_ACK) === 0) return fail('bad_flags');

  const header: SyncHeader = {
    sender: dv.getUint16(OFF_SENDER),
    receiver: dv.getUint16(OFF_RECEIVER),
    epoch,
    peerEpoch: dv.getUint32(OFF_PEER_EPOCH),
    packet: packetHigh * 2 ** 32 + dv.getUint32(OFF_PACKET + 4),
    seq: dv.getUint32(OFF_SEQ),
  };
  const ack = (flags & SYNC_F_ACK) !== 0 ? dv.getUint32(OFF_ACK) : undefined;
  if (ack !== undefined) {
    header.ack = ack;
    const window = dv.getUint16(OFF_WINDOW);
    if (window !== SYNC_WINDOW_OPEN) header.window = window;
  }
  const at = SYNC_HEADER_LEN;

  switch (type) {
    case 'data': {
      const records: SyncRecord[] = [];
      let off = at;
      while (off < end) {
        if (end - off < SYNC_RECORD_HEADER_LEN) return fail('bad_record');
        const rtype = SYNC_RECORD_TYPES[dv.getUint8(off)];
        const blen = dv.getUint16(off + 2);
        if (rtype === undefined) return fail('bad_record');
        const bodyAt = off + SYNC_RECORD_HEADER_LEN;
        if (bodyAt + blen > end) return fail('bad_record');
        records.push({ type: rtype, body: new Uint8Array(buf.buffer, buf.byteOffset + bodyAt, blen) });
        off = bodyAt + blen;
      }
      if (records.length === 0) return fail('bad_payload');
      return { ok: true, value: { ...header, type, bulk: (flags & SYNC_F_BULK) !== 0, records } };
    }
    case 'ack': {
      if (len < SYNC_ACK_FIXED_LEN) return fail('bad_payload');
      const count = dv.getUint16(at);
      if (count > SYNC_MAX_NACK_RANGES || len !== SYNC_ACK_FIXED_LEN + count * SYNC_NACK_RANGE_LEN) return fail('bad_payload');
      const nacks: SeqRange[] = [];
      for (let i = 0; i < count; i++) {
        const o = at + SYNC_ACK_FIXED_LEN + i * SYNC_NACK_RANGE_LEN;
        const r = { first: dv.getUint32(o), last: dv.getUint32(o + 4) };
        if (rangeProblems(r, ack as number).length > 0) return fail('bad_payload');
        nacks.push(r);
      }
      return { ok: true, value: { ...header, type, ack: ack as number, nacks } };
    }
    case 'hello':
      if (len !== 0) return fail('bad_payload');
      return { ok: true, value: { ...header, type, synced: (flags & SYNC_F_SYNCED) !== 0 } };
    case 'bulk_request': {
      if (len !== SYNC_BULK_REQUEST_LEN) return fail('bad_payload');
      const requestId = dv.getUint32(at);
      if (requestId === 0) return fail('bad_payload');
      return { ok: true, value: { ...header, type, requestId } };
    }
    case 'bulk_end':
      if (len !== SYNC_BULK_END_LEN) return fail('bad_payload');
      return { ok: true, value: { ...header, type, requestId: dv.getUint32(at), count: dv.getUint32(at + 4) } };
    case 'beat': {
      if (len < SYNC_BEAT_FIXED_LEN || ack !== undefined) return fail('bad_payload');
      const intervalMs = dv.getUint16(at);
      const multiplier = dv.getUint8(at + 2);
      const bflags = dv.getUint8(at + 3);
      const count = dv.getUint16(at + 4);
      const lag = dv.getUint16(at + 6);
      if (intervalMs === 0 || multiplier === 0 || (bflags & ~(SYNC_BEAT_F_LEAVING | SYNC_BEAT_F_READY)) !== 0 || count > SYNC_BEAT_MAX_INSTANCES) return fail('bad_payload');
      if (len < SYNC_BEAT_FIXED_LEN + count * SYNC_BEAT_INSTANCE_LEN) return fail('bad_payload');
      const instances: BeatInstance[] = [];
      let src = at + SYNC_BEAT_FIXED_LEN + count * SYNC_BEAT_INSTANCE_LEN;
      for (let i = 0; i < count; i++) {
        const o = at + SYNC_BEAT_FIXED_LEN + i * SYNC_BEAT_INSTANCE_LEN;
        const state = BEAT_STATES[dv.getUint8(o + 1)];
        const vrid = dv.getUint8(o);
        const iflags = dv.getUint8(o + 3);
        if (state === undefined || vrid === 0 || (iflags & ~SYNC_BEAT_I_IPV6) !== 0) return fail('bad_payload');
        const inst: BeatInstance = { vrid, state, priority: dv.getUint8(o + 2) };
        if (iflags & SYNC_BEAT_I_IPV6) {
          if (src + SYNC_BEAT_SOURCE_LEN > at + len) return fail('bad_payload');
          inst.source = formatIPv6(buf, src);
          src += SYNC_BEAT_SOURCE_LEN;
        }
        instances.push(inst);
      }
      if (src !== at + len) return fail('bad_payload');
      const beat: SyncBeatMessage = { ...header, type, intervalMs, multiplier, leaving: (bflags & SYNC_BEAT_F_LEAVING) !== 0, ...((bflags & SYNC_BEAT_F_READY) !== 0 ? { ready: true } : {}), instances };
      const f = readLagField(lag);
      if (f.lagMs > 0) beat.lagMs = f.lagMs;
      if (f.behind) beat.behind = true;
      if (f.writing) beat.writing = true;
      return { ok: true, value: beat };
    }
  }
}

/** The BEAT's lag field as a number (the u16 on the wire; higher bits ignored) read out. */
export function readLagField(v: number): { lagMs: number; behind: boolean; writing: boolean } {
  return { lagMs: v & SYNC_BEAT_LAG_MS_MAX, behind: (v & SYNC_BEAT_LAG_BEHIND) !== 0, writing: (v & SYNC_BEAT_LAG_WRITING) !== 0 };
}

/** The BEAT's lag field of these values (the lag capped at 16383 ms). */
export function lagField(f: { lagMs?: number | undefined; behind?: boolean | undefined; writing?: boolean | undefined }): number {
  return (f.behind ? SYNC_BEAT_LAG_BEHIND : 0) | (f.writing ? SYNC_BEAT_LAG_WRITING : 0) | Math.min(SYNC_BEAT_LAG_MS_MAX, Math.max(0, Math.round(f.lagMs ?? 0)));
}

/** The message minus its bulky parts, for logs. */
export function describeMessage(m: SyncMessage): Record<string, unknown> {
  const base: Record<string, unknown> = { type: m.type, sender: m.sender, receiver: m.receiver, epoch: m.epoch, packet: m.packet, seq: m.seq };
  if (m.ack !== undefined) base.ack = m.ack;
  switch (m.type) {
    case 'data':
      return { ...base, bulk: m.bulk, records: m.records.length };
    case 'ack':
      return { ...base, nacks: m.nacks.map((r) => `${r.first}-${r.last}`) };
    case 'hello':
      return { ...base, synced: m.synced };
    case 'bulk_request':
      return { ...base, requestId: m.requestId };
    case 'bulk_end':
      return { ...base, requestId: m.requestId, count: m.count };
    case 'beat':
      return { ...base, intervalMs: m.intervalMs, multiplier: m.multiplier, leaving: m.leaving, instances: m.instances.length };
  }
}
