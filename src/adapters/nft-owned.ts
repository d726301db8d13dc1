/**
 * Tables this process owns (nftables' `owner` flag, Linux 5.12+): created through a netlink
 * socket of libnftables held open in this process, so the kernel deletes them the moment the
 * process ends, however it ends (kill -9 included), and no other process may change them.
 * fwlb holds the sharing gate in one (compiler/ruleset.ts `compileAliveGate`).
 *
 * libnftables runs the commands synchronously on this thread; a gate is one table of one rule.
 */
import koffi from 'koffi';
import { FwlbError } from '../lib/errors.js';

interface LibNftables {
  ctxNew(flags: number): unknown;
  ctxFree(ctx: unknown): void;
  bufferOutput(ctx: unknown): number;
  bufferError(ctx: unknown): number;
  errorBuffer(ctx: unknown): string | null;
  run(ctx: unknown, script: string): number;
}

let lib: LibNftables | undefined;
function libnftables(): LibNftables {
  if (lib) return lib;
  let l: ReturnType<typeof koffi.load>;
  try {
    l = koffi.load('libnftables.so.1');
  } catch (e) {
    throw new FwlbError('ERR_NFT', `cannot load libnftables.so.1 (Debian package libnftables1, installed with nftables): ${(e as Error).message}`);
  }
  lib = {
    ctxNew: l.func('void *nft_ctx_new(uint32_t flags)'),
    ctxFree: l.func('void nft_ctx_free(void *ctx)'),
    bufferOutput: l.func('int nft_ctx_buffer_output(void *ctx)'),
    bufferError: l.func('int nft_ctx_buffer_error(void *ctx)'),
    errorBuffer: l.func('const char *nft_ctx_get_error_buffer(void *ctx)'),
    run: l.func('int nft_run_cmd_from_buffer(void *ctx, const char *buf)'),
  } as LibNftables;
  return lib;
}

export class OwnedNft {
  private ctx: unknown;

  private constructor(private readonly l: LibNftables, ctx: unknown) {
    this.ctx = ctx;
  }

  static open(): OwnedNft {
    const l = libnftables();
    const ctx = l.ctxNew(0);
    if (!ctx) throw new FwlbError('ERR_NFT', 'libnftables: nft_ctx_new failed');
    // Output and errors into buffers, never to the daemon's stdout/stderr.
    l.bufferOutput(ctx);
    l.bufferError(ctx);
    return new OwnedNft(l, ctx);
  }

  /** Runs a script as one transaction through this process's own socket. */
  run(script: string): void {
    if (!this.ctx) throw new FwlbError('ERR_NFT', 'libnftables context closed');
    if (this.l.run(this.ctx, script) !== 0) throw new FwlbError('ERR_NFT', `nft (owned table) failed: ${(this.l.errorBuffer(this.ctx) ?? 'unknown error').trim()}`);
  }

  /** Closes the socket: the kernel deletes the tables it owns. */
  close(): void {
    if (!this.ctx) return;
    this.l.ctxFree(this.ctx);
    this.ctx = undefined;
  }
}
