/**
 * A config bundle <-> bytes (issue 24): what a push carries, and what a node keeps of the
 * version it runs. Pure.
 *
 *   | meta length u32 | meta (JSON, UTF-8) | file count u16 |
 *   | per file: name length u16 | name (UTF-8) | body length u32 | body |
 *
 * The first file is the cluster config itself (its name: the file's base name on the node
 * that pushed it; each node writes it to its own `-c` path); the others are the block lists
 * it names in `firewall.block_files`, by the names it gives them (relative to the config).
 * The meta says which version this is: a counter that only grows across the cluster, and
 * the SHA-256 of the files (`filesHash`), which tells two different files of one version
 * apart. `decodeBundle` never throws: it returns one of a closed set of reasons.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const BUNDLE_MAX_FILES = 64;
const NAME_MAX = 1024;

export const BundleMetaSchema = z
  .object({
    /** cluster.name: a bundle of another cluster is refused. */
    cluster: z.string().min(1).max(256),
    version: z.number().int().min(1).max(2 ** 48),
    /** sha256 (hex) of the files (`filesHash`). */
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    /** The node that made it (or "rollback" for the version a missed confirm goes back to). */
    origin: z.string().min(1).max(256),
    /** When it was made (ms since the epoch, the origin's clock: shown, never compared). */
    at: z.number().int().min(0),
    /** Commit-confirm: rolled back unless confirmed within this many milliseconds of being applied. */
    confirmMs: z.number().int().min(1000).max(24 * 3600_000).optional(),
    /** With confirmMs: the hash of the version it replaces (what a rollback goes back to). */
    previousHash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    /** The version whose missed confirm this rollback undoes. */
    rollbackOf: z.number().int().min(1).optional(),
  })
  .strict();
export type BundleMeta = z.infer<typeof BundleMetaSchema>;

export interface BundleFile {
  name: string;
  body: Buffer;
}

export interface Bundle {
  meta: BundleMeta;
  files: BundleFile[];
}

export const BUNDLE_REJECTS = ['truncated', 'bad_meta', 'bad_files', 'bad_hash', 'trailing'] as const;
export type BundleReject = (typeof BUNDLE_REJECTS)[number];

/** SHA-256 over the files, names and bodies, each length-prefixed (no two file sets share one). */
export function filesHash(files: readonly BundleFile[]): string {
  const h = createHash('sha256');
  const n = Buffer.alloc(4);
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    n.writeUInt32BE(name.length);
    h.update(n).update(name);
    n.writeUInt32BE(f.body.length);
    h.update(n).update(f.body);
  }
  return h.digest('hex');
}

export function encodeBundle(b: Bundle): Buffer {
  const meta = Buffer.from(JSON.stringify(b.meta), 'utf8');
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4);
  head.writeUInt32BE(meta.length);
  parts.push(head, meta);
  const count = Buffer.alloc(2);
  count.writeUInt16BE(b.files.length);
  parts.push(count);
  for (const f of b.files) {
    const name = Buffer.from(f.name, 'utf8');
    const nl = Buffer.alloc(2);
    nl.writeUInt16BE(name.length);
    const bl = Buffer.alloc(4);
    bl.writeUInt32BE(f.body.length);
    parts.push(nl, name, bl, f.body);
  }
  return Buffer.concat(parts);
}

/** A file name a bundle may carry: relative, inside the config's directory, no NUL. */
export function safeFileName(name: string): boolean {
  if (!name || name.length > NAME_MAX || name.includes('\0') || name.startsWith('/')) return false;
  return !name.split('/').some((p) => p === '..' || p === '');
}

export function decodeBundle(buf: Buffer): { ok: true; bundle: Bundle } | { ok: false; reason: BundleReject; detail?: string } {
  let off = 0;
  const need = (n: number) => off + n <= buf.length;
  if (!need(4)) return { ok: false, reason: 'truncated' };
  const metaLen = buf.readUInt32BE(off);
  off += 4;
  if (!need(metaLen)) return { ok: false, reason: 'truncated' };
  let raw: unknown;
  try {
    raw = JSON.parse(buf.subarray(off, off + metaLen).toString('utf8'));
  } catch (e) {
    return { ok: false, reason: 'bad_meta', detail: (e as Error).message };
  }
  off += metaLen;
  const m = BundleMetaSchema.safeParse(raw);
  if (!m.success) return { ok: false, reason: 'bad_meta', detail: m.error.issues.map((i) => `${i.path.join('.') || '(meta)'}: ${i.message}`).join('; ') };
  if (!need(2)) return { ok: false, reason: 'truncated' };
  const count = buf.readUInt16BE(off);
  off += 2;
  if (count < 1 || count > BUNDLE_MAX_FILES) return { ok: false, reason: 'bad_files', detail: `${count} files: 1 to ${BUNDLE_MAX_FILES}` };
  const files: BundleFile[] = [];
  const names = new Set<string>();
  for (let i = 0; i < count; i++) {
    if (!need(2)) return { ok: false, reason: 'truncated' };
    const nl = buf.readUInt16BE(off);
    off += 2;
    if (!need(nl + 4)) return { ok: false, reason: 'truncated' };
    const name = buf.subarray(off, off + nl).toString('utf8');
    off += nl;
    const bl = buf.readUInt32BE(off);
    off += 4;
    if (!need(bl)) return { ok: false, reason: 'truncated' };
    if (!safeFileName(name) || names.has(name)) return { ok: false, reason: 'bad_files', detail: `file name ${JSON.stringify(name.slice(0, 80))}` };
    names.add(name);
    files.push({ name, body: Buffer.from(buf.subarray(off, off + bl)) });
    off += bl;
  }
  if (off !== buf.length) return { ok: false, reason: 'trailing' };
  if (filesHash(files) !== m.data.hash) return { ok: false, reason: 'bad_hash' };
  return { ok: true, bundle: { meta: m.data, files } };
}
