/**
 * One readiness waiter for every non-blocking fd of the process (netlink, raw VRRP,
 * AF_PACKET ...): register an fd with a callback, get called on the main thread when it is
 * readable, then read it with MSG_DONTWAIT until EAGAIN. No pool thread is held per socket
 * and the event loop never blocks.
 *
 *   const poller = new Poller();
 *   const remove = poller.add(fd, ({ error }) => { drain fd });
 *   ...
 *   remove(); close(fd);   // remove before closing the fd
 *   poller.close();
 *
 * Two backends behind the same API:
 *
 *  - 'uv' (the default when koffi has it): koffi.node.poll, a uv_poll_t per fd on Node's
 *    own event loop, so the waiting is libuv's single epoll_wait, shared with every other
 *    socket and timer of the process: no thread at all, and the callback runs as soon as the
 *    loop wakes. Caveat: koffi marks this API as not yet documented and liable to change;
 *    'thread' is the fallback and passes the same tests.
 *  - 'thread': one koffi async poll(2) call on a worker thread waiting on all registered fds
 *    plus an eventfd that wakes it when the set changes or on close(); when it returns, the
 *    ready fds' callbacks run on the main thread and the call is made again. Holds exactly
 *    one worker thread while at least one fd is registered and none while the set is empty
 *    or the poller is closed.
 *
 * Keeping the process alive (what was chosen):
 *  - closed, or no fd registered: never, with either backend.
 *  - fds registered, 'uv': only with `keepAlive: true`. By default the handles are unref'd,
 *    like an unref'd socket: the poller alone does not hold the process, idle or not.
 *    Pending netlink requests hold it through their timeout timers, and a daemon has its own
 *    timers and servers. A script that only waits for an event must pass `keepAlive: true`
 *    (or hold a timer), else Node ends once nothing else is pending.
 *  - fds registered, 'thread': always; the pending async call cannot be unref'd, so
 *    `keepAlive: false` cannot be honoured there.
 * On process exit with the poller still open, an 'exit' hook releases the waiter (see
 * Backend.exit): both a natural end and process.exit() work with either backend.
 *
 * Both are level-triggered: a callback that leaves data unread is called again. A callback
 * may be called spuriously (the fd then reads EAGAIN); `error: true` means POLLERR/POLLHUP/
 * POLLNVAL: read the fd to collect the pending error (for netlink, ENOBUFS after an overrun).
 * Callbacks of removed fds are never called, even if their readiness was already seen.
 * An exception thrown by a callback does not stop the poller; it is re-thrown on the next
 * tick, where it surfaces as an uncaught exception as it would from any other callback.
 */
import { PollerError } from './errors.js';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  lastErrno,
  libc,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  SIZEOF_POLLFD,
  uvPoll,
  type UvPollHandle,
} from '../libc.js';

export type PollerBackend = 'uv' | 'thread';

export interface PollerOptions {
  /** Default: 'uv' when koffi provides node.poll, else 'thread'. */
  backend?: PollerBackend;
  /** Keep the process alive while fds are registered (default false; 'thread' always does; see above). */
  keepAlive?: boolean;
}

export interface Readiness {
  /** POLLERR / POLLHUP / POLLNVAL (or a libuv error): a read will return the error. */
  error: boolean;
}

export type OnReadable = (r: Readiness) => void;

/** After this many error callbacks in a row on one fd, wait before watching it again. */
const ERROR_STREAK_LIMIT = 8;
const ERROR_BACKOFF_MS = 50;

interface Entry {
  fd: number;
  cb: OnReadable;
  /** Error callbacks in a row (reset by a plain readable callback). */
  errors: number;
  /** The uv backend's handle. */
  handle?: UvPollHandle;
  /** The thread backend: do not poll this fd until... (ms timestamp); POLLNVAL parks it forever. */
  parkedUntil?: number;
}

interface Backend {
  add(e: Entry): void;
  remove(e: Entry): void;
  close(): void;
  /**
   * The process is exiting (process 'exit', before Node frees the environment) with the
   * poller still open. Without this, Node's teardown would (uv) run a poll callback into
   * a dying environment, a fatal error, or (thread) wait forever for the worker blocked in
   * poll(2), so process.exit() would hang. Both were seen, hence the guard.
   */
  exit(): void;
}

