/**
 * The sync codec: round trips, byte fixtures, every truncation, every flipped bit, wrong keys,
 * authentic but malformed messages (re-signed in the test), batching, and fuzzing: no bytes
 * ever make `decode` throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { formatIPv6, parseIPv6 } from '../../lib/ip-bytes.js';
import {
  OFF_FLAGS,
  OFF_MAGIC,
  OFF_PAYLOAD_LEN,
  OFF_TYPE,
  OFF_VERSION,
  SYNC_DEFAULT_MAX_MESSAGE,
  SYNC_HEADER_LEN,
  SYNC_HMAC_LEN,
  SYNC_MAX_NACK_RANGES,
  SYNC_MAX_PACKET_NUMBER,
  SYNC_OVERHEAD,
} from './constants.js';
import {
  batch,
  BEAT_STATES,
  peekVersion,
  dataMessageSize,
  decode,
  deriveSyncKey,
  describeMessage,
  encode,
  encodedLength,
  maxRecordBody,
  messageProblems,
  recordFits,
  SYNC_DECODE_REASONS,
  syncKeyProblem,
  type SyncMessage,
  type SyncRecord,
} from './message.js';

// ---------------------------------------------------------------------------------------
// Fixture builders
// ---------------------------------------------------------------------------------------

const CLUSTER_KEY = Buffer.from('an example cluster key, 32 bytes', 'utf8');
const KEY = deriveSyncKey(CLUSTER_KEY);
const OTHER_KEY = deriveSyncKey(Buffer.from('another cluster key, also 32 b..', 'utf8'));

const HDR = { sender: 0, receiver: 1, epoch: 0x11223344, peerEpoch: 0x55667788, packet: 7, seq: 42 };
const rec = (type: SyncRecord['type'], ...bytes: number[]): SyncRecord => ({ type, body: Uint8Array.from(bytes) });

/** One message of every type and shape the protocol uses. */
const SAMPLES: Record<string, SyncMessage> = {
  data: { ...HDR, type: 'data', bulk: false, records: [rec('ct_update', 1, 2, 3), rec('ct_destroy', 9)] },
  data_bulk_acked: { ...HDR, ack: 17, type: 'data', bulk: true, records: [rec('ct_update', ...new Array(200).fill(0xab))] },
  data_empty_body: { ...HDR, type: 'data', bulk: false, records: [rec('ct_destroy')] },
  ack: { ...HDR, type: 'ack', ack: 100, nacks: [] },
  ack_nacks: { ...HDR, type: 'ack', ack: 100, nacks: [{ first: 101, last: 103 }, { first: 110, last: 110 }] },
  ack_wrapping: { ...HDR, type: 'ack', ack: 0xfffffffe, nacks: [{ first: 0xffffffff, last: 2 }] },
  hello: { ...HDR, type: 'hello', synced: false },
  hello_synced_acked: { ...HDR, peerEpoch: 0, ack: 5, type: 'hello', synced: true },
  bulk_request: { ...HDR, type: 'bulk_request', requestId: 3 },
  bulk_end: { ...HDR, type: 'bulk_end', requestId: 3, count: 100000 },
  bulk_end_push: { ...HDR, type: 'bulk_end', requestId: 0, count: 0 },
  beat: { ...HDR, type: 'beat', intervalMs: 20, multiplier: 4, leaving: false, instances: [{ vrid: 51, state: 'master', priority: 200 }, { vrid: 52, state: 'backup', priority: 100 }] },
  beat_leaving_empty: { ...HDR, type: 'beat', intervalMs: 0xffff, multiplier: 255, leaving: true, instances: [] },
  beat_ready: { ...HDR, type: 'beat', intervalMs: 15, multiplier: 5, leaving: false, ready: true, instances: [] },
  big_numbers: { ...HDR, sender: 0xffff, receiver: 0xfffe, epoch: 0xffffffff, peerEpoch: 0xffffffff, packet: SYNC_MAX_PACKET_NUMBER, seq: 0xffffffff, type: 'hello', synced: true },
};

