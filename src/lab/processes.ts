/**
 * Long-running processes inside lab namespaces, tracked by their real PID.
 *
 * A process is started as `ip netns exec NS CMD...` with no shell in between: `ip` enters
 * the namespace and execs CMD, so the PID we get from spawn is CMD's own PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { FwlbError } from '../lib/errors.js';
import { namespaceInode, namespacePids, pidCmdline, pidNamespaceInode } from './netns.js';

export interface ExitInfo {
  /** Exit code, or null if killed by a signal or unknown (a process we did not spawn). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Append stdout and stderr to this file. */
  log?: string;
  /** Keep stdout and stderr in memory, readable with `output()` (ignored when `log` is set). */
  capture?: boolean;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

const POLL_MS = 20;

/** True if the PID names a live process (a zombie counts as exited). */
export function pidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // Field 3, after "pid (comm)"; comm may contain spaces and parentheses.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Sends a signal; false if the process no longer exists. */
export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/** Waits until none of the PIDs is alive; false on timeout. */
export async function waitPidsGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (pids.every((p) => !pidAlive(p))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
}

/** The environment for lab processes: ours, minus what would make a child node act as a test. */
function childEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

/**
 * A process running in a lab namespace. Either spawned by this Node process (exit code and
 * signal known) or attached by PID from the lab's state file (exit noticed by polling /proc).
 */
