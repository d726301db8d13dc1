import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('../../../examples/fwlb.service', import.meta.url));

/** The unit's [Service] settings (the last value of a key repeated). */
function service(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) section = sec[1]!;
    else if (section === 'Service') {
      const eq = line.indexOf('=');
      out[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

test('examples/fwlb.service passes systemd-analyze verify', () => {
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  assert.ok(!r.error, `systemd-analyze: ${r.error?.message} (bash scripts/setup.sh installs it: package systemd)`);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stderr, /fwlb\.service:/, 'no warning about the unit either');
});

test('the unit: Type=notify from the main process, the watchdog, only the capabilities the daemon needs', () => {
  const s = service(readFileSync(UNIT, 'utf8'));
  assert.equal(s.Type, 'notify');
  assert.equal(s.NotifyAccess, 'main');
  assert.match(s.WatchdogSec ?? '', /^\d+s$/);
  assert.match(s.ExecReload ?? '', /kill -HUP \$MAINPID/);
  assert.equal(s.ExecStartPost, undefined, 'no polling for readiness: the daemon says when it is ready');
  assert.deepEqual((s.CapabilityBoundingSet ?? '').split(' ').sort(), ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_NICE']);
  assert.equal(s.NoNewPrivileges, 'yes');
  assert.equal(s.ProtectSystem, 'strict');
  assert.equal(s.ReadWritePaths, '/run/fwlb /etc/fwlb', "the control socket's directory and the config's (a pushed config is written in place), nothing else");
  assert.equal(s.StateDirectory, 'fwlb', 'the config versions kept under /var/lib/fwlb');
});