/** The test's own HMAC (not the codec's), to re-sign hand-made bytes. */
function sign(unsigned: Buffer, key: Uint8Array = KEY): Buffer {
  const m = createHmac('sha256', key).update(unsigned).digest().subarray(0, SYNC_HMAC_LEN);
  return Buffer.concat([unsigned, m]);
}
/** A valid message's bytes, changed by `edit` (on the unsigned part) and signed again. */
function resigned(m: SyncMessage, edit: (b: Buffer) => Buffer | void): Buffer {
  const enc = encode(m, KEY);
  let body: Buffer = Buffer.from(enc.subarray(0, enc.length - SYNC_HMAC_LEN));
  body = edit(body) ?? body;
  return sign(body);
}
/** Rewrites the payload (and its length field) of a valid message, then signs again. */
function withPayload(m: SyncMessage, payload: Buffer): Buffer {
  return resigned(m, (b) => {
    const out = Buffer.concat([b.subarray(0, SYNC_HEADER_LEN), payload]);
    out.writeUInt16BE(payload.length, OFF_PAYLOAD_LEN);
    return out;
  });
}
const reasonOf = (buf: Uint8Array, key: Uint8Array = KEY) => {
  const r = decode(buf, key);
  return r.ok ? 'ok' : r.reason;
};

// ---------------------------------------------------------------------------------------
// Round trips and fixtures
// ---------------------------------------------------------------------------------------

test('every sample round-trips and has the length encodedLength says', () => {
  for (const [name, m] of Object.entries(SAMPLES)) {
    const buf = encode(m, KEY);
    assert.equal(buf.length, encodedLength(m), name);
    const r = decode(buf, KEY);
    assert.ok(r.ok, `${name}: ${r.ok ? '' : r.reason}`);
    assert.deepEqual(r.value, m, name);
  }
});

test('fixture: a DATA message, byte for byte', () => {
  const m: SyncMessage = { sender: 1, receiver: 2, epoch: 0xdeadbeef, peerEpoch: 0x01020304, packet: 2 ** 32 + 5, seq: 9, ack: 4, type: 'data', bulk: true, records: [rec('ct_update', 0xaa, 0xbb), rec('ct_destroy')] };
  const unsigned = Buffer.from(
    [
      '46575359', // "FWSY"
      '02 01 03 00', // version 2, DATA, flags ACK|BULK, reserved
      '0001 0002', // sender 1, receiver 2
      'deadbeef', // epoch
      '00000001 00000005', // packet number 2^32 + 5
      '00000009', // stream sequence 9
      '01020304', // peer epoch
      '00000004', // cumulative ack 4
      '000a ffff', // payload length 10, receive window: no limit
      '01 00 0002 aabb', // CT_UPDATE, 2 bytes
      '02 00 0000', // CT_DESTROY, empty body
    ]
      .join('')
      .replace(/ /g, ''),
    'hex',
  );
  const buf = encode(m, KEY);
  assert.equal(buf.subarray(0, unsigned.length).toString('hex'), unsigned.toString('hex'));
  assert.equal(buf.toString('hex'), sign(unsigned).toString('hex'));
  assert.deepEqual(decode(sign(unsigned), KEY), { ok: true, value: m });
});

test('fixture: an ACK with NACK ranges and a HELLO, byte for byte', () => {
  const ack: SyncMessage = { sender: 2, receiver: 1, epoch: 7, peerEpoch: 8, packet: 1, seq: 0, type: 'ack', ack: 10, window: 5, nacks: [{ first: 11, last: 12 }] };
  const ackHex = '46575359' + '02020100' + '00020001' + '00000007' + '0000000000000001' + '00000000' + '00000008' + '0000000a' + '000c0005' + '00010000' + '0000000b0000000c';
  assert.equal(encode(ack, KEY).toString('hex'), sign(Buffer.from(ackHex, 'hex')).toString('hex'));
  assert.deepEqual(decode(encode(ack, KEY), KEY), { ok: true, value: ack }, 'the receive window round-trips');
  const hello: SyncMessage = { sender: 0, receiver: 1, epoch: 1, peerEpoch: 0, packet: 0, seq: 3, type: 'hello', synced: true };
  const helloHex = '46575359' + '02030400' + '00000001' + '00000001' + '0000000000000000' + '00000003' + '00000000' + '00000000' + '0000ffff';
  assert.equal(encode(hello, KEY).toString('hex'), sign(Buffer.from(helloHex, 'hex')).toString('hex'));
});