export class ProcessHandle {
  private exitInfo: ExitInfo | null = null;
  private readonly exitWaiters: ((e: ExitInfo) => void)[] = [];
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];

  private constructor(
    readonly pid: number,
    readonly ns: string,
    readonly argv: readonly string[],
    readonly log: string | null,
    private readonly child: ChildProcess | null,
  ) {}

  /**
   * Spawns `ip netns exec NS ...argv`, detached (its own process group, so it outlives a CLI
   * that started it) and unreferenced (it never keeps our event loop alive on its own).
   */
  static spawn(ns: string, argv: readonly string[], opts: SpawnOptions = {}): ProcessHandle {
    if (argv.length === 0) throw new FwlbError('ERR_LAB_SPAWN', 'spawn: empty command');
    const fd = opts.log ? openSync(opts.log, 'a') : null;
    const mode = fd !== null ? fd : opts.capture ? 'pipe' : 'ignore';
    let child: ChildProcess;
    try {
      child = spawn('ip', ['netns', 'exec', ns, ...argv], {
        detached: true,
        stdio: ['ignore', mode, mode],
        env: childEnv(opts.env),
      });
    } finally {
      if (fd !== null) closeSync(fd);
    }
    if (child.pid === undefined) {
      throw new FwlbError('ERR_LAB_SPAWN', `cannot spawn ip netns exec ${ns} ${argv.join(' ')}`);
    }
    const h = new ProcessHandle(child.pid, ns, [...argv], opts.log ?? null, child);
    child.on('exit', (code, signal) => h.settle({ code, signal }));
    child.on('error', () => h.settle({ code: null, signal: null }));
    if (child.stdout && child.stderr) {
      child.stdout.on('data', (b: Buffer) => h.out.push(b));
      child.stderr.on('data', (b: Buffer) => h.err.push(b));
      (child.stdout as Socket).unref();
      (child.stderr as Socket).unref();
    }
    child.unref();
    return h;
  }

  /**
   * Resolves once `ip` has entered the namespace and exec'd the command (from then on the
   * PID is the command's own); throws ERR_LAB_SPAWN if it exits first (e.g. no such
   * namespace or program) or does not get there within `timeoutMs`.
   */
  async started(timeoutMs = 5000): Promise<void> {
    if (!this.child) return;
    const ipArgv = ['ip', 'netns', 'exec', this.ns, ...this.argv].join('\0');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const cmd = pidCmdline(this.pid);
      if (this.exitInfo || cmd === null) {
        await this.wait(1000).catch(() => undefined);
        const why = this.log ? `see ${this.log}` : this.output().stderr.trim() || 'no output';
        throw new FwlbError('ERR_LAB_SPAWN', `${this.argv.join(' ')} in ${this.ns} exited at once (${JSON.stringify(this.exitInfo)}): ${why}`);
      }
      if (cmd.join('\0') !== ipArgv) return;
      if (Date.now() >= deadline) throw new FwlbError('ERR_LAB_SPAWN', `${this.argv.join(' ')} in ${this.ns}: not started after ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /** A handle on a process started elsewhere (e.g. by `fwlb lab up` in another process). */
  static attach(pid: number, ns: string, argv: readonly string[], log: string | null): ProcessHandle {
    return new ProcessHandle(pid, ns, [...argv], log, null);
  }

  private settle(e: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = e;
    for (const w of this.exitWaiters.splice(0)) w(e);
  }

  /** True while the process runs. */
  alive(): boolean {
    if (this.exitInfo) return false;
    if (this.child) return true;
    // An attached PID counts only while it still lives in its namespace (PIDs get reused).
    const ino = pidNamespaceInode(this.pid);
    if (pidAlive(this.pid) && ino !== null && ino === namespaceInode(this.ns)) return true;
    this.settle({ code: null, signal: null });
    return false;
  }

  /** How it exited, or null while it runs. */
  exit(): ExitInfo | null {
    this.alive();
    return this.exitInfo;
  }

  /** Sends a signal (default SIGTERM); false if the process had already exited. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (!this.alive()) return false;
    return signalPid(this.pid, signal);
  }

  /** Resolves when the process has exited; rejects with ERR_LAB_TIMEOUT after `timeoutMs`. */
  async wait(timeoutMs?: number): Promise<ExitInfo> {
    const done = this.exit();
    if (done) return done;
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    if (this.child) {
      // Keep the loop alive while someone waits for this child.
      this.child.ref();
      try {
        return await new Promise<ExitInfo>((resolve, reject) => {
          const timer = Number.isFinite(deadline)
            ? setTimeout(() => reject(this.timeoutError(timeoutMs ?? 0)), timeoutMs)
            : null;
          this.exitWaiters.push((e) => {
            if (timer) clearTimeout(timer);
            resolve(e);
          });
        });
      } finally {
        this.child.unref();
      }
    }
    for (;;) {
      const e = this.exit();
      if (e) return e;
      if (Date.now() >= deadline) throw this.timeoutError(timeoutMs ?? 0);
      await sleep(POLL_MS);
    }
  }

  /** SIGTERM (or `signal`), wait up to `timeoutMs`, then SIGKILL. Resolves with the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<ExitInfo> {
    this.kill(signal);
    try {
      return await this.wait(timeoutMs);
    } catch {
      this.kill('SIGKILL');
      return this.wait(2000);
    }
  }

  /** What the process wrote, when spawned with `capture: true`. */
  output(): { stdout: string; stderr: string } {
    return { stdout: Buffer.concat(this.out).toString(), stderr: Buffer.concat(this.err).toString() };
  }

  private timeoutError(ms: number): FwlbError {
    return new FwlbError('ERR_LAB_TIMEOUT', `pid ${this.pid} (${this.argv.join(' ')}) still running after ${ms} ms`);
  }
}

/**
 * SIGKILLs every process in a namespace (`ip netns pids`), in rounds until none is left
 * (a dying parent may have forked). Returns the PIDs killed; never kills the caller.
 */
export async function killNamespaceProcesses(ns: string, timeoutMs = 3000): Promise<number[]> {
  const killed: number[] = [];
  for (let round = 0; round < 5; round++) {
    const pids = (await namespacePids(ns)).filter((p) => p !== process.pid);
    if (pids.length === 0) break;
    for (const p of pids) if (signalPid(p, 'SIGKILL')) killed.push(p);
    if (!(await waitPidsGone(pids, timeoutMs))) {
      throw new FwlbError('ERR_LAB_KILL', `processes in ${ns} survived SIGKILL: ${pids.filter(pidAlive).join(' ')}`);
    }
  }
  return killed;
}
