/**
 * BIRD's control socket, the replies (issue 26: fwlb drives BIRD 2 over /run/bird/bird.ctl,
 * as birdc does). Pure: text in, replies out; garbage is an error naming the line, never a
 * throw. The format (BIRD 2.0.12, nest/cli.c and client/client.c; docs/bgp-research.md 2):
 *  - a reply is one or more lines; `DDDD-text` says more lines follow, `DDDD text` is the
 *    last one (its code is the reply's);
 *  - a line that begins with a space continues under the code of the line before it;
 *  - a line that begins with `+` is an asynchronous message (a log echo), part of no reply;
 *  - on connect BIRD greets with `0001 BIRD <version> ready.`, a reply of its own.
 * Codes: 0xxx done, 1xxx a table's rows, 2xxx a table's heading, 8xxx a run-time error,
 * 9xxx a parse error (doc/reply_codes).
 */

export interface BirdLine {
  code: number;
  text: string;
}

export interface BirdReply {
  /** The last line's code: the reply's verdict (0xxx done, 8xxx/9xxx an error). */
  code: number;
  lines: BirdLine[];
}

export type BirdEvent =
  | { kind: 'reply'; reply: BirdReply }
  | { kind: 'async'; text: string }
  | { kind: 'error'; reason: BirdReplyError; line: string };

export type BirdReplyError =
  | 'bad_line' // neither `DDDD-`, `DDDD `, ` text` nor `+text`
  | 'continuation_without_code' // ` text` with no coded line before it in this reply
  | 'line_too_long' // no newline within MAX_LINE bytes
  | 'reply_too_long'; // more than MAX_REPLY_LINES lines in one reply

/** BIRD caps its lines at 512 bytes; anything much longer is not BIRD. */
export const BIRD_MAX_LINE = 4096;
/** A route table of a million entries is not what fwlb asks for; a reply past this is cut. */
export const BIRD_MAX_REPLY_LINES = 200_000;

const CODED = /^(\d{4})([- ])(.*)$/s;

/**
 * Reads BIRD's replies from the socket's text, chunk by chunk (a line may span chunks). After
 * an error the stream is out of step: the caller closes the connection and opens a new one.
 */
export class BirdReplyReader {
  private buf = '';
  private lines: BirdLine[] = [];
  private lastCode: number | undefined;

  /** The events the chunk completes, in order. */
  feed(chunk: string): BirdEvent[] {
    const out: BirdEvent[] = [];
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      const e = this.line(line);
      if (e) out.push(e);
    }
    if (this.buf.length > BIRD_MAX_LINE) {
      out.push({ kind: 'error', reason: 'line_too_long', line: this.buf.slice(0, 80) });
      this.buf = '';
      this.reset();
    }
    return out;
  }

  /** Lines of an unfinished reply are waiting. */
  get pending(): boolean {
    return this.lines.length > 0 || this.buf.length > 0;
  }

  private line(line: string): BirdEvent | undefined {
    if (line.startsWith('+')) return { kind: 'async', text: line.slice(1) };
    if (line.startsWith(' ')) {
      if (this.lastCode === undefined) return this.fail('continuation_without_code', line);
      return this.push({ code: this.lastCode, text: line.slice(1) });
    }
    // A bare code (`0000` with its trailing space trimmed on the way) ends a reply too.
    const m = CODED.exec(/^\d{4}$/.test(line) ? `${line} ` : line);
    if (!m) return this.fail('bad_line', line);
    const code = Number(m[1]);
    const more = this.push({ code, text: m[3]! });
    if (more) return more;
    if (m[2] === '-') return undefined;
    const reply = { code, lines: this.lines };
    this.reset();
    return { kind: 'reply', reply };
  }

  /** Adds a line to the reply under way; an error when the reply is too long. */
  private push(l: BirdLine): BirdEvent | undefined {
    if (this.lines.length >= BIRD_MAX_REPLY_LINES) return this.fail('reply_too_long', l.text);
    this.lines.push(l);
    this.lastCode = l.code;
    return undefined;
  }

  private fail(reason: BirdReplyError, line: string): BirdEvent {
    this.reset();
    return { kind: 'error', reason, line: line.slice(0, 80) };
  }

  private reset(): void {
    this.lines = [];
    this.lastCode = undefined;
  }
}

/** 8xxx and 9xxx: BIRD refused or failed the command. */
export function isBirdError(r: BirdReply): boolean {
  return r.code >= 8000;
}

/** The reply's text as one message (its last line, or every line for an error). */
export function birdMessage(r: BirdReply): string {
  return (isBirdError(r) ? r.lines.map((l) => l.text) : [r.lines.at(-1)?.text ?? '']).join('; ').trim();
}