test('fixture: a BEAT, byte for byte; malformed BEAT payloads are refused', () => {
  const beat: SyncMessage = { sender: 1, receiver: 0, epoch: 5, peerEpoch: 6, packet: 3, seq: 0, type: 'beat', intervalMs: 20, multiplier: 4, leaving: true, instances: [{ vrid: 51, state: 'master', priority: 200 }] };
  const hex = '46575359' + '02060000' + '00010000' + '00000005' + '0000000000000003' + '00000000' + '00000006' + '00000000' + '000cffff' + '0014' + '04' + '01' + '0001' + '0000' + '33' + '02' + 'c8' + '00';
  assert.equal(encode(beat, KEY).toString('hex'), sign(Buffer.from(hex, 'hex')).toString('hex'));
  assert.deepEqual(decode(encode(beat, KEY), KEY), { ok: true, value: beat });
  const p = (h: string) => reasonOf(withPayload(beat, Buffer.from(h, 'hex')));
  assert.equal(p('0014040100000000'), 'ok', 'no instances');
  assert.equal(p('0000040000000000'), 'bad_payload', 'interval 0');
  assert.equal(p('0014000000000000'), 'bad_payload', 'multiplier 0');
  assert.equal(p('0014040200000000'), 'ok', 'READY');
  assert.equal(p('0014040300000000'), 'ok', 'LEAVING and READY');
  assert.equal(p('0014040400000000'), 'bad_payload', 'unknown flag');
  assert.equal(p('001404000001000033020000'.slice(0, 16)), 'bad_payload', 'count 1, no instance');
  assert.equal(p('00140400000100003304c800'), 'bad_payload', 'state 4');
  assert.equal(p('00140400000100000002c800'), 'bad_payload', 'VRID 0');
  assert.equal(p('00140400'), 'bad_payload', 'short');
  assert.throws(() => encode({ ...beat, multiplier: 0 } as SyncMessage, KEY), /multiplier/);
  assert.throws(() => encode({ ...beat, instances: [{ vrid: 51, state: 'gone' as never, priority: 1 }] } as SyncMessage, KEY), /state/);
});

test('fixture: the BEAT\'s lag field (reserved, 0, before issue 25): BEHIND, WRITING and the receiver\'s lag; an old BEAT reads as none', () => {
  const beat: SyncMessage = { sender: 1, receiver: 0, epoch: 5, peerEpoch: 6, packet: 3, seq: 0, type: 'beat', intervalMs: 20, multiplier: 4, leaving: false, instances: [], lagMs: 300, behind: true, writing: true };
  const hex = '46575359' + '02060000' + '00010000' + '00000005' + '0000000000000003' + '00000000' + '00000006' + '00000000' + '0008ffff' + '0014' + '04' + '00' + '0000' + 'c12c';
  assert.equal(encode(beat, KEY).toString('hex'), sign(Buffer.from(hex, 'hex')).toString('hex'));
  assert.deepEqual(decode(encode(beat, KEY), KEY), { ok: true, value: beat });
  const field = (h: string) => {
    const r = decode(withPayload(beat, Buffer.from(h, 'hex')), KEY);
    assert.ok(r.ok && r.value.type === 'beat');
    return { lagMs: r.value.lagMs, behind: r.value.behind, writing: r.value.writing };
  };
  assert.deepEqual(field('0014040000000000'), { lagMs: undefined, behind: undefined, writing: undefined }, 'a BEAT from before the field');
  assert.deepEqual(field('001404000000' + '3fff'), { lagMs: 16383, behind: undefined, writing: undefined });
  assert.deepEqual(field('001404000000' + '8000'), { lagMs: undefined, behind: true, writing: undefined });
  // A lag past the field's range is sent as its largest value, never wrapped into the flags.
  const big = decode(encode({ ...beat, lagMs: 1e9, behind: false, writing: false } as SyncMessage, KEY), KEY);
  assert.ok(big.ok && big.value.type === 'beat');
  assert.deepEqual([big.value.lagMs, big.value.behind, big.value.writing], [16383, undefined, undefined]);
});

