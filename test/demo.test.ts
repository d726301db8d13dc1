/**
 * The README's main command: `fwlb demo` runs end to end and every check passes (root); its
 * HTML report, opened in headless Chromium, shows a timeline per failover (with
 * UPDATE_SCREENSHOTS=1 its picture replaces docs/demo-report.png, the README's); so does the
 * active-active demo's, with the buckets per node over time (docs/demo-aa-report.png), and
 * the BGP demo's, with the router's next hops per node over time (docs/demo-bgp-report.png).
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

test('fwlb demo --active-active passes every check and leaves nothing behind; its report draws the buckets per node over the crash and the rejoin', async () => {
  const dir = await mkdtemp(`${tmpdir()}/fwlb-demo-aa-test-`);
  try {
    const report = `${dir}/report.html`;
    const r = await runRaw(process.execPath, [CLI_MAIN_JS, 'demo', '--active-active', '--prefix', 'tdaa', '--report', report]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /(\d+)\/\1 checks passed/);
    assert.match(r.stdout, /each node carries about a third/);
    assert.doesNotMatch(r.stdout, /^FAIL/m);
    assert.ok(r.stdout.includes(`report: ${report}`), 'the report\'s path is printed');
    assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith('tdaa-')), []);
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      await page.route('**', (route) => (route.request().url().startsWith('file://') ? route.continue() : route.abort()));
      await page.goto(`file://${report}`);
      assert.equal(await page.locator('svg.buckets').count(), 1);
      assert.match((await page.locator('#summary').textContent()) ?? '', /^(\d+)\/\1 checks passed$/);
      const marks = await page.locator('svg.buckets text.band-label').allTextContents();
      assert.deepEqual(marks, ['fw3 crashes', 'fw3 started', 'three members']);
      // Each node drawn; fw3's bars stop at the crash and come back after it rejoined.
      const titles = await page.locator('svg.buckets rect title').allTextContents();
      for (const fw of ['fw1', 'fw2', 'fw3']) assert.ok(titles.some((t) => t.startsWith(`${fw}: `)), `${fw} is drawn`);
      const fw1Max = Math.max(...titles.filter((t) => t.startsWith('fw1: ')).map((t) => Number(/: (\d+) buckets/.exec(t)![1])));
      assert.ok(fw1Max > 1800, `fw1 took part of fw3's buckets while it was down (at most ${fw1Max})`);
      await page.screenshot({ path: `${dir}/demo-aa-report.png`, fullPage: true });
      if (process.env.UPDATE_SCREENSHOTS === '1') await copyFile(`${dir}/demo-aa-report.png`, `${REPO_ROOT}/docs/demo-aa-report.png`);
    } finally {
      await browser.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('fwlb demo --bgp passes every check and leaves nothing behind; its report draws the router\'s next hops per node through the four changes', async () => {
  const dir = await mkdtemp(`${tmpdir()}/fwlb-demo-bgp-test-`);
  try {
    const report = `${dir}/report.html`;
    const r = await runRaw(process.execPath, [CLI_MAIN_JS, 'demo', '--bgp', '--prefix', 'tdbg', '--report', report]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /(\d+)\/\1 checks passed/);
    assert.match(r.stdout, /fw3 crashed: the router drops it/);
    assert.doesNotMatch(r.stdout, /^FAIL/m);
    assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith('tdbg-')), []);
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      await page.route('**', (route) => (route.request().url().startsWith('file://') ? route.continue() : route.abort()));
      await page.goto(`file://${report}`);
      assert.match((await page.locator('#summary').textContent()) ?? '', /^(\d+)\/\1 checks passed$/);
      assert.deepEqual(await page.locator('svg.buckets text.band-label').allTextContents(), ['fw4 started', 'fw2 drained', 'fw3 crashed', 'fw1 backends down']);
      // Per sample, each node in the router's set is drawn: fw4 appears, fw2 and fw3 go, fw4 stays to the end.
      const titles = await page.locator('svg.buckets rect title').allTextContents();
      const at = (fw: string) => titles.filter((t) => t.startsWith(`${fw}: 1 next hop at `)).map((t) => Number(/at ([\d.]+) s/.exec(t)![1]));
      assert.ok(at('fw4').length > 0 && at('fw2').length > 0 && at('fw3').length > 0, 'fw2, fw3 and fw4 were each in the set');
      assert.ok(Math.min(...at('fw4')) > Math.min(...at('fw2')), 'fw4 joined after the start');
      assert.ok(Math.max(...at('fw4')) > Math.max(...at('fw2')) && Math.max(...at('fw4')) > Math.max(...at('fw3')), 'fw2 and fw3 left before the end; fw4 stayed');
      await page.screenshot({ path: `${dir}/demo-bgp-report.png`, fullPage: true });
      if (process.env.UPDATE_SCREENSHOTS === '1') await copyFile(`${dir}/demo-bgp-report.png`, `${REPO_ROOT}/docs/demo-bgp-report.png`);
    } finally {
      await browser.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
