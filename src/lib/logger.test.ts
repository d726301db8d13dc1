import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from './logger.js';

test('every line is in the file when the log call returns (no line held in memory, no write in flight)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fwlb-log-'));
  const file = join(dir, 'daemon.log');
  const fd = openSync(file, 'a');
  try {
    const log = createLogger('info', fd).child({ node: 'fw1' });
    // Several lines with no turn of the event loop between them, then read at once: an
    // asynchronous destination holds all but (at most) the first in memory here.
    for (let i = 0; i < 5; i++) log.error({ event: 'reload_failed', i }, 'reload failed');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 5, `lines in the file right after logging: ${lines.length}`);
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { i: number; node: string }).i), [0, 1, 2, 3, 4]);
    assert.equal((JSON.parse(lines[0]!) as { node: string }).node, 'fw1');
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