export class Poller {
  readonly backend: PollerBackend;
  private readonly entries = new Map<number, Entry>();
  private readonly impl: Backend;
  private isClosed = false;
  private readonly onExit = () => this.impl.exit();

  constructor(opts: PollerOptions = {}) {
    const uv = uvPoll();
    const backend = opts.backend ?? (uv ? 'uv' : 'thread');
    if (backend === 'uv') {
      if (!uv) throw new PollerError("backend 'uv' needs koffi.node.poll (koffi 2.15 or later)");
      this.impl = new UvBackend(this, uv, opts.keepAlive ?? false);
    } else {
      this.impl = new ThreadBackend(this);
    }
    this.backend = backend;
    // Teardown guard (see `exit` below); one listener per open poller.
    process.on('exit', this.onExit);
  }

  /** Number of registered fds. */
  get size(): number {
    return this.entries.size;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Registers a non-blocking fd; returns the function that removes it (idempotent). */
  add(fd: number, onReadable: OnReadable): () => void {
    if (this.isClosed) throw new PollerError('poller is closed');
    if (!Number.isInteger(fd) || fd < 0) throw new PollerError(`bad fd ${fd}`);
    if (this.entries.has(fd)) throw new PollerError(`fd ${fd} is already registered`);
    const e: Entry = { fd, cb: onReadable, errors: 0 };
    this.entries.set(fd, e);
    this.impl.add(e);
    return () => {
      if (this.entries.get(fd) !== e) return;
      this.entries.delete(fd);
      this.impl.remove(e);
    };
  }

  /** Stops watching every fd (it does not close them) and releases the waiter. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) this.impl.remove(e);
    this.impl.close();
    process.off('exit', this.onExit);
  }

  /** @internal Is this entry still the registered one for its fd? */
  live(e: Entry): boolean {
    return !this.isClosed && this.entries.get(e.fd) === e;
  }

  /** @internal Calls an entry's callback, keeping the poller alive if it throws. */
  fire(e: Entry, error: boolean): void {
    if (!this.live(e)) return;
    e.errors = error ? e.errors + 1 : 0;
    try {
      e.cb({ error });
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  /** @internal All live entries. */
  list(): Entry[] {
    return [...this.entries.values()];
  }
}

// ---------------------------------------------------------------------------------------

class UvBackend implements Backend {
  constructor(
    private readonly owner: Poller,
    private readonly poll: NonNullable<ReturnType<typeof uvPoll>>,
    private readonly keepAlive: boolean,
  ) {}

  add(e: Entry): void {
    const onPoll = (status: number, ev: { readable: boolean; disconnect: boolean }) => {
      // status < 0: libuv saw POLLERR and has stopped the handle; after the callback has
      // read the error, watch again (with a pause if the fd keeps failing).
      const error = status < 0 || ev.disconnect;
      this.owner.fire(e, error);
      if (status < 0 && this.owner.live(e) && e.handle) {
        const restart = () => {
          if (this.owner.live(e) && e.handle) e.handle.start({ readable: true }, onPoll);
        };
        if (e.errors >= ERROR_STREAK_LIMIT) setTimeout(restart, ERROR_BACKOFF_MS).unref();
        else restart();
      }
    };
    const h = this.poll(e.fd, { readable: true }, onPoll);
    if (!h) throw new PollerError(`cannot watch fd ${e.fd}`);
    if (!this.keepAlive) h.unref();
    e.handle = h;
  }

  remove(e: Entry): void {
    // uv_poll_stop takes the fd out of epoll at once, so the caller may close it next.
    e.handle?.close();
    delete e.handle;
  }

  close(): void {}

  exit(): void {
    for (const e of this.owner.list()) this.remove(e);
  }
}

// ---------------------------------------------------------------------------------------

class ThreadBackend implements Backend {
  private wakeFd = -1;
  private running = false;
  private closing = false;
  /** The entries of the poll call in flight, by slot (slot 0 is the eventfd). */
  private slots: Entry[] = [];
  /** The pollfd array of the call in flight; kept referenced until it returns. */
  private pfds: Buffer | undefined;
  private rearmTimer: NodeJS.Timeout | undefined;

  constructor(private readonly owner: Poller) {}

  add(_e: Entry): void {
    this.changed();
  }

  remove(_e: Entry): void {
    this.changed();
  }

  close(): void {
    this.closing = true;
    if (this.rearmTimer) clearTimeout(this.rearmTimer);
    if (this.running) this.wake(); // the call returns, sees `closing`, closes the eventfd
    else this.closeWakeFd();
  }

  exit(): void {
    // Wake the worker so poll(2) returns and Node's teardown does not wait on it forever.
    this.closing = true;
    if (this.running) this.wake();
  }

  private changed(): void {
    if (this.closing || this.owner.closed) return;
    if (this.running) this.wake();
    else this.arm();
  }

  private wake(): void {
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n, 0);
    libc().write(this.wakeFd, one, 8); // EAGAIN only if the counter is near 2^64: already awake
  }

  private closeWakeFd(): void {
    if (this.wakeFd >= 0) libc().close(this.wakeFd);
    this.wakeFd = -1;
  }

  private arm(): void {
    if (this.closing || this.running) return;
    const now = Date.now();
    const watch = this.owner.list().filter((e) => e.parkedUntil === undefined || e.parkedUntil <= now);
    if (watch.length === 0) {
      // Nothing to wait for: hold no thread. Parked fds get a timer to come back.
      this.scheduleUnpark();
      return;
    }
    if (this.wakeFd < 0) {
      this.wakeFd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (this.wakeFd < 0) throw new PollerError(`eventfd failed: errno ${lastErrno()}`);
    }
    const pfds = Buffer.alloc(SIZEOF_POLLFD * (watch.length + 1));
    const put = (i: number, fd: number) => {
      pfds.writeInt32LE(fd, i * SIZEOF_POLLFD);
      pfds.writeInt16LE(POLLIN, i * SIZEOF_POLLFD + 4);
    };
    put(0, this.wakeFd);
    watch.forEach((e, i) => put(i + 1, e.fd));
    this.slots = watch;
    this.pfds = pfds;
    this.running = true;
    this.scheduleUnpark();
    libc().pollAsync(pfds, watch.length + 1, -1, (err, res) => this.done(err, res));
  }

  private scheduleUnpark(): void {
    const parked = this.owner.list().filter((e) => e.parkedUntil !== undefined && Number.isFinite(e.parkedUntil));
    if (parked.length === 0 || this.rearmTimer) return;
    const at = Math.min(...parked.map((e) => e.parkedUntil as number));
    this.rearmTimer = setTimeout(() => {
      this.rearmTimer = undefined;
      for (const e of this.owner.list()) if (e.parkedUntil !== undefined && e.parkedUntil <= Date.now()) delete e.parkedUntil;
      this.changed();
    }, Math.max(0, at - Date.now()));
    this.rearmTimer.unref();
  }

  private done(err: unknown, res: number): void {
    this.running = false;
    const pfds = this.pfds;
    const slots = this.slots;
    this.pfds = undefined;
    this.slots = [];
    if (this.closing) {
      this.closeWakeFd();
      return;
    }
    if (err || !pfds || res < 0) {
      // EINTR, or a koffi failure: try again shortly rather than spin.
      this.rearmTimer ??= setTimeout(() => {
        this.rearmTimer = undefined;
        this.arm();
      }, err ? ERROR_BACKOFF_MS : 0);
      this.rearmTimer.unref();
      return;
    }
    if (pfds.readInt16LE(6) !== 0) {
      const drain = Buffer.alloc(8);
      libc().read(this.wakeFd, drain, 8);
    }
    slots.forEach((e, i) => {
      const revents = pfds.readInt16LE((i + 1) * SIZEOF_POLLFD + 6);
      if (revents === 0 || !this.owner.live(e)) return;
      const error = (revents & (POLLERR | POLLHUP | POLLNVAL)) !== 0;
      this.owner.fire(e, error);
      if (revents & POLLNVAL) e.parkedUntil = Infinity; // not an open fd: never poll it again
      else if (error && e.errors >= ERROR_STREAK_LIMIT) e.parkedUntil = Date.now() + ERROR_BACKOFF_MS;
    });
    this.arm();
  }
}
