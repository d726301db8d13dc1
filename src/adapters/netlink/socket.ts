/**
 * A raw netlink socket (through koffi) with request/reply matching by sequence number.
 * Family-neutral: it frames and routes messages, the codecs give them meaning.
 *
 *  - socket(AF_NETLINK, SOCK_RAW|SOCK_NONBLOCK|SOCK_CLOEXEC, protocol), bind (the kernel
 *    picks the port id), multicast groups joined with NETLINK_ADD_MEMBERSHIP;
 *    NETLINK_EXT_ACK and NETLINK_CAP_ACK so errors carry the kernel's message, not our request.
 *  - Reads happen on the main thread when the Poller says the fd is readable, with
 *    MSG_DONTWAIT until EAGAIN; nothing blocks.
 *  - Unicast messages from the kernel answer requests: matched by nlmsg_seq, a request is
 *    done at its ACK (NLMSG_ERROR 0) or, for a dump, at NLMSG_DONE; a non-zero error rejects
 *    with a NetlinkError carrying the errno name. Multicast messages (the sender address
 *    names a group) go to `onNotification`. Messages from anyone but the kernel (port 0) are
 *    dropped.
 *  - ENOBUFS on a read means the kernel dropped messages for us (the receive buffer was
 *    full): `onLost` is called; a listener must then re-read the state it mirrors.
 *
 * Every dropped datagram or message bumps `counters.dropped[reason]`.
 */
import {
  NlWriter,
  decodeNlDone,
  decodeNlError,
  NETLINK_ROUTE,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  type NlMessage,
  splitMessages,
} from '../../codec/netlink/nlmsg.js';
import { EAGAIN, EBADMSG, ECANCELED, EINTR, ENOBUFS, ETIMEDOUT, NetlinkError } from './errors.js';
import { errnoName } from '../../codec/netlink/errno.js';
import {
  AF_NETLINK,
  int32,
  lastErrno,
  libc,
  MSG_DONTWAIT,
  MSG_TRUNC,
  NETLINK_ADD_MEMBERSHIP,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  SIZEOF_SOCKADDR_NL,
  SO_RCVBUF,
  SO_ATTACH_FILTER,
  SO_RCVBUFFORCE,
  sockFprog,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
} from '../libc.js';
import type { Poller } from './poller.js';
import type { SocketCounters, SocketDropReason } from '../../ports/netlink.js';

export interface NetlinkSocketOptions {
  poller: Poller;
  /** NETLINK_ROUTE by default. */
  protocol?: number;
  /** Multicast groups to join (RTNLGRP_* numbers). */
  groups?: readonly number[];
  /** Receive buffer in bytes (SO_RCVBUFFORCE, falling back to SO_RCVBUF). Default: the system's. */
  rcvbuf?: number;
  /** Default timeout of requests in ms (5000). */
  timeoutMs?: number;
  /** Datagrams read per readiness callback (default 256); fewer lets a streamed dump yield. */
  readsPerWakeup?: number;
  onNotification?: (msg: NlMessage) => void;
  onLost?: () => void;
  /** A read failed with something else than EAGAIN/EINTR/ENOBUFS. */
  onError?: (err: NetlinkError) => void;
}

export interface RequestOptions {
  /** A dump (ends at NLMSG_DONE) or a plain request (ends at its ACK; send NLM_F_ACK). */
  dump: boolean;
  /** Name for errors ('RTM_NEWADDR'). */
  op: string;
  timeoutMs?: number;
  /**
   * The message asks for no ack (no NLM_F_ACK): the kernel answers only an error. The kernel
   * runs the messages of a sendto before the call returns and queues their errors on our
   * socket, so once sendto returned and the socket is drained, a request without an error
   * has succeeded. One recvfrom per batch instead of one per request. Not for dumps or GETs.
   */
  ackless?: boolean;
  /**
   * Errnos that are an answer, not a failure (EEXIST on a create that may find its entry):
   * the request resolves with `errno` set instead of rejecting. An Error (with its stack)
   * per expected answer was a good part of a bulk sync's cost.
   */
  answers?: readonly string[];
  /**
   * A dump's messages one by one, as they are read, instead of all at its end (then
   * `Reply.messages` is empty). Each part renews the timeout: a dump paused by its reader
   * (see `pause`) does not time out.
   */
  onPart?: (msg: NlMessage) => void;
}

export interface Reply {
  /** The data messages of the reply (dump parts, or the answer to a GET), in order. */
  messages: NlMessage[];
  /** NLM_F_DUMP_INTR was set on a part: the dump may be inconsistent; do it again. */
  interrupted: boolean;
  /** The kernel's answer was this errno, one of RequestOptions.answers. */
  errno?: string;
}

