/**
 * The control socket protocol: one JSON object per line each way.
 * Request {id, cmd, args?}; response {id, ok: true, result} or {id, ok: false, error: {code, message}}.
 */
export interface ControlRequest {
  id: number;
  cmd: string;
  args?: Record<string, unknown>;
}

export type ControlResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Decodes one request line; never throws on what a client sends. */
export function decodeRequest(line: string): Decoded<ControlRequest> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, reason: 'not an object' };
  const o = v as Record<string, unknown>;
  if (typeof o.id !== 'number' || !Number.isSafeInteger(o.id)) return { ok: false, reason: 'id must be an integer' };
  // Any name-like string (the server answers ERR_UNKNOWN_COMMAND to names it does not have,
  // prototype names such as __proto__ or toString included).
  if (typeof o.cmd !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(o.cmd)) return { ok: false, reason: 'cmd must be a command name' };
  if (o.args !== undefined && (typeof o.args !== 'object' || o.args === null || Array.isArray(o.args))) return { ok: false, reason: 'args must be an object' };
  return { ok: true, value: { id: o.id, cmd: o.cmd, ...(o.args ? { args: o.args as Record<string, unknown> } : {}) } };
}
