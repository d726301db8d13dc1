/**
 * What the sync machines share: the log effect, and the timing defaults of the protocol in
 * one place (ENGINEERING.md, convention 3: timer formulas live in one module).
 */
import type { SyncRecord } from '../../codec/sync/message.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A structured log line; the service sends it to the component's child logger. */
export interface LogEffect {
  type: 'log';
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown>;
}

/**
 * One unit of the reliable stream: a DATA message's records, or the BULK_END marker, which
 * travels in the same ordered stream so that it arrives after every record of its transfer.
 */
export type StreamUnit =
  | { kind: 'records'; bulk: boolean; records: readonly SyncRecord[] }
  | { kind: 'bulk_end'; requestId: number; count: number };

/** The first stream sequence of every session (a session = one pair of epochs). */
export const STREAM_FIRST_SEQ = 0;

/**
 * Timing defaults, tuned for a dedicated LAN link (round trips well under a millisecond).
 * Acks are delayed a little to be batched, and must stay well below the retransmission
 * timeout, or the sender would resend what merely waits for its ack.
 */
export const SYNC_ACK_DELAY_MS = 10; // delayed cumulative ack
export const SYNC_ACK_EVERY = 8; // ...or at once after this many in-order messages
export const SYNC_NACK_HOLDOFF_MS = 20; // at most one NACK per this long; the RTO is the backstop
export const SYNC_RTO_INITIAL_MS = 100; // first retransmission timeout of a message
export const SYNC_RTO_MAX_MS = 3000; // backoff doubles up to this cap
export const SYNC_NACK_RESEND_HOLDOFF_MS = 10; // do not resend on NACK what was (re)sent this recently
export const SYNC_SEND_WINDOW = 64; // messages in flight (unacknowledged) at once
export const SYNC_RECEIVE_WINDOW = 128; // out-of-order messages the receiver buffers; >= send window
export const SYNC_QUEUE_LIMIT = 4096; // messages held per peer (~5.6 MB at 1400 bytes) before resync
export const SYNC_HELLO_INTERVAL_MS = 500; // keepalive
export const SYNC_DEAD_INTERVAL_MS = 3 * SYNC_HELLO_INTERVAL_MS; // no message for this long: peer gone
export const SYNC_REPLAY_WINDOW = 256; // packet numbers remembered for replay detection
export const SYNC_RETIRED_EPOCHS = 32; // old epochs of a peer remembered and refused

