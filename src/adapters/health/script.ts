/**
 * The script probe: runs `check.script.path` with `check.script.args`, without a shell;
 * healthy iff it exits 0 within the timeout (keepalived's MISC_CHECK).
 *
 * The script sees `FWLB_SERVICE`, `FWLB_BACKEND`, `FWLB_ADDRESS`, `FWLB_PORT` and the
 * daemon's `PATH`, and nothing else of the daemon's environment. Its output is ignored.
 * It runs in a process group of its own; on timeout the group is killed with SIGKILL
 * (by the script's PID, which is the group's id), so helpers it forked die with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { settleOnce } from './probe.js';
import { describeError } from '../../lib/errors.js';
import type { Probe, ProbeResult, ProbeTarget } from '../../ports/health.js';

/** The environment a check script runs with. */
export function scriptEnv(target: ProbeTarget): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    FWLB_SERVICE: target.service,
    FWLB_BACKEND: target.backend,
    FWLB_ADDRESS: target.address,
    FWLB_PORT: String(target.port),
  };
}

/** Kills the script's process group, or at least the script, with SIGKILL. */
function killScript(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

export const scriptProbe: Probe = {
  kind: 'script',
  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    return new Promise((resolve) => {
      const script = target.check.script;
      let child: ChildProcess | undefined;
      const { finish } = settleOnce(timeoutMs, () => child && killScript(child), resolve);
      if (!script) {
        finish(false, 'no script configured');
        return;
      }
      try {
        child = spawn(script.path, script.args, { shell: false, stdio: 'ignore', detached: true, env: scriptEnv(target) });
      } catch (e) {
        finish(false, describeError(e));
        return;
      }
      child.on('error', (e) => finish(false, describeError(e)));
      child.once('exit', (code, signal) => {
        if (code === 0) finish(true, 'exit 0');
        else finish(false, code !== null ? `exit ${code}` : `killed by ${signal ?? 'a signal'}`);
      });
    });
  },
};