test('fixture: a BEAT with an IPv6 instance carries its advert source after the instance records; malformed ones are refused', () => {
  const beat: SyncMessage = { sender: 1, receiver: 0, epoch: 5, peerEpoch: 6, packet: 3, seq: 0, type: 'beat', intervalMs: 20, multiplier: 4, leaving: false, instances: [{ vrid: 51, state: 'master', priority: 200 }, { vrid: 51, state: 'master', priority: 200, source: 'fe80::a' }] };
  const ll = 'fe80' + '0'.repeat(24) + '000a';
  const hex = '46575359' + '02060000' + '00010000' + '00000005' + '0000000000000003' + '00000000' + '00000006' + '00000000' + '0020ffff' + '0014' + '04' + '00' + '0002' + '0000' + '3302c800' + '3302c801' + ll;
  assert.equal(encode(beat, KEY).toString('hex'), sign(Buffer.from(hex, 'hex')).toString('hex'));
  assert.deepEqual(decode(encode(beat, KEY), KEY), { ok: true, value: beat });
  const p = (h: string) => reasonOf(withPayload(beat, Buffer.from(h, 'hex')));
  assert.equal(p('00140400' + '00010000' + '3302c801' + ll), 'ok');
  assert.equal(p('00140400' + '00010000' + '3302c801' + '0'.repeat(32)), 'ok', ':: (no link-local address yet)');
  assert.equal(p('00140400' + '00010000' + '3302c801' + ll.slice(0, 30)), 'bad_payload', 'source cut short');
  assert.equal(p('00140400' + '00010000' + '3302c800' + ll), 'bad_payload', 'a source for no IPv6 instance');
  assert.equal(p('00140400' + '00010000' + '3302c802'), 'bad_payload', 'unknown instance flag');
  assert.throws(() => encode({ ...beat, instances: [{ vrid: 51, state: 'master', priority: 1, source: 'nope' }] } as SyncMessage, KEY), /source/);
});

test('the sync key is derived from the cluster key, 32 bytes, deterministic, not the key itself', () => {
  assert.equal(KEY.length, 32);
  assert.deepEqual(deriveSyncKey(CLUSTER_KEY), KEY);
  assert.notDeepEqual(KEY.subarray(0, CLUSTER_KEY.length), CLUSTER_KEY);
  assert.equal(syncKeyProblem(CLUSTER_KEY), undefined);
  assert.match(syncKeyProblem(Buffer.from('short')) ?? '', /at least 16/);
});

// ---------------------------------------------------------------------------------------
// Damage: truncation, bit flips, keys
// ---------------------------------------------------------------------------------------

test('every truncation and one extra byte are refused, never thrown', () => {
  for (const [name, m] of Object.entries(SAMPLES)) {
    const buf = encode(m, KEY);
    for (let n = 0; n < buf.length; n++) {
      const reason = reasonOf(buf.subarray(0, n));
      assert.equal(reason, n < SYNC_OVERHEAD ? 'too_short' : 'bad_length', `${name} cut to ${n}`);
    }
    assert.equal(reasonOf(Buffer.concat([buf, Buffer.from([0])])), 'bad_length', name);
  }
});

test('one flipped bit anywhere fails; past the framing it is always the HMAC', () => {
  for (const [name, m] of Object.entries(SAMPLES)) {
    const buf = encode(m, KEY);
    for (let i = 0; i < buf.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(buf);
        bad[i] = (bad[i] as number) ^ (1 << bit);
        const reason = reasonOf(bad);
        const expected =
          i < OFF_MAGIC + 4 ? 'bad_magic' : i === OFF_VERSION ? 'bad_version' : i === OFF_PAYLOAD_LEN || i === OFF_PAYLOAD_LEN + 1 ? 'bad_length' : 'bad_hmac';
        assert.equal(reason, expected, `${name}: byte ${i} bit ${bit}`);
      }
    }
  }
});

