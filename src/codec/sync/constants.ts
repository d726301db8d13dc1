/**
 * Constants of the fwlb state-sync wire format, version 2. The byte diagram and the meaning
 * of every field are in message.ts; this file only names the numbers.
 */

/** "FWSY": the first four bytes of every sync message. */
export const SYNC_MAGIC = 0x46575359;
/** The wire format this codec speaks. Any change that an old node cannot parse bumps it. */
export const SYNC_VERSION = 2;
/** Versions that came before, named in the log line that refuses a peer speaking one. */
export const SYNC_VERSION_HISTORY: Readonly<Record<number, string>> = {
  1: 'JSON conntrack records (fwlb before state sync v2)',
  2: 'binary conntrack records (codec/sync/entry-v2.ts)',
};

/** Byte offsets of the fixed header. */
export const OFF_MAGIC = 0;
export const OFF_VERSION = 4;
export const OFF_TYPE = 5;
export const OFF_FLAGS = 6;
export const OFF_RESERVED1 = 7;
export const OFF_SENDER = 8;
export const OFF_RECEIVER = 10;
export const OFF_EPOCH = 12;
export const OFF_PACKET = 16;
export const OFF_SEQ = 24;
export const OFF_PEER_EPOCH = 28;
export const OFF_ACK = 32;
export const OFF_PAYLOAD_LEN = 36;
/** Receive window (version 2; reserved in version 1). */
export const OFF_WINDOW = 38;
/** The window field's value for "no limit". */
export const SYNC_WINDOW_OPEN = 0xffff;

/** Bytes in the fixed header; the payload starts here. */
export const SYNC_HEADER_LEN = 40;
/** HMAC-SHA256 truncated to its first 128 bits (as RFC 4868 does for IPsec). */
export const SYNC_HMAC_LEN = 16;
/** Header plus HMAC: the bytes a message costs besides its payload. */
export const SYNC_OVERHEAD = SYNC_HEADER_LEN + SYNC_HMAC_LEN;
/** The payload length is a 16-bit field. */
export const SYNC_MAX_PAYLOAD = 0xffff;
/**
 * Default ceiling for one message, HMAC included: with the IPv4 (20) and UDP (8) headers it
 * stays below a 1500-byte MTU with room for a tunnel or two, so sync never fragments.
 */
export const SYNC_DEFAULT_MAX_MESSAGE = 1400;

/**
 * The packet number is a 64-bit field holding an integer below 2^53 (exact in a JS number).
 * At a million messages a second it would take 285 years to run out: it never wraps.
 */
export const SYNC_MAX_PACKET_NUMBER = Number.MAX_SAFE_INTEGER;

/** Message types (the byte at OFF_TYPE). */
export const SYNC_TYPE_DATA = 1; // a batch of conntrack records; reliable (has a stream sequence)
export const SYNC_TYPE_ACK = 2; // cumulative ack plus NACK ranges for gaps
export const SYNC_TYPE_HELLO = 3; // keepalive: epoch handshake, next stream sequence, synced flag
export const SYNC_TYPE_BULK_REQUEST = 4; // "send me your whole table"
export const SYNC_TYPE_BULK_END = 5; // end of a bulk transfer, with its record count; reliable
export const SYNC_TYPE_BEAT = 6; // liveness: the sender's detection timing and VRRP state, many a second

/** Flag bits (the byte at OFF_FLAGS). */
export const SYNC_F_ACK = 0x01; // the ack field is valid (any type; always set on ACK)
export const SYNC_F_BULK = 0x02; // DATA only: these records belong to a bulk transfer
export const SYNC_F_SYNCED = 0x04; // HELLO only: the sender's own bulk sync is complete

/** Record types inside DATA (the first byte of each record). */
export const SYNC_RECORD_CT_UPDATE = 1; // a conntrack entry was created or changed
export const SYNC_RECORD_CT_DESTROY = 2; // a conntrack entry is gone
/** Record header: type u8, reserved u8, body length u16. */
export const SYNC_RECORD_HEADER_LEN = 4;

/** ACK payload: NACK range count u16, reserved u16, then (first u32, last u32) per range. */
export const SYNC_ACK_FIXED_LEN = 4;
export const SYNC_NACK_RANGE_LEN = 8;
/** At most this many NACK ranges in one ACK (the receiver reports the first ones). */
export const SYNC_MAX_NACK_RANGES = 64;
/** BULK_REQUEST payload: request id u32 (never 0). */
export const SYNC_BULK_REQUEST_LEN = 4;
/** BULK_END payload: request id u32 (0 = a push nobody asked for), record count u32. */
export const SYNC_BULK_END_LEN = 8;
/** BEAT: interval ms u16, multiplier u8, flags u8, instance count u16, reserved u16; then 4 bytes per instance. */
export const SYNC_BEAT_FIXED_LEN = 8;
export const SYNC_BEAT_INSTANCE_LEN = 4;
export const SYNC_BEAT_MAX_INSTANCES = 255;
export const SYNC_BEAT_F_LEAVING = 0x01; // the sender is stopping: its priority-0 adverts are genuine
export const SYNC_BEAT_F_READY = 0x02; // the sender holds the cluster's state (its bulk sync is done): it may carry a share
/** A BEAT instance's flags (its fourth byte): an IPv6 instance, whose advert source (16 bytes, :: while it has none) follows the instance records, in their order. */
export const SYNC_BEAT_I_IPV6 = 0x01;
/**
 * The BEAT's lag field (once reserved, so a node from before it reads it as nothing and sends
 * 0): BEHIND, the sender's own table lags a peer's by more than its bound; WRITING, records it
 * received wait for its kernel; the rest, the receiver's lag behind the sender in ms (its
 * oldest change not yet acknowledged), capped at LAG_MS_MAX.
 */
export const SYNC_BEAT_LAG_BEHIND = 0x8000;
export const SYNC_BEAT_LAG_WRITING = 0x4000;
export const SYNC_BEAT_LAG_MS_MAX = 0x3fff;
export const SYNC_BEAT_SOURCE_LEN = 16;

/** HKDF "info" that derives the sync key from the cluster key (key separation). */
export const SYNC_KEY_INFO = 'fwlb state sync v1';
/** Bytes of the derived sync key. */
export const SYNC_KEY_LEN = 32;
/** A cluster key shorter than this is refused by `syncKeyProblem` (128 bits). */
export const SYNC_MIN_CLUSTER_KEY_LEN = 16;
