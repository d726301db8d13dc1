/**
 * Sends one command to a running node's control socket and returns its result. A node that
 * closes the connection without answering (it died with the request read) is an error at
 * once, not a wait for the timeout.
 */
import { createConnection } from 'node:net';
import { FwlbError } from '../lib/errors.js';
import type { ControlResponse } from './protocol.js';

export function defaultControlPath(node: string): string {
  return `/run/fwlb/${node}.sock`;
}

export function controlCall(path: string, cmd: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = '';
    let settled = false;
    const timer = setTimeout(() => { settled = true; s.destroy(); reject(new FwlbError('ERR_CONTROL_TIMEOUT', `no answer from ${path} within ${timeoutMs} ms`)); }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify({ id: 1, cmd, ...(args ? { args } : {}) }) + '\n'));
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      settled = true;
      clearTimeout(timer);
      s.end();
      let resp: ControlResponse;
      try {
        resp = JSON.parse(buf.slice(0, nl)) as ControlResponse;
      } catch {
        reject(new FwlbError('ERR_CONTROL_PROTOCOL', `garbled answer from ${path}`));
        return;
      }
      if (resp.ok) resolve(resp.result);
      else reject(new FwlbError(resp.error.code, resp.error.message));
    });
    s.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new FwlbError('ERR_CONTROL_CONNECT', `cannot reach the node at ${path}: ${e.message}`, { cause: e }));
    });
    s.on('close', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new FwlbError('ERR_CONTROL_CLOSED', `the node at ${path} closed the connection without answering (it stopped or died)`));
    });
  });
}
