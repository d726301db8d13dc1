/**
 * The README's main command: `fwlb demo` runs end to end and every check passes (root); its
 * HTML report, opened in headless Chromium, shows a timeline per failover (with
 * UPDATE_SCREENSHOTS=1 its picture replaces docs/demo-report.png, the README's).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';
import { runRaw } from '../src/lib/exec.js';
import { CLI_MAIN_JS, REPO_ROOT } from '../src/lab/paths.js';
import { listNamespaces } from '../src/lab/netns.js';

test('fwlb demo passes every check and leaves nothing behind; its report shows a timeline per failover in Chromium', async () => {
  const dir = await mkdtemp(`${tmpdir()}/fwlb-demo-test-`);
  try {
    const report = `${dir}/report.html`;
    const r = await runRaw(process.execPath, [CLI_MAIN_JS, 'demo', '--prefix', 'tdemo', '--report', report]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /(\d+)\/\1 checks passed/);
    assert.doesNotMatch(r.stdout, /^FAIL/m);
    assert.ok(r.stdout.includes(`report: ${report}`), 'the report\'s path is printed');
    assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith('tdemo-')), []);
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      // Offline: the file needs nothing from anywhere.
      await page.route('**', (route) => (route.request().url().startsWith('file://') ? route.continue() : route.abort()));
      await page.goto(`file://${report}`);
      assert.equal(await page.locator('svg.timeline').count(), 3, 'a timeline per failover');
      assert.equal(await page.locator('svg.timeline line.takeover').count(), 3, 'each shows when fw2 became master');
      assert.match((await page.locator('#summary').textContent()) ?? '', /^(\d+)\/\1 checks passed$/);
      for (const gap of await page.locator('.failover .gap').allTextContents()) assert.match(gap, /^longest gap \d+ ms$/);
      const box = await page.locator('svg.timeline').first().boundingBox();
      assert.ok(box && box.width > 500 && box.height > 100, 'the timeline is drawn');
      const shot = `${dir}/demo-report.png`;
      await page.screenshot({ path: shot, fullPage: true });
      if (process.env.UPDATE_SCREENSHOTS === '1') await copyFile(shot, `${REPO_ROOT}/docs/demo-report.png`);
    } finally {
      await browser.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('fwlb demo --active-active passes every check and leaves nothing behind', async () => {
  const r = await runRaw(process.execPath, [CLI_MAIN_JS, 'demo', '--active-active', '--prefix', 'tdaa']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /(\d+)\/\1 checks passed/);
  assert.match(r.stdout, /each node carries about a third/);
  assert.doesNotMatch(r.stdout, /^FAIL/m);
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith('tdaa-')), []);
});