test('a wrong key fails the HMAC; so does a message signed with the raw cluster key', () => {
  for (const m of Object.values(SAMPLES)) {
    assert.equal(reasonOf(encode(m, KEY), OTHER_KEY), 'bad_hmac');
    assert.equal(reasonOf(encode(m, CLUSTER_KEY), KEY), 'bad_hmac');
  }
});

test('framing is checked before the HMAC: magic, version', () => {
  const buf = encode(SAMPLES.hello as SyncMessage, KEY);
  assert.equal(peekVersion(buf), 2);
  const v1 = Buffer.from(buf);
  v1[OFF_VERSION] = 1; // a node of the JSON-record format
  assert.equal(reasonOf(v1), 'bad_version');
  assert.equal(reasonOf(sign(Buffer.from(v1.subarray(0, v1.length - SYNC_HMAC_LEN)))), 'bad_version');
  assert.equal(peekVersion(v1), 1);
  assert.equal(peekVersion(Buffer.alloc(100)), undefined);
  assert.equal(reasonOf(Buffer.alloc(100)), 'bad_magic');
  assert.equal(reasonOf(new Uint8Array(0)), 'too_short');
});

// ---------------------------------------------------------------------------------------
// Authentic but malformed (signed with the right key by the test)
// ---------------------------------------------------------------------------------------

test('authentic but malformed headers: epoch 0, packet number of 2^53, unknown type, stray flags', () => {
  const hello = SAMPLES.hello as SyncMessage;
  assert.equal(reasonOf(resigned(hello, (b) => void b.writeUInt32BE(0, 12))), 'bad_header');
  assert.equal(reasonOf(resigned(hello, (b) => void b.writeUInt32BE(0x00200000, 16))), 'bad_header');
  assert.equal(reasonOf(resigned(hello, (b) => void b.writeUInt32BE(0x001fffff, 16))), 'ok');
  for (const t of [0, 7, 255]) assert.equal(reasonOf(resigned(hello, (b) => void (b[OFF_TYPE] = t))), 'bad_type', `type ${t}`);
  // BULK on a HELLO, SYNCED on DATA, an undefined bit, and an ACK without the ACK flag.
  assert.equal(reasonOf(resigned(hello, (b) => void (b[OFF_FLAGS] = 0x02))), 'bad_flags');
  assert.equal(reasonOf(resigned(SAMPLES.data as SyncMessage, (b) => void (b[OFF_FLAGS] = 0x04))), 'bad_flags');
  assert.equal(reasonOf(resigned(hello, (b) => void (b[OFF_FLAGS] = 0x80))), 'bad_flags');
  assert.equal(reasonOf(resigned(SAMPLES.ack as SyncMessage, (b) => void (b[OFF_FLAGS] = 0))), 'bad_flags');
});

test('authentic but malformed DATA records', () => {
  const data = SAMPLES.data as SyncMessage;
  const cases: Array<[string, number[], string]> = [
    ['no records', [], 'bad_payload'],
    ['3 bytes of a record header', [1, 0, 0], 'bad_record'],
    ['body overruns the payload', [1, 0, 0, 5, 1, 2, 3], 'bad_record'],
    ['unknown record type 0', [0, 0, 0, 0], 'bad_record'],
    ['unknown record type 3', [3, 0, 0, 1, 9], 'bad_record'],
    ['good record then garbage', [1, 0, 0, 1, 9, 2], 'bad_record'],
    ['two good records', [1, 0, 0, 1, 9, 2, 0, 0, 0], 'ok'],
  ];
  for (const [what, bytes, want] of cases) assert.equal(reasonOf(withPayload(data, Buffer.from(bytes))), want, what);
});

