/** Decodes the args of a `backend` control request into a command; never throws. */
import type { BackendCommand } from '../services/balancer.js';
import { parseAddressPort } from '../lib/ip.js';
export { parseAddressPort } from '../lib/ip.js';

import type { Decoded } from './protocol.js';

const OPS = ['drain', 'disable', 'enable', 'remove', 'weight', 'add'] as const;
const isName = (v: unknown): v is string => typeof v === 'string' && /^[a-z][a-z0-9_-]{0,30}$/.test(v);
const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

export function decodeBackendCommand(a: Record<string, unknown>): Decoded<BackendCommand> {
  const op = a.op;
  if (typeof op !== 'string' || !(OPS as readonly string[]).includes(op)) return { ok: false, reason: `op must be one of ${OPS.join(', ')}` };
  if (!isName(a.service)) return { ok: false, reason: 'service must be a service name' };
  if (!isName(a.backend)) return { ok: false, reason: 'backend must be a backend name (lowercase letters, digits, _ and -)' };
  const base = { service: a.service, backend: a.backend };
  switch (op) {
    case 'weight':
      if (!isInt(a.weight, 0, 1000)) return { ok: false, reason: 'weight must be an integer from 0 to 1000' };
      return { ok: true, value: { op, ...base, weight: a.weight } };
    case 'add': {
      // The same reading as the config's: no zone ids ("fe80::1%eth0"), nothing nft would refuse.
      const parsed = typeof a.address === 'string' ? parseAddressPort(a.address) : undefined;
      if (!parsed || parsed.port !== undefined) return { ok: false, reason: 'address must be an IP address' };
      if (a.port !== undefined && !isInt(a.port, 1, 65535)) return { ok: false, reason: 'port must be from 1 to 65535' };
      if (a.weight !== undefined && !isInt(a.weight, 0, 1000)) return { ok: false, reason: 'weight must be an integer from 0 to 1000' };
      return {
        ok: true,
        value: { op, ...base, address: parsed.address, ...(a.port !== undefined ? { port: a.port as number } : {}), ...(a.weight !== undefined ? { weight: a.weight as number } : {}) },
      };
    }
    default:
      return { ok: true, value: { op: op as 'drain' | 'disable' | 'enable' | 'remove', ...base } };
  }
}