interface Pending {
  dump: boolean;
  op: string;
  messages: NlMessage[];
  interrupted: boolean;
  resolve: (r: Reply) => void;
  reject: (e: NetlinkError) => void;
  /** performance.now() after which it fails with ETIMEDOUT. */
  deadline: number;
  timeoutMs: number;
  answers: readonly string[] | undefined;
  onPart: ((msg: NlMessage) => void) | undefined;
}


const RECV_BUFFER = 64 * 1024; // dumps fill at most 32 KiB per datagram (netlink_dump)
const READS_PER_WAKEUP = 256;
/**
 * Requests made in one turn of the event loop go to the kernel in one sendto, up to this many
 * bytes (the kernel runs the messages of a datagram one by one and acks each): a bulk sync
 * writes tens of thousands of entries a second, and a syscall per entry was its limit.
 */
const BATCH_BYTES = 32 * 1024;
/** Where requests go: the kernel (nl_pid 0). */
const TO_KERNEL = (() => {
  const b = Buffer.alloc(SIZEOF_SOCKADDR_NL);
  b.writeUInt16LE(AF_NETLINK, 0);
  return b;
})();

export class NetlinkSocket {
  readonly fd: number;
  /** Our port id (nl_pid), assigned by the kernel at bind. */
  readonly pid: number;
  readonly counters: SocketCounters = { datagrams: 0, messages: 0, notifications: 0, lost: 0, dropped: {} };
  private readonly pending = new Map<number, Pending>();
  private readonly buf = Buffer.alloc(RECV_BUFFER);
  private readonly src = Buffer.alloc(SIZEOF_SOCKADDR_NL);
  private readonly srcLen = Buffer.alloc(4);
  private unregister: () => void;
  /** Not reading (pause): the kernel holds what comes, and a dump waits. */
  private paused = false;
  private readonly timeoutMs: number;
  private seq: number;
  private isClosed = false;

  private constructor(
    fd: number,
    pid: number,
    private readonly opts: NetlinkSocketOptions,
  ) {
    this.fd = fd;
    this.pid = pid;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.seq = (Math.random() * 0x7fffffff) >>> 0;
    this.unregister = opts.poller.add(fd, () => this.onReadable());
  }