test('authentic but malformed control payloads', () => {
  const ack = SAMPLES.ack as SyncMessage;
  const u32s = (...n: number[]) => Buffer.concat(n.map((x) => Buffer.from([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255])));
  const cases: Array<[string, SyncMessage, Buffer, string]> = [
    ['ACK without its count', ack, Buffer.from([0, 0]), 'bad_payload'],
    ['ACK count says 2, one range present', ack, Buffer.concat([Buffer.from([0, 2, 0, 0]), u32s(101, 102)]), 'bad_payload'],
    ['ACK with too many ranges', ack, Buffer.concat([Buffer.from([0, SYNC_MAX_NACK_RANGES + 1, 0, 0]), Buffer.alloc(8 * (SYNC_MAX_NACK_RANGES + 1))]), 'bad_payload'],
    ['NACK range backwards', ack, Buffer.concat([Buffer.from([0, 1, 0, 0]), u32s(105, 101)]), 'bad_payload'],
    ['NACK range before the ack', ack, Buffer.concat([Buffer.from([0, 1, 0, 0]), u32s(99, 101)]), 'bad_payload'],
    ['NACK range fine', ack, Buffer.concat([Buffer.from([0, 1, 0, 0]), u32s(100, 101)]), 'ok'],
    ['HELLO with a payload', SAMPLES.hello as SyncMessage, Buffer.from([0]), 'bad_payload'],
    ['BULK_REQUEST id 0', SAMPLES.bulk_request as SyncMessage, u32s(0), 'bad_payload'],
    ['BULK_REQUEST too long', SAMPLES.bulk_request as SyncMessage, u32s(1, 2), 'bad_payload'],
    ['BULK_END too short', SAMPLES.bulk_end as SyncMessage, u32s(1), 'bad_payload'],
  ];
  for (const [what, m, payload, want] of cases) assert.equal(reasonOf(withPayload(m, payload)), want, what);
});

test('a datagram inside a larger buffer (a pooled receive buffer) decodes from its own offset', () => {
  const enc = encode(SAMPLES.data_bulk_acked as SyncMessage, KEY);
  const pool = Buffer.alloc(enc.length + 20, 0xee);
  enc.copy(pool, 7);
  assert.deepEqual(decode(pool.subarray(7, 7 + enc.length), KEY), { ok: true, value: SAMPLES.data_bulk_acked });
});

test('decode copies nothing: record bodies are views of the datagram (the caller copies a buffer it reuses)', () => {
  const buf = encode(SAMPLES.data as SyncMessage, KEY);
  const r = decode(buf, KEY);
  assert.ok(r.ok && r.value.type === 'data');
  const body = r.value.records[0]!.body;
  assert.equal(body.buffer, buf.buffer, 'the same memory');
  assert.deepEqual(Array.from(body), [1, 2, 3]);
  buf.fill(0);
  assert.deepEqual(Array.from(body), [0, 0, 0], 'so a reused buffer would change them: services/state-sync.ts copies the datagram first');
});

// ---------------------------------------------------------------------------------------
// Encoding our own values
// ---------------------------------------------------------------------------------------

test('encode refuses values it cannot represent, with ERR_SYNC_ENCODE', () => {
  const bad: Array<[string, SyncMessage]> = [
    ['epoch 0', { ...(SAMPLES.hello as SyncMessage), epoch: 0 }],
    ['sender too big', { ...(SAMPLES.hello as SyncMessage), sender: 70000 }],
    ['packet too big', { ...(SAMPLES.hello as SyncMessage), packet: 2 ** 53 }],
    ['fractional seq', { ...(SAMPLES.hello as SyncMessage), seq: 1.5 }],
    ['negative ack', { ...(SAMPLES.hello as SyncMessage), ack: -1 }],
    ['empty DATA', { ...HDR, type: 'data', bulk: false, records: [] }],
    ['unknown record type', { ...HDR, type: 'data', bulk: false, records: [{ type: 'ct_new' as never, body: new Uint8Array(1) }] }],
    ['ACK without ack', { ...HDR, type: 'ack', nacks: [] } as unknown as SyncMessage],
    ['NACK before ack', { ...HDR, type: 'ack', ack: 10, nacks: [{ first: 5, last: 6 }] }],
    ['request id 0', { ...HDR, type: 'bulk_request', requestId: 0 }],
    ['payload too big', { ...HDR, type: 'data', bulk: false, records: [rec('ct_update'), { type: 'ct_update', body: new Uint8Array(65535) }] }],
    ['unknown type', { ...HDR, type: 'gossip' } as unknown as SyncMessage],
  ];
  for (const [what, m] of bad) {
    assert.ok(messageProblems(m).length > 0, what);
    assert.throws(() => encode(m, KEY), (e: { code?: string }) => e.code === 'ERR_SYNC_ENCODE', what);
  }
});

