/** Errors with a stable code and an optional cause (ENGINEERING.md, convention 5). */
export class FwlbError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'FwlbError';
  }
}

/** A command run by an adapter failed; carries the exit status and stderr. */
export class CommandError extends FwlbError {
  readonly status: number | null;
  readonly stderr: string;
  constructor(cmd: string, status: number | null, stderr: string) {
    super('ERR_COMMAND', `${cmd}: exit ${status ?? 'signal'}: ${stderr.trim()}`);
    this.status = status;
    this.stderr = stderr;
    this.name = 'CommandError';
  }
}

/**
 * A short, stable description of a Node system error: "connect ECONNREFUSED",
 * "read ECONNRESET", "spawn /opt/check ENOENT"; the message for anything else.
 */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const { code, syscall } = e as NodeJS.ErrnoException;
    if (code && syscall) return `${syscall} ${code}`;
    if (code && !e.message.includes(code)) return `${e.message} (${code})`;
    return e.message;
  }
  return String(e);
}
