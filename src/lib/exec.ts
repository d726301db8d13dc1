/** Running programs without a shell: the result whatever the exit status, or an error that names the command. */
import { spawn } from 'node:child_process';
import { CommandError } from './errors.js';

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program (never through a shell), feeding `input` on stdin.
 * Resolves with the result whatever the exit status; `run` below throws instead.
 */
export function runRaw(cmd: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (status) =>
      resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.on('error', () => { /* the child may exit before reading stdin */ });
    child.stdin.end(input ?? '');
  });
}

/** Runs a program and returns its stdout; a non-zero exit throws CommandError. */
export async function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  const r = await runRaw(cmd, args, input);
  if (r.status !== 0) throw new CommandError(`${cmd} ${args.join(' ')}`, r.status, r.stderr || r.stdout);
  return r.stdout;
}
