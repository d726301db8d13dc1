/**
 * The lab's state file, `<stateDir>/lab.json`: which lab was built and which processes it
 * started. Written atomically (temp file + rename). A missing or corrupt file reads as
 * null: `down` must work without it.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { LabSpec } from './topology.js';

export const STATE_VERSION = 1;

export type ProcessKind = 'server' | 'daemon' | 'process';

export interface ProcessRecord {
  pid: number;
  /** Node name (fw1, web1). */
  node: string;
  ns: string;
  kind: ProcessKind;
  argv: string[];
  log: string | null;
  startedAt: string;
}

export interface LabState {
  version: typeof STATE_VERSION;
  spec: LabSpec;
  createdAt: string;
  processes: ProcessRecord[];
  /** Nodes crashed by failure injection and not yet recovered. */
  crashed: string[];
}

export function stateFile(stateDir: string): string {
  return `${stateDir}/lab.json`;
}

export type StateRead = { ok: true; state: LabState } | { ok: false; reason: 'missing' | 'corrupt'; detail: string };

/** Reads the state file; never throws. */
export function readState(stateDir: string): StateRead {
  let text: string;
  try {
    text = readFileSync(stateFile(stateDir), 'utf8');
  } catch (e) {
    return { ok: false, reason: 'missing', detail: (e as Error).message };
  }
  try {
    const v = JSON.parse(text) as Partial<LabState>;
    if (v.version !== STATE_VERSION || typeof v.spec !== 'object' || !Array.isArray(v.processes)) {
      return { ok: false, reason: 'corrupt', detail: 'unexpected shape or version' };
    }
    return { ok: true, state: { crashed: [], ...v } as LabState };
  } catch (e) {
    return { ok: false, reason: 'corrupt', detail: (e as Error).message };
  }
}

export function writeState(stateDir: string, state: LabState): void {
  mkdirSync(stateDir, { recursive: true });
  const file = stateFile(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, file);
}

/**
 * Read-modify-write of the state file (synchronous, so two updates from one process never
 * interleave). Does nothing if the lab has no readable state.
 */
export function updateState(stateDir: string, fn: (s: LabState) => void): void {
  const r = readState(stateDir);
  if (!r.ok) return;
  fn(r.state);
  writeState(stateDir, r.state);
}
