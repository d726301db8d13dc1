/**
 * What a node keeps on disk of its config versions (issue 24), in its state directory: the
 * bundle it runs (`config-current.bundle`), the one before it (`config-previous.bundle`, what
 * a missed confirm goes back to), the confirm it waits for (`config-confirm.json`) and its
 * runtime changes (`runtime.json`, fsm/runtime-log.ts). Every
 * write is atomic (a temporary file, fsync, rename, fsync of the directory): a crash leaves
 * the old file or the new one, never half of one. Every read is checked (the bundle codec,
 * a schema): a damaged file is reported and left out, never trusted.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { decodeBundle, encodeBundle, type Bundle } from '../codec/config/bundle.js';
import type { PendingConfirm, StoredVersions, VersionStore } from '../ports/config-store.js';
import { RuntimeDocSchema, type RuntimeDoc } from '../fsm/runtime-log.js';

/** Writes `data` to `path` atomically, with `mode`; the directory is created if need be. */
export async function writeAtomic(path: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

const ConfirmSchema = z.object({ version: z.number().int().min(1), deadline: z.number().int().min(0) }).strict();

export class ConfigStore implements VersionStore {
  constructor(readonly dir: string) {}

  private path(name: string): string {
    return join(this.dir, name);
  }

  async load(): Promise<StoredVersions> {
    const out: StoredVersions = { problems: [] };
    for (const which of ['current', 'previous'] as const) {
      const file = this.path(`config-${which}.bundle`);
      const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
      if (!bytes) continue;
      const r = decodeBundle(bytes);
      if (r.ok) out[which] = r.bundle;
      else out.problems.push(`${file}: ${r.reason}${r.detail ? ` (${r.detail})` : ''}`);
    }
    const file = this.path('config-confirm.json');
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
    if (text !== undefined) {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (e) {
        out.problems.push(`${file}: ${(e as Error).message}`);
      }
      const c = ConfirmSchema.safeParse(raw);
      if (c.success) out.confirm = c.data;
      else if (raw !== undefined) out.problems.push(`${file}: ${c.error.issues.map((i) => i.message).join('; ')}`);
    }
    return out;
  }

  /** The version now running, and the one it replaced (kept for a rollback). */
  async saveVersions(current: Bundle, previous: Bundle | undefined): Promise<void> {
    if (previous) await writeAtomic(this.path('config-previous.bundle'), encodeBundle(previous), 0o600);
    else await rm(this.path('config-previous.bundle'), { force: true });
    await writeAtomic(this.path('config-current.bundle'), encodeBundle(current), 0o600);
  }

  /** The runtime changes (fsm/runtime-log.ts); undefined when there are none or the file is damaged (said in `problems`). */
  async loadRuntime(problems: string[]): Promise<RuntimeDoc | undefined> {
    const file = this.path('runtime.json');
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
    if (text === undefined) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
      return undefined;
    }
    const r = RuntimeDocSchema.safeParse(raw);
    if (r.success) return r.data;
    problems.push(`${file}: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return undefined;
  }

  saveRuntime(doc: RuntimeDoc): Promise<void> {
    return writeAtomic(this.path('runtime.json'), JSON.stringify(doc) + '\n', 0o600);
  }

  async saveConfirm(c: PendingConfirm | undefined): Promise<void> {
    if (c) await writeAtomic(this.path('config-confirm.json'), JSON.stringify(c) + '\n', 0o600);
    else await rm(this.path('config-confirm.json'), { force: true });
  }
}
