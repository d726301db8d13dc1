/**
 * The live status page in a real browser (root; issue 23): headless Chromium (Debian's
 * `chromium`, driven by playwright-core) opens the backup's page (`fwlb run --metrics
 * 127.0.0.1:9780` inside its namespace: the browser runs there too, through a wrapper that
 * `ip netns exec`s it; playwright talks to it over a pipe), reads its state, and watches a
 * crash of the master appear without a reload: the group turns master, the VIPs are held, a
 * group_state event is listed. The screenshot is kept in the lab's folder (printed); with
 * UPDATE_SCREENSHOTS=1 it also replaces docs/status-page.png, the README's picture.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, readFile, writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { labUp, labDown, type Lab } from '../src/lab/lab.js';
import { writeSyncedCluster } from '../src/lab/cluster-file.js';
import { controlCall } from '../src/control/client.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI_MAIN_JS, REPO_ROOT } from '../src/lab/paths.js';
import type { NodeStatus } from '../src/services/node-daemon.js';
import { waitFor } from '../src/lib/wait.js';

const PREFIX = 'tsp';
let lab: Lab;
let config: string;

before(async () => {
  lab = await labUp({ prefix: PREFIX, topology: 'sandwich' });
  config = await writeSyncedCluster(lab, await readFile(`${REPO_ROOT}/examples/dual-stack.yaml`, 'utf8'));
});
after(async () => {
  if (!process.env.FWLB_KEEP_LAB) await labDown(PREFIX);
});

test('the status page in Chromium: the backup\'s page shows its state, and the master\'s crash appears in it live', async () => {
  const control = (fw: string) => `${lab.stateDir}/${fw}.sock`;
  const status = (fw: string) => controlCall(control(fw), 'status') as Promise<NodeStatus>;
  for (const fw of ['fw1', 'fw2']) lab.startDaemon(fw, ['run', '-c', config, '--node', fw, '--control', control(fw), '--metrics', '127.0.0.1:9780']);
  await waitFor('fw1 master, fw2 ready', async () => ((await status('fw1')).vrrp.groups[0]?.state === 'master' && (await status('fw2')).ready.ready ? true : undefined), 30_000);

  // The browser in fw2's namespace, where the page's loopback address is.
  const wrapper = `${lab.stateDir}/chromium-in-fw2.sh`;
  await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${lab.host('fw2').ns} /usr/bin/chromium "$@"\n`);
  await chmod(wrapper, 0o755);
  const browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto('http://127.0.0.1:9780/');
    await page.waitForFunction(() => document.getElementById('node')?.textContent === 'fw2');
    const groupState = () => page.locator('[data-group="edge"] > p .state').textContent();
    assert.equal(await groupState(), 'backup');
    assert.equal(await page.locator('#ready [data-ready]').getAttribute('data-ready'), 'true');
    assert.match((await page.locator('[data-instance="ext"] .master').textContent()) ?? '', /^198\.18\.0\.2 \(prio 200\)$/, "the master of VRID 51, as fw2 hears it");
    assert.ok((await page.locator('[data-service="web"] [data-backend]').count()) === 2, 'the web service with its two backends');
    assert.equal(await page.locator('[data-peer="fw1"] td').nth(1).textContent(), 'up');
    assert.ok(Number(await page.locator('[data-peer="fw1"] td').nth(3).textContent()) > 0, "fw1's BEATs counted");
    assert.match((await page.locator('[data-peer="fw1"] td').nth(4).textContent()) ?? '', /^\d+(\.\d)? (ms|s) ago$/, 'when fw1 was last heard');
    assert.equal(await page.locator('[data-sync-peer="fw1"] td').nth(1).textContent(), 'up', 'the sync link to fw1');
    assert.equal(await page.locator('[data-sync-peer="fw1"] td').nth(2).textContent(), 'complete', "fw1's table complete, as its HELLO says");

    // A push that waits for its confirm is flagged in the header, and the flag goes with the confirm.
    const cfgver = () => page.locator('#cfgver').textContent();
    // Version 0 (nothing pushed yet), the peer in step once fw2 has asked it (every 3 s until it has).
    await page.waitForFunction(() => document.getElementById('cfgver')?.textContent === ', version 0', undefined, { timeout: 10_000 });
    const fwlb = (args: string[]) => promisify(execFile)(process.execPath, [CLI_MAIN_JS, ...args, '--control', control('fw2')], { timeout: 60_000 });
    await fwlb(['config', 'push', config, '--confirm', '60s']);
    await page.waitForFunction(() => /not confirmed: rolls back in \d+ s/.test(document.getElementById('cfgver')?.textContent ?? ''), undefined, { timeout: 5000 });
    assert.match((await cfgver()) ?? '', /^, version 1 not confirmed/);
    await fwlb(['config', 'confirm']);
    await page.waitForFunction(() => document.getElementById('cfgver')?.textContent === ', version 1', undefined, { timeout: 5000 });

    // The master crashes; the page follows without a reload.
    const loads = { n: 0 };
    page.on('load', () => loads.n++);
    await lab.crash('fw1');
    await page.waitForFunction(() => document.querySelector('[data-group="edge"] > p .state')?.textContent === 'master', undefined, { timeout: 10_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('#events [data-event="group_state"]')].some((e) => /to master/.test(e.textContent ?? '')), undefined, { timeout: 5000 });
    assert.match((await page.locator('[data-group="edge"] > p .mute').textContent()) ?? '', /holds .*198\.18\.0\.100/);
    assert.equal(loads.n, 0, 'no reload of the page');
    const shot = `${lab.stateDir}/status-page.png`;
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# screenshot: ${shot}`);
    if (process.env.UPDATE_SCREENSHOTS === '1') await copyFile(shot, `${REPO_ROOT}/docs/status-page.png`);
  } finally {
    await browser.close();
    await lab.gracefulStop('fw2').catch(() => undefined);
  }
});
