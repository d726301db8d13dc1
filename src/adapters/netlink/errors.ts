/**
 * Errors of the netlink adapters, with stable codes (ENGINEERING.md, convention 5).
 *
 *  - NetlinkError (ERR_NETLINK): the kernel or a syscall said no. `errno` is the name
 *    ('EEXIST', 'EADDRNOTAVAIL', 'ENODEV', ...), `extack` the kernel's own message when it
 *    sent one. The adapter adds three errno names of its own, never sent by the kernel for
 *    these requests: 'ETIMEDOUT' (no answer in time), 'ECANCELED' (socket closed while
 *    waiting) and 'EBADMSG' (an answer the codec could not read; `cause` has the reason).
 *  - PollerError (ERR_POLLER): misuse of the poller (closed, fd added twice).
 */
import { errnoName } from '../../codec/netlink/errno.js';
import { FwlbError } from '../../lib/errors.js';

export class NetlinkError extends FwlbError {
  declare readonly code: 'ERR_NETLINK';
  /** Errno name. */
  readonly errno: string;
  /** Errno number (positive). */
  readonly errnoNumber: number;
  /** What was being done: 'socket', 'bind', 'RTM_NEWADDR', ... */
  readonly op: string;
  /** NLMSGERR_ATTR_MSG, the kernel's explanation, when it sent one. */
  readonly extack: string | undefined;

  constructor(op: string, errnoNumber: number, opts: { extack?: string; detail?: string; cause?: unknown } = {}) {
    const name = errnoName(errnoNumber);
    const why = [opts.extack, opts.detail].filter(Boolean).join('; ');
    super('ERR_NETLINK', `${op}: ${name}${why ? ` (${why})` : ''}`, opts.cause === undefined ? {} : { cause: opts.cause });
    this.name = 'NetlinkError';
    this.errno = name;
    this.errnoNumber = errnoNumber;
    this.op = op;
    this.extack = opts.extack;
  }
}

export class PollerError extends FwlbError {
  declare readonly code: 'ERR_POLLER';
  constructor(message: string) {
    super('ERR_POLLER', message);
    this.name = 'PollerError';
  }
}

// Errno numbers the adapter uses for its own conditions (asm-generic/errno.h).
export const ETIMEDOUT = 110;
export const ECANCELED = 125;
export const EBADMSG = 74;
export const EAGAIN = 11;
export const EINTR = 4;
export const ENOBUFS = 105;
