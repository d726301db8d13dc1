/**
 * `fwlb import FILE...`: keepalived.conf of each node (and conntrackd.conf of each, in the
 * same order) into one fwlb cluster file (config/import/from-keepalived.ts maps; this reads
 * the files, their includes, and writes the result). What could not be carried over is
 * listed as comments at the top of the file and on stderr; exit 0 when the file was written.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { parseKeepalived, type IncludeReader } from '../config/import/keepalived-syntax.js';
import { importKeepalived, kindOf, type ImportSource } from '../config/import/from-keepalived.js';

/** keepalived's include: a path, or a glob in its last component; relative to the including file. */
const readInclude: IncludeReader = (pattern, from) => {
  const abs = isAbsolute(pattern) ? pattern : resolve(dirname(from), pattern);
  const dir = dirname(abs);
  const base = basename(abs);
  if (!/[*?[]/.test(base)) return existsSync(abs) ? [{ file: abs, text: readFileSync(abs, 'utf8') }] : [];
  const re = new RegExp(`^${base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => ({ file: join(dir, f), text: readFileSync(join(dir, f), 'utf8') }));
};

/** Reads and parses the files given, each as keepalived or conntrackd by what it holds. */
export function readSources(files: readonly string[]): ImportSource[] {
  return files.map((file) => {
    const statements = parseKeepalived(readFileSync(file, 'utf8'), file, readInclude);
    const kind = kindOf(statements);
    if (!kind) throw new Error(`${file}: neither a keepalived nor a conntrackd configuration (no vrrp_instance, virtual_server, Sync or General)`);
    return { file, kind, statements };
  });
}

/** "NODE:IF=ADDRESS" -> { NODE: { IF: ADDRESS } }, accumulated. */
function addressOption(v: string, acc: Record<string, Record<string, string>>): Record<string, Record<string, string>> {
  const m = /^([^:=]+):([^=]+)=(.+)$/.exec(v);
  if (!m) throw new InvalidArgumentError('expected NODE:INTERFACE=ADDRESS[/LEN], e.g. pb-fw1:ext0=198.18.1.2/24');
  return { ...acc, [m[1]!]: { ...(acc[m[1]!] ?? {}), [m[2]!]: m[3]! } };
}

export function registerImportCommand(program: Command): void {
  program
    .command('import')
    .description('write an fwlb cluster file from keepalived.conf (one per node) and conntrackd.conf (one per node, same order); what cannot be carried over is listed in the file and on stderr')
    .argument('<files...>', 'keepalived.conf and conntrackd.conf files')
    .option('-o, --out <file>', 'write the cluster file here (default: stdout)')
    .option('-a, --address <NODE:IF=ADDRESS>', "a node's own address on an interface, which keepalived does not say (repeat it)", addressOption, {})
    .option('--name <cluster>', 'the cluster name (default: the first sync group)')
    .action(async (files: string[], o: { out?: string; address: Record<string, Record<string, string>>; name?: string }) => {
      try {
        const r = importKeepalived(readSources(files), { addresses: o.address, ...(o.name ? { clusterName: o.name } : {}) });
        if (o.out) await writeFile(o.out, r.yaml);
        else process.stdout.write(r.yaml);
        for (const n of r.notes) process.stderr.write(`not carried: ${n}\n`);
        process.stderr.write(`${o.out ? `wrote ${o.out}` : 'done'}: ${r.notes.length} thing(s) not carried over; next: fwlb check -c ${o.out ?? 'FILE'}\n`);
      } catch (e) {
        process.stderr.write(`fwlb import: ${(e as Error).message}\nnext: give keepalived.conf files first, then conntrackd.conf files, one per node in the same order (\`fwlb import --help\`)\n`);
        process.exitCode = 1;
      }
    });
}