test('describeMessage keeps logs short', () => {
  assert.deepEqual(describeMessage(SAMPLES.ack_nacks as SyncMessage).nacks, ['101-103', '110-110']);
  assert.equal(describeMessage(SAMPLES.data_bulk_acked as SyncMessage).records, 1);
});

// ---------------------------------------------------------------------------------------
// Batching
// ---------------------------------------------------------------------------------------

test('batch splits records in order into messages of at most maxBytes', () => {
  const records = Array.from({ length: 100 }, (_, i) => rec(i % 3 ? 'ct_update' : 'ct_destroy', ...new Array(i % 57).fill(i)));
  for (const max of [SYNC_OVERHEAD + 4 + 56, 200, 512, SYNC_DEFAULT_MAX_MESSAGE, 9000]) {
    const groups = batch(records, max);
    assert.deepEqual(groups.flat(), records, `order kept at ${max}`);
    for (const g of groups) {
      assert.ok(g.length > 0);
      assert.ok(dataMessageSize(g) <= max, `group of ${dataMessageSize(g)} > ${max}`);
      assert.equal(encode({ ...HDR, type: 'data', bulk: false, records: g }, KEY).length, dataMessageSize(g));
    }
    // Greedy: each group but the last could not take the next group's first record.
    for (let i = 0; i + 1 < groups.length; i++) {
      const next = (groups[i + 1] as SyncRecord[])[0] as SyncRecord;
      assert.ok(dataMessageSize([...(groups[i] as SyncRecord[]), next]) > max);
    }
  }
  assert.deepEqual(batch([]), []);
});

test('batch refuses a record that cannot fit alone', () => {
  const max = 300;
  const fits = { type: 'ct_update' as const, body: new Uint8Array(maxRecordBody(max)) };
  const tooBig = { type: 'ct_update' as const, body: new Uint8Array(maxRecordBody(max) + 1) };
  assert.ok(recordFits(fits, max) && !recordFits(tooBig, max));
  assert.equal(dataMessageSize([fits]), max);
  assert.deepEqual(batch([fits, fits], max), [[fits], [fits]]);
  assert.throws(() => batch([fits, tooBig], max), (e: { code?: string }) => e.code === 'ERR_SYNC_RECORD_TOO_LARGE');
});

// ---------------------------------------------------------------------------------------
// Fuzzing
// ---------------------------------------------------------------------------------------

