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
import { chromium, type Page } from 'playwright-core';
import { runRaw } from '../src/lib/exec.js';
import { CLI_MAIN_JS, REPO_ROOT } from '../src/lab/paths.js';
import { listNamespaces } from '../src/lab/netns.js';

/**
 * Runs `fwlb demo ARGS` under `prefix`, checks what every demo must (exit 0, every check
 * passed, no FAIL, the report's path printed, no namespace left), opens its report offline in
 * headless Chromium, hands the page and the output to `look`, and saves a screenshot (copied
 * over docs/SHOT with UPDATE_SCREENSHOTS=1).
 */
async function demoReport(args: readonly string[], prefix: string, shot: string, look: (page: Page, stdout: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(`${tmpdir()}/fwlb-demo-${prefix}-`);
  try {
    const report = `${dir}/report.html`;
    const r = await runRaw(process.execPath, [CLI_MAIN_JS, 'demo', ...args, '--prefix', prefix, '--report', report]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /(\d+)\/\1 checks passed/);
    assert.doesNotMatch(r.stdout, /^FAIL/m);
    assert.ok(r.stdout.includes(`report: ${report}`), 'the report\'s path is printed');
    assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`)), []);
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      // Offline: the file needs nothing from anywhere.
      await page.route('**', (route) => (route.request().url().startsWith('file://') ? route.continue() : route.abort()));
      await page.goto(`file://${report}`);
      assert.match((await page.locator('#summary').textContent()) ?? '', /^(\d+)\/\1 checks passed$/);
      await look(page, r.stdout);
      await page.screenshot({ path: `${dir}/${shot}`, fullPage: true });
      if (process.env.UPDATE_SCREENSHOTS === '1') await copyFile(`${dir}/${shot}`, `${REPO_ROOT}/docs/${shot}`);
    } finally {
      await browser.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('fwlb demo passes every check and leaves nothing behind; its report shows a timeline per failover in Chromium', () =>
  demoReport([], 'tdemo', 'demo-report.png', async (page) => {
    assert.equal(await page.locator('svg.timeline').count(), 3, 'a timeline per failover');
    assert.equal(await page.locator('svg.timeline line.takeover').count(), 3, 'each shows when fw2 became master');
    for (const gap of await page.locator('.failover .gap').allTextContents()) assert.match(gap, /^longest gap \d+ ms$/);
    const box = await page.locator('svg.timeline').first().boundingBox();
    assert.ok(box && box.width > 500 && box.height > 100, 'the timeline is drawn');
  }));

test('fwlb demo --active-active passes every check and leaves nothing behind; its report draws the buckets per node over the crash and the rejoin', () =>
  demoReport(['--active-active'], 'tdaa', 'demo-aa-report.png', async (page, stdout) => {
    assert.match(stdout, /each node carries about a third/);
    assert.equal(await page.locator('svg.buckets').count(), 1);
    const marks = await page.locator('svg.buckets text.band-label').allTextContents();
    assert.deepEqual(marks, ['fw3 crashes', 'fw3 started', 'three members']);
    // Each node drawn; fw3's bars stop at the crash and come back after it rejoined.
    const titles = await page.locator('svg.buckets rect title').allTextContents();
    for (const fw of ['fw1', 'fw2', 'fw3']) assert.ok(titles.some((t) => t.startsWith(`${fw}: `)), `${fw} is drawn`);
    const fw1Max = Math.max(...titles.filter((t) => t.startsWith('fw1: ')).map((t) => Number(/: (\d+) buckets/.exec(t)![1])));
    assert.ok(fw1Max > 1800, `fw1 took part of fw3's buckets while it was down (at most ${fw1Max})`);
  }));

test('fwlb demo --bgp passes every check and leaves nothing behind; its report draws the router\'s next hops per node through the four changes', () =>
  demoReport(['--bgp'], 'tdbg', 'demo-bgp-report.png', async (page, stdout) => {
    assert.match(stdout, /fw3 crashed: the router drops it/);
    assert.deepEqual(await page.locator('svg.buckets text.band-label').allTextContents(), ['fw4 started', 'fw2 drained', 'fw3 crashed', 'fw1 backends down']);
    // Per sample, each node in the router's set is drawn: fw4 appears, fw2 and fw3 go, fw4 stays to the end.
    const titles = await page.locator('svg.buckets rect title').allTextContents();
    const at = (fw: string) => titles.filter((t) => t.startsWith(`${fw}: 1 next hop at `)).map((t) => Number(/at ([\d.]+) s/.exec(t)![1]));
    assert.ok(at('fw4').length > 0 && at('fw2').length > 0 && at('fw3').length > 0, 'fw2, fw3 and fw4 were each in the set');
    assert.ok(Math.min(...at('fw4')) > Math.min(...at('fw2')), 'fw4 joined after the start');
    assert.ok(Math.max(...at('fw4')) > Math.max(...at('fw2')) && Math.max(...at('fw4')) > Math.max(...at('fw3')), 'fw2 and fw3 left before the end; fw4 stayed');
  }));
