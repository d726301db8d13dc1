/**
 * BIRD 2's control socket, spoken as birdc speaks it (issue 26): a Unix stream socket, one
 * command line at a time, each answered by a reply read with codec/bird/reply.ts. BIRD greets
 * on connect (0001) and reads the next command only once the last reply is out, so commands
 * queue here; asynchronous log echoes (`+`) are dropped. The connection opens on first use and
 * again after it fails; a reply that does not come within the timeout closes it.
 */
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { BirdReplyReader, type BirdReply } from '../codec/bird/reply.js';
import { FwlbError } from '../lib/errors.js';
import { writeAtomic } from './config-store.js';
import type { BirdControlPort } from '../ports/bgp.js';

interface Pending {
  line: string;
  resolve: (r: BirdReply) => void;
  reject: (e: Error) => void;
}

export class BirdControl implements BirdControlPort {
  private sock: net.Socket | undefined;
  private reader = new BirdReplyReader();
  private decoder = new StringDecoder('utf8');
  private greeted = false;
  private readonly queue: Pending[] = [];
  private inFlight: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly timeoutMs = 5000,
  ) {}

  command(line: string): Promise<BirdReply> {
    if (/[\r\n]/.test(line) || line.length > 1000) return Promise.reject(new FwlbError('ERR_BAD_REQUEST', `not one BIRD command line: ${JSON.stringify(line.slice(0, 60))}`));
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.pump();
    });
  }

  close(): void {
    this.fail(new FwlbError('ERR_BIRD', 'closed'));
  }

  private pump(): void {
    if (this.inFlight || this.queue.length === 0) return;
    if (!this.sock) return this.connect();
    if (!this.greeted) return;
    this.inFlight = this.queue.shift()!;
    this.arm(`"${this.inFlight.line}"`);
    this.sock.write(`${this.inFlight.line}\n`);
  }

  private connect(): void {
    const s = net.createConnection(this.path);
    this.sock = s;
    this.greeted = false;
    this.reader = new BirdReplyReader();
    this.decoder = new StringDecoder('utf8');
    this.arm('its greeting');
    s.on('data', (d) => this.data(d));
    s.on('error', (e) => this.fail(new FwlbError('ERR_BIRD', `BIRD's control socket ${this.path}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    s.on('close', () => this.sock === s && this.fail(new FwlbError('ERR_BIRD', `BIRD closed its control socket ${this.path}`)));
  }

  private data(d: Buffer): void {
    for (const ev of this.reader.feed(this.decoder.write(d))) {
      if (ev.kind === 'async') continue;
      if (ev.kind === 'error') return this.fail(new FwlbError('ERR_BIRD', `BIRD's reply is not BIRD's protocol (${ev.reason}): ${JSON.stringify(ev.line)}`));
      clearTimeout(this.timer);
      if (!this.greeted) {
        if (ev.reply.code !== 1) return this.fail(new FwlbError('ERR_BIRD', `BIRD did not greet (${ev.reply.code} ${ev.reply.lines.at(-1)?.text ?? ''})`));
        this.greeted = true;
      } else {
        const p = this.inFlight;
        this.inFlight = undefined;
        p?.resolve(ev.reply);
      }
      this.pump();
    }
  }

  private arm(what: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fail(new FwlbError('ERR_BIRD', `BIRD did not answer ${what} within ${this.timeoutMs} ms (${this.path})`)), this.timeoutMs);
    this.timer.unref();
  }

  /** Drops the connection; the command under way and the queue fail with `e`. */
  private fail(e: Error): void {
    clearTimeout(this.timer);
    const s = this.sock;
    this.sock = undefined;
    this.greeted = false;
    s?.destroy();
    const all = [...(this.inFlight ? [this.inFlight] : []), ...this.queue.splice(0)];
    this.inFlight = undefined;
    for (const p of all) p.reject(e);
  }
}

/** Writes the file BIRD includes, whole (a temporary file beside it, renamed over it, synced). */
export function writeBirdInclude(path: string, text: string): Promise<void> {
  return writeAtomic(path, text, 0o644);
}