const u32 = fc.nat({ max: 0xffffffff });
const arbRecord: fc.Arbitrary<SyncRecord> = fc.record({
  type: fc.constantFrom('ct_update' as const, 'ct_destroy' as const),
  body: fc.uint8Array({ maxLength: 80 }),
}, { noNullPrototype: true });
const arbHeader = fc.record({
  sender: fc.nat({ max: 0xffff }),
  receiver: fc.nat({ max: 0xffff }),
  epoch: fc.integer({ min: 1, max: 0xffffffff }),
  peerEpoch: u32,
  packet: fc.maxSafeNat(),
  seq: u32,
}, { noNullPrototype: true });
const arbAck = fc.option(u32, { nil: undefined });
const arbMessage: fc.Arbitrary<SyncMessage> = fc.oneof(
  fc.tuple(arbHeader, arbAck, fc.boolean(), fc.array(arbRecord, { minLength: 1, maxLength: 8 })).map(
    ([h, ack, bulk, records]): SyncMessage => ({ ...h, ...(ack === undefined ? {} : { ack }), type: 'data', bulk, records }),
  ),
  fc.tuple(arbHeader, u32, fc.array(fc.tuple(fc.nat({ max: 1000 }), fc.nat({ max: 50 })), { maxLength: 10 })).map(
    ([h, ack, rs]): SyncMessage => ({ ...h, ack, type: 'ack', nacks: rs.map(([o, l]) => ({ first: (ack + o) >>> 0, last: (ack + o + l) >>> 0 })) }),
  ),
  fc.tuple(arbHeader, arbAck, fc.boolean()).map(([h, ack, synced]): SyncMessage => ({ ...h, ...(ack === undefined ? {} : { ack }), type: 'hello', synced })),
  fc.tuple(arbHeader, fc.integer({ min: 1, max: 0xffffffff })).map(([h, requestId]): SyncMessage => ({ ...h, type: 'bulk_request', requestId })),
  fc.tuple(arbHeader, u32, u32).map(([h, requestId, count]): SyncMessage => ({ ...h, type: 'bulk_end', requestId, count })),
  fc
    .tuple(
      arbHeader,
      fc.integer({ min: 1, max: 0xffff }),
      fc.integer({ min: 1, max: 255 }),
      fc.boolean(),
      fc.array(
        fc.record({ vrid: fc.integer({ min: 1, max: 255 }), state: fc.constantFrom(...BEAT_STATES), priority: fc.integer({ min: 0, max: 255 }), source: fc.ipV6().map((a) => formatIPv6(parseIPv6(a)!)) }, { noNullPrototype: true, requiredKeys: ['vrid', 'state', 'priority'] }),
        { maxLength: 8 },
      ),
      fc.record({ lagMs: fc.integer({ min: 1, max: 16383 }), behind: fc.constant(true), writing: fc.constant(true) }, { requiredKeys: [] }),
    )
    .map(([h, intervalMs, multiplier, leaving, instances, lag]): SyncMessage => ({ ...h, type: 'beat', intervalMs, multiplier, leaving, instances, ...lag })),
);

test('property: every valid message round-trips', () => {
  fc.assert(
    fc.property(arbMessage, (m) => {
      const r = decode(encode(m, KEY), KEY);
      assert.ok(r.ok);
      assert.deepEqual(r.value, m);
    }),
    { numRuns: 500 },
  );
});

test('property: random bytes never throw and never pass', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const r = decode(bytes, KEY);
      assert.equal(r.ok, false);
      assert.ok(SYNC_DECODE_REASONS.includes((r as { reason: (typeof SYNC_DECODE_REASONS)[number] }).reason));
    }),
    { numRuns: 2000 },
  );
});

test('property: random bytes behind a valid magic and version never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat({ max: 200 }), (tail, declared) => {
      const head = Buffer.from('4657535901', 'hex');
      const bytes = Buffer.concat([head, Buffer.from(tail)]);
      if (bytes.length >= OFF_PAYLOAD_LEN + 2) bytes.writeUInt16BE(Math.min(declared, 0xffff), OFF_PAYLOAD_LEN);
      const r = decode(bytes, KEY);
      assert.equal(r.ok, false);
    }),
    { numRuns: 2000 },
  );
});

test('property: mutations of valid messages (flips, cuts, splices) never throw; changed bytes never pass', () => {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  );
  fc.assert(
    fc.property(arbMessage, fc.array(mutation, { minLength: 1, maxLength: 4 }), (m, muts) => {
      const orig = encode(m, KEY);
      let b = Buffer.from(orig);
      for (const mu of muts) {
        const at = b.length === 0 ? 0 : mu.at % b.length;
        if (mu.kind === 'flip' && b.length > 0) b[at] = (b[at] as number) ^ (1 << mu.bit);
        else if (mu.kind === 'cut') b = b.subarray(0, at);
        else if (mu.kind === 'splice') b = Buffer.concat([b.subarray(0, at), Buffer.from(mu.bytes), b.subarray(at)]);
        else if (mu.kind === 'overwrite') b = Buffer.concat([b.subarray(0, at), Buffer.from(mu.bytes), b.subarray(at + mu.bytes.length)]);
      }
      const r = decode(b, KEY);
      if (!b.equals(orig)) assert.equal(r.ok, false);
      else assert.deepEqual(r, { ok: true, value: m });
    }),
    { numRuns: 1000 },
  );
});
