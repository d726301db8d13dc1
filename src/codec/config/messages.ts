/**
 * The JSON bodies the config link carries inside its signed frames (codec/config/frame.ts):
 * a node's outcome for a push, a confirm or a runtime change, and the small objects of
 * queries. Decoding never throws: a body that is not a JSON object, or an outcome of an
 * unknown kind or with a field of the wrong type, is undefined, and the caller counts the
 * peer as having given no answer.
 */

/** Why a node refused a config (or a runtime change); counted by reason. */
export const CONFIG_REFUSALS = ['bad_frame', 'bad_bundle', 'other_cluster', 'older', 'replayed', 'conflict', 'confirmed', 'invalid', 'apply_failed'] as const;
export type ConfigRefusal = (typeof CONFIG_REFUSALS)[number];

/** One node's answer to a push, a confirm or a runtime change. */
export type NodeOutcome =
  | { outcome: 'applied'; changed: boolean }
  | { outcome: 'confirmed' | 'not_pending' }
  | { outcome: 'refused'; reason: ConfigRefusal; message: string }
  | { outcome: 'unreachable'; message: string };

export const encodeMessage = (o: unknown): Buffer => Buffer.from(JSON.stringify(o), 'utf8');

/** A body as a JSON object, or undefined (not JSON, or not an object). */
export function decodeMessage(b: Buffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(b.toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A body as a node's outcome, or undefined. */
export function decodeOutcome(b: Buffer): NodeOutcome | undefined {
  const m = decodeMessage(b);
  switch (m?.outcome) {
    case 'applied':
      return typeof m.changed === 'boolean' ? { outcome: 'applied', changed: m.changed } : undefined;
    case 'confirmed':
    case 'not_pending':
      return { outcome: m.outcome };
    case 'refused':
      return (CONFIG_REFUSALS as readonly unknown[]).includes(m.reason) && typeof m.message === 'string' ? { outcome: 'refused', reason: m.reason as ConfigRefusal, message: m.message } : undefined;
    case 'unreachable':
      return typeof m.message === 'string' ? { outcome: 'unreachable', message: m.message } : undefined;
    default:
      return undefined;
  }
}