  /** Opens, binds and registers the socket; throws NetlinkError if a syscall fails. */
  static open(opts: NetlinkSocketOptions): NetlinkSocket {
    const c = libc();
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, opts.protocol ?? NETLINK_ROUTE);
    if (fd < 0) throw new NetlinkError('socket', lastErrno());
    const fail = (op: string): never => {
      const e = new NetlinkError(op, lastErrno());
      c.close(fd);
      throw e;
    };
    if (opts.rcvbuf !== undefined) {
      const size = int32(opts.rcvbuf);
      const forced = c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) === 0;
      if (!forced && c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4) < 0) fail('setsockopt(SO_RCVBUF)');
    }
    // Both are optional comforts (kernel 4.3 / 4.12); a kernel without them still works.
    c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, int32(1), 4);
    c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, int32(1), 4);
    const sa = Buffer.alloc(SIZEOF_SOCKADDR_NL);
    sa.writeUInt16LE(AF_NETLINK, 0); // nl_family; nl_pid 0: the kernel assigns; nl_groups 0
    if (c.bind(fd, sa, SIZEOF_SOCKADDR_NL) < 0) fail('bind');
    for (const g of opts.groups ?? []) {
      if (c.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, int32(g), 4) < 0) fail(`setsockopt(NETLINK_ADD_MEMBERSHIP ${g})`);
    }
    const name = Buffer.alloc(SIZEOF_SOCKADDR_NL);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(SIZEOF_SOCKADDR_NL, 0);
    if (c.getsockname(fd, name, len) < 0) fail('getsockname');
    const pid = name.readUInt32LE(4);
    try {
      return new NetlinkSocket(fd, pid, opts);
    } catch (err) {
      c.close(fd);
      throw err;
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Number of requests waiting for their answer. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends one request built for a fresh sequence number and resolves with its reply.
   * Rejects with NetlinkError: the kernel's errno, or ETIMEDOUT / ECANCELED / EBADMSG.
   */
  request(build: (seq: number) => Buffer, opts: RequestOptions): Promise<Reply> {
    if (this.isClosed) return Promise.reject(new NetlinkError(opts.op, ECANCELED, { detail: 'socket closed' }));
    const seq = this.nextSeq();
    let msg: Buffer;
    try {
      msg = build(seq);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Reply>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
      const deadline = performance.now() + timeoutMs;
      this.pending.set(seq, { dump: opts.dump, op: opts.op, messages: [], interrupted: false, resolve, reject, deadline, timeoutMs, answers: opts.answers, onPart: opts.onPart });
      this.armSweep(deadline);
      if (opts.dump) {
        // A dump alone in its datagram, after what was queued before it.
        this.flush();
        this.send([seq], msg, opts.op);
        return;
      }
      this.outbox.push({ seq, msg, op: opts.op, ackless: opts.ackless === true });
      this.outboxBytes += msg.length;
      if (this.outboxBytes >= BATCH_BYTES) this.flush();
      else if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Sends `count` messages without acks, written by `write(w, i, seq)` into one buffer (one
   * sendto per BATCH_BYTES), and returns each one's outcome at once: undefined (done) or the
   * errno name the kernel answered. The kernel runs a sendto's messages before it returns and
   * queues their errors on this socket, which is then drained: no promise, no pending entry,
   * no timer per message. A message `write` throws for gets the error's message as outcome
   * ('EINVAL: ...'). If the socket overflowed while the errors were read, the outcomes not
   * read are 'ENOBUFS' (unknown).
   */
  sendAckless(count: number, write: (w: NlWriter, i: number, seq: number) => void): (string | undefined)[] {
    const out: (string | undefined)[] = new Array(count).fill(undefined);
    if (this.isClosed) return out.fill('ECANCELED');
    this.flush(); // what was asked before goes before
    const w = (this.batchWriter ??= new NlWriter(BATCH_BYTES + 4096));
    const bySeq = new Map<number, number>();
    this.batchSeqs = bySeq;
    this.batchOut = out;
    const sendNow = (): void => {
      if (w.length === 0) return;
      const lostBefore = this.counters.lost;
      const n = libc().sendto(this.fd, w.finish(), w.length, 0, TO_KERNEL, SIZEOF_SOCKADDR_NL);
      if (n < 0) {
        const errno = errnoName(lastErrno());
        for (const i of bySeq.values()) out[i] = errno;
      } else {
        this.onReadable(Infinity);
        if (this.counters.lost !== lostBefore) for (const i of bySeq.values()) out[i] ??= 'ENOBUFS';
      }
      bySeq.clear();
      w.reset();
    };
    try {
      for (let i = 0; i < count; i++) {
        const seq = this.nextSeq();
        try {
          write(w, i, seq);
          bySeq.set(seq, i);
        } catch (err) {
          out[i] = `EINVAL: ${(err as Error).message}`;
        }
        if (w.length >= BATCH_BYTES) sendNow();
      }
      sendNow();
    } finally {
      this.batchSeqs = undefined;
      this.batchOut = undefined;
      w.reset();
    }
    return out;
  }

  /** The batch being sent by sendAckless: its messages' sequence numbers -> positions. */
  private batchSeqs: Map<number, number> | undefined;
  private batchOut: (string | undefined)[] | undefined;
  private batchWriter: NlWriter | undefined;

  /** Requests waiting for the end of this turn of the event loop, to go in one sendto. */
  private outbox: { seq: number; msg: Buffer; op: string; ackless: boolean }[] = [];
  private outboxBytes = 0;
  private flushQueued = false;
  /** The one timeout timer, armed for the earliest deadline of the pending requests. */
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepAt = Infinity;

  private flush(): void {
    this.flushQueued = false;
    if (this.outbox.length === 0 || this.isClosed) return;
    const batch = this.outbox;
    this.outbox = [];
    this.outboxBytes = 0;
    if (batch.length === 1) this.send([batch[0]!.seq], batch[0]!.msg, batch[0]!.op);
    else this.send(batch.map((b) => b.seq), Buffer.concat(batch.map((b) => b.msg)), batch[0]!.op);
    if (!batch.some((b) => b.ackless)) return;
    // The kernel has run them all: read every error it queued, then the rest succeeded —
    // unless the socket overflowed meanwhile, and an error may be among what was lost.
    const lostBefore = this.counters.lost;
    this.onReadable(Infinity);
    const overflowed = this.counters.lost !== lostBefore;
    for (const b of batch) {
      if (!b.ackless || !this.pending.has(b.seq)) continue;
      this.settle(b.seq, overflowed ? new NetlinkError(b.op, ENOBUFS, { detail: 'replies lost: outcome unknown' }) : { messages: [], interrupted: false });
    }
  }

  private send(seqs: number[], buf: Buffer, op: string): void {
    const n = libc().sendto(this.fd, buf, buf.length, 0, TO_KERNEL, SIZEOF_SOCKADDR_NL);
    if (n >= 0) return;
    const errno = lastErrno();
    for (const seq of seqs) this.settle(seq, new NetlinkError(this.pending.get(seq)?.op ?? op, errno, { detail: 'sendto' }));
  }

  private armSweep(deadline: number): void {
    if (this.sweepTimer !== undefined && this.sweepAt <= deadline) return;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepAt = deadline;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, deadline - performance.now()) + 1);
  }

  /** Fails the requests past their deadline, and arms the timer for the next one. */
  private sweep(): void {
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [seq, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(seq);
        p.reject(new NetlinkError(p.op, ETIMEDOUT, { detail: `no answer in ${p.timeoutMs} ms` }));
      } else if (p.deadline < next) next = p.deadline;
    }
    if (next !== Infinity && !this.isClosed) this.armSweep(next);
  }

  /**
   * Has the kernel drop, before they are queued here, the messages sent on behalf of the
   * netlink port `pid` (nlmsg_pid): the events our own writes cause, on an event socket of
   * a listener that would ignore them anyway (a backup writing a bulk sync of a million
   * entries would otherwise read a million of its own events). A classic BPF filter:
   *   ld [12] (nlmsg_pid, loaded big-endian); jeq bswap(pid) ? drop : accept
   * Returns false when the kernel refuses it (the events then arrive and are skipped).
   */
  dropFromPort(pid: number): boolean {
    const prog = Buffer.alloc(4 * 8);
    const insn = (i: number, code: number, jt: number, jf: number, k: number) => {
      prog.writeUInt16LE(code, i * 8);
      prog[i * 8 + 2] = jt;
      prog[i * 8 + 3] = jf;
      prog.writeUInt32LE(k >>> 0, i * 8 + 4);
    };
    const be = Buffer.alloc(4);
    be.writeUInt32LE(pid >>> 0, 0);
    insn(0, 0x20, 0, 0, 12); // BPF_LD | BPF_W | BPF_ABS: A = ntohl(nlmsg_pid)
    insn(1, 0x15, 1, 0, be.readUInt32BE(0)); // BPF_JMP | BPF_JEQ | BPF_K: our port -> drop
    insn(2, 0x06, 0, 0, 0xffffffff); // BPF_RET: accept
    insn(3, 0x06, 0, 0, 0); // BPF_RET: drop
    const fprog = sockFprog(prog);
    return libc().setsockopt(this.fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, fprog.length) === 0;
  }

  /**
   * Stops reading until `resume`: what the kernel sends waits in the socket, and a dump in
   * progress waits for room there (the kernel fills a dump's next part only when the last is
   * read). Backpressure for a reader that cannot keep up.
   */
  pause(): void {
    if (this.paused || this.isClosed) return;
    this.paused = true;
    this.unregister();
  }

  resume(): void {
    if (!this.paused || this.isClosed) return;
    this.paused = false;
    this.unregister = this.opts.poller.add(this.fd, () => this.onReadable());
  }

  /** Unregisters from the poller, closes the fd, rejects waiting requests (ECANCELED). Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.outbox = [];
    if (!this.paused) this.unregister();
    libc().close(this.fd);
    for (const [seq, p] of this.pending) this.settle(seq, new NetlinkError(p.op, ECANCELED, { detail: 'socket closed' }));
  }

  private nextSeq(): number {
    do this.seq = (this.seq + 1) >>> 0;
    while (this.seq === 0 || this.pending.has(this.seq));
    return this.seq;
  }

  private drop(reason: SocketDropReason): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
  }

  private settle(seq: number, outcome: NetlinkError | Reply): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    if (outcome instanceof NetlinkError) p.reject(outcome);
    else p.resolve(outcome);
  }

  private onReadable(limit = this.opts.readsPerWakeup ?? READS_PER_WAKEUP): void {
    const c = libc();
    for (let i = 0; i < limit && !this.isClosed && !this.paused; i++) {
      this.srcLen.writeUInt32LE(SIZEOF_SOCKADDR_NL, 0);
      const n = c.recvfrom(this.fd, this.buf, this.buf.length, MSG_DONTWAIT | MSG_TRUNC, this.src, this.srcLen);
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EAGAIN) return;
        if (errno === EINTR) continue;
        if (errno === ENOBUFS) {
          this.counters.lost++;
          this.opts.onLost?.();
          continue;
        }
        this.opts.onError?.(new NetlinkError('recvfrom', errno));
        return;
      }
      this.counters.datagrams++;
      if (n > this.buf.length) {
        this.drop('truncated');
        continue;
      }
      const srcPid = this.src.readUInt32LE(4);
      const srcGroups = this.src.readUInt32LE(8);
      if (srcPid !== 0) {
        this.drop('not_from_kernel');
        continue;
      }
      this.dispatch(Buffer.from(this.buf.subarray(0, n)), srcGroups !== 0);
    }
  }

  private dispatch(datagram: Buffer, multicast: boolean): void {
    const split = splitMessages(datagram);
    if (!split.ok) {
      this.drop(split.reason);
      return;
    }
    for (const msg of split.value) {
      this.counters.messages++;
      if (multicast) {
        this.counters.notifications++;
        this.opts.onNotification?.(msg);
        continue;
      }
      this.reply(msg);
    }
  }

  private reply(msg: NlMessage): void {
    const { type, seq, flags } = msg.header;
    if (type === NLMSG_NOOP || type === NLMSG_OVERRUN) return;
    const batched = this.batchSeqs?.get(seq);
    if (batched !== undefined && type === NLMSG_ERROR) {
      const e = decodeNlError(msg);
      if (!e.ok) this.drop(e.reason);
      else if (e.value.errno !== 0) this.batchOut![batched] = errnoName(e.value.errno);
      return;
    }
    const p = this.pending.get(seq);
    if (!p) {
      this.drop(type === NLMSG_ERROR || type === NLMSG_DONE || seq !== 0 ? 'stale_reply' : 'unsolicited');
      return;
    }
    if (type === NLMSG_ERROR) {
      const e = decodeNlError(msg);
      if (!e.ok) {
        this.drop(e.reason);
        this.settle(seq, new NetlinkError(p.op, EBADMSG, { detail: `undecodable NLMSG_ERROR: ${e.reason}` }));
        return;
      }
      if (e.value.errno !== 0) {
        const name = p.answers ? errnoName(e.value.errno) : undefined;
        if (name !== undefined && p.answers!.includes(name)) this.settle(seq, { messages: [], interrupted: false, errno: name });
        else this.settle(seq, new NetlinkError(p.op, e.value.errno, e.value.extack?.msg ? { extack: e.value.extack.msg } : {}));
      } else if (!p.dump) {
        this.settle(seq, { messages: p.messages, interrupted: p.interrupted });
      }
      return;
    }
    if (type === NLMSG_DONE) {
      const d = decodeNlDone(msg);
      if (!d.ok) {
        this.drop(d.reason);
        this.settle(seq, new NetlinkError(p.op, EBADMSG, { detail: `undecodable NLMSG_DONE: ${d.reason}` }));
      } else if (d.value.errno !== 0) {
        this.settle(seq, new NetlinkError(p.op, d.value.errno, { detail: 'dump failed' }));
      } else {
        this.settle(seq, { messages: p.messages, interrupted: p.interrupted || (flags & NLM_F_DUMP_INTR) !== 0 });
      }
      return;
    }
    if (flags & NLM_F_DUMP_INTR) p.interrupted = true;
    if (p.onPart) {
      p.deadline = performance.now() + p.timeoutMs;
      p.onPart(msg);
    } else p.messages.push(msg);
  }
}

/**
 * A family adapter's sockets: one for requests and, when it listens to multicast groups,
 * one for events (so replies never wait behind a burst of events). Closes the request
 * socket if the event socket cannot be opened.
 */
