/**
 * Conntrack entries in sync records (the two pure converters, like conntrack-tools'
 * ct2msg / msg2ct): version 1 is a small JSON object of what a peer needs to recreate the
 * entry (tuples with the NAT in the reply tuple, status, timeout, mark, zone, TCP state).
 * The record body is authenticated by the message HMAC before it gets here; it is still
 * checked field by field, and the decoder never throws.
 */
import type { ConntrackEntry, CtTuple } from '../netlink/ctnetlink.js';
import { ipFamily } from '../../lib/ip.js';

export const ENTRY_ENCODING_V1 = 1;

export const ENTRY_DECODE_REASONS = ['empty', 'bad_version', 'bad_json', 'bad_entry'] as const;
export type EntryDecodeReason = (typeof ENTRY_DECODE_REASONS)[number];

const KEEP = ['family', 'orig', 'reply', 'status', 'timeout', 'mark', 'zone', 'tcp'] as const;

export function entryToBody(e: ConntrackEntry): Uint8Array {
  const o: Record<string, unknown> = {};
  for (const k of KEEP) if (e[k] !== undefined) o[k] = e[k];
  return Buffer.concat([Buffer.from([ENTRY_ENCODING_V1]), Buffer.from(JSON.stringify(o))]);
}

const isU = (v: unknown, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

function tupleOk(t: unknown, family: 4 | 6): t is CtTuple {
  if (typeof t !== 'object' || t === null) return false;
  const x = t as Record<string, unknown>;
  if (typeof x.src !== 'string' || typeof x.dst !== 'string' || ipFamily(x.src) !== family || ipFamily(x.dst) !== family) return false;
  if (!isU(x.proto, 255)) return false;
  for (const p of ['srcPort', 'dstPort', 'icmpId'] as const) if (x[p] !== undefined && !isU(x[p], 65535)) return false;
  for (const p of ['icmpType', 'icmpCode'] as const) if (x[p] !== undefined && !isU(x[p], 255)) return false;
  return x.zone === undefined || isU(x.zone, 65535);
}

export function bodyToEntry(body: Uint8Array): { ok: true; value: ConntrackEntry } | { ok: false; reason: EntryDecodeReason } {
  if (body.length < 2) return { ok: false, reason: 'empty' };
  if (body[0] !== ENTRY_ENCODING_V1) return { ok: false, reason: 'bad_version' };
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(body.subarray(1)).toString('utf8'));
  } catch {
    return { ok: false, reason: 'bad_json' };
  }
  if (typeof v !== 'object' || v === null) return { ok: false, reason: 'bad_entry' };
  const e = v as Record<string, unknown>;
  const family = e.family;
  if (family !== 4 && family !== 6) return { ok: false, reason: 'bad_entry' };
  if (!tupleOk(e.orig, family) || !tupleOk(e.reply, family)) return { ok: false, reason: 'bad_entry' };
  for (const k of ['status', 'timeout', 'mark'] as const) if (e[k] !== undefined && !isU(e[k], 0xffffffff)) return { ok: false, reason: 'bad_entry' };
  if (e.zone !== undefined && !isU(e.zone, 65535)) return { ok: false, reason: 'bad_entry' };
  if (e.tcp !== undefined && (typeof e.tcp !== 'object' || e.tcp === null || typeof (e.tcp as { state?: unknown }).state !== 'string')) return { ok: false, reason: 'bad_entry' };
  const out: Record<string, unknown> = {};
  for (const k of KEEP) if (e[k] !== undefined) out[k] = e[k];
  return { ok: true, value: out as unknown as ConntrackEntry };
}
