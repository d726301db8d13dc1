/**
 * The Debian package (issue 23): scripts/package-deb.sh builds it from this tree; unpacked
 * into an empty directory (no install), its CLI runs in place: `fwlb --version`, `fwlb
 * check` of the shipped example, `fwlb keygen`; its unit passes `systemd-analyze verify`; its
 * control file says what it needs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { REPO_ROOT } from '../src/lab/paths.js';

const run = (cmd: string, args: string[], cwd?: string) => spawnSync(cmd, args, { encoding: 'utf8', ...(cwd ? { cwd } : {}) });

test('the .deb: built from the tree, unpacked anywhere, its fwlb runs, checks the shipped example and makes a key; its unit verifies', () => {
  const dir = mkdtempSync(`${tmpdir()}/fwlb-pkg-`);
  try {
    const b = run('bash', [`${REPO_ROOT}/scripts/package-deb.sh`, `${dir}/out`]);
    assert.equal(b.status, 0, b.stderr);
    const deb = b.stdout.trim().split('\n').pop()!;
    assert.match(deb, /\/fwlb_0\.1\.0\+git[0-9a-f]{12}(\.dirty)?_[a-z0-9]+\.deb$/);
    const info = run('dpkg-deb', ['-f', deb, 'Depends']);
    assert.match(info.stdout, /nodejs \(>= 20\)/);
    assert.match(info.stdout, /nftables/);
    const files = run('dpkg-deb', ['-c', deb]).stdout;
    assert.doesNotMatch(files, /\/usr\/lib\/fwlb\/dist\/.*\.test\.js$/m, 'no tests of ours shipped');
    assert.doesNotMatch(files, /node_modules\/(typescript|fast-check)\//, 'no development modules shipped');
    const root = `${dir}/root`;
    assert.equal(run('dpkg-deb', ['-x', deb, root]).status, 0);
    const fwlb = `${root}/usr/bin/fwlb`;
    assert.ok(statSync(fwlb).mode & 0o111, 'fwlb is executable');
    const v = run(fwlb, ['--version']);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), '0.1.0');
    const c = run(fwlb, ['check', '-c', `${root}/etc/fwlb/cluster.yaml.example`]);
    assert.equal(c.status, 0, c.stdout + c.stderr);
    const k = run(fwlb, ['keygen', '-o', `${dir}/cluster.key`]);
    assert.equal(k.status, 0, k.stderr);
    assert.equal(statSync(`${dir}/cluster.key`).mode & 0o777, 0o600);
    assert.ok(existsSync(`${root}/usr/lib/fwlb/examples/dual-stack.yaml`), 'the demo finds its examples');
    const unit = `${root}/lib/systemd/system/fwlb.service`;
    const sa = run('systemd-analyze', ['verify', unit]);
    assert.equal(sa.status, 0, sa.stderr);
    // apt takes it: its dependencies resolve on this Debian (simulated), and, where no fwlb is
    // installed already, it installs for real (no maintainer scripts), runs from the PATH, and
    // is purged again.
    const sim = run('apt-get', ['install', '-s', deb]);
    assert.equal(sim.status, 0, sim.stdout + sim.stderr);
    assert.match(sim.stdout, /^Inst fwlb /m);
    if (!existsSync('/usr/bin/fwlb') && run('dpkg', ['-s', 'fwlb']).status !== 0) {
      try {
        const inst = run('apt-get', ['install', '-y', '--no-install-recommends', deb]);
        assert.equal(inst.status, 0, inst.stdout + inst.stderr);
        assert.equal(run('/usr/bin/fwlb', ['--version']).stdout.trim(), '0.1.0');
        assert.equal(run('/usr/bin/fwlb', ['check', '-c', '/etc/fwlb/cluster.yaml.example']).status, 0);
        assert.ok(existsSync('/lib/systemd/system/fwlb.service'));
      } finally {
        run('apt-get', ['purge', '-y', 'fwlb']);
      }
      assert.ok(!existsSync('/usr/bin/fwlb') && !existsSync('/etc/fwlb/cluster.yaml.example'), 'purged');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm pack: the build without its tests, the examples; npm install -g of the tarball gives a working fwlb', () => {
  const dir = mkdtempSync(`${tmpdir()}/fwlb-npm-`);
  try {
    const p = run('npm', ['pack', '--pack-destination', dir, '--loglevel=error'], REPO_ROOT);
    assert.equal(p.status, 0, p.stderr);
    const tgz = `${dir}/${p.stdout.trim().split('\n').pop()!}`;
    const list = run('tar', ['-tzf', tgz]).stdout;
    assert.match(list, /^package\/dist\/src\/cli\/main\.js$/m);
    assert.match(list, /^package\/examples\/lab\.yaml$/m);
    assert.doesNotMatch(list, /\.test\.js$/m);
    // From npm's cache (scripts/setup.sh filled it): no network needed.
    const g = run('npm', ['install', '-g', '--prefix', `${dir}/g`, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tgz]);
    assert.equal(g.status, 0, g.stderr);
    const v = run(`${dir}/g/bin/fwlb`, ['--version']);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), '0.1.0');
    const c = run(`${dir}/g/bin/fwlb`, ['check', '-c', `${dir}/g/lib/node_modules/fwlb/examples/lab.yaml`]);
    assert.equal(c.status, 0, c.stdout + c.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