export function openRequestAndEvents(
  opts: Omit<NetlinkSocketOptions, 'groups' | 'rcvbuf' | 'onNotification' | 'onLost'> & { requestRcvbuf?: number },
  events: { groups: readonly number[]; rcvbuf: number; onNotification: (m: NlMessage) => void; onLost: () => void },
): { requests: NetlinkSocket; events: NetlinkSocket | undefined } {
  const { requestRcvbuf, ...base } = opts;
  const requests = NetlinkSocket.open({ ...base, ...(requestRcvbuf === undefined ? {} : { rcvbuf: requestRcvbuf }) });
  if (events.groups.length === 0) return { requests, events: undefined };
  try {
    return { requests, events: NetlinkSocket.open({ ...base, ...events }) };
  } catch (err) {
    requests.close();
    throw err;
  }
}

/**
 * An acknowledged request where one errno means the wanted state already holds (EEXIST on
 * an add, ENOENT or EADDRNOTAVAIL on a delete): resolves `done`, or `already` on that errno;
 * any other error rejects as NetlinkError. What makes retries after a failover harmless.
 */
export async function requestIdempotent<A extends string, B extends string>(
  sock: NetlinkSocket,
  encode: (seq: number) => Buffer,
  op: string,
  done: A,
  already: { errno: string; result: B },
): Promise<A | B> {
  try {
    await sock.request(encode, { dump: false, op });
    return done;
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === already.errno) return already.result;
    throw err;
  }
}
