/**
 * The cluster file of a lab with the state sync on: a fresh random cluster key and the
 * lab's cluster (examples/lab.yaml, or `text`) naming it, both in the lab's state folder.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Lab } from './lab.js';
import { REPO_ROOT } from './paths.js';

/** Writes `cluster.key` and `cluster.yaml` into the lab's state folder; returns the yaml's path. */
export async function writeSyncedCluster(lab: Lab, text?: string): Promise<string> {
  await writeFile(`${lab.stateDir}/cluster.key`, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  const base = text ?? (await readFile(`${REPO_ROOT}/examples/lab.yaml`, 'utf8'));
  const cfg = `${lab.stateDir}/cluster.yaml`;
  await writeFile(cfg, base.replace('  name: lab\n', '  name: lab\n  key_file: cluster.key\n'));
  return cfg;
}
