/**
 * Port: health probes as the health checker drives them (ENGINEERING.md, convention 8: one
 * interface, one module per kind, a registry). The real probes are adapters/health/.
 */
import type { HealthConfig } from '../config/schema.js';

export type ProbeKind = 'tcp' | 'http' | 'script';

/** What to check: one backend of one service, with the service's health config. */
export interface ProbeTarget {
  service: string;
  backend: string;
  address: string;
  /** The backend's port; a check may override it (`tcp.port`, `http.port`). */
  port: number;
  family: 4 | 6;
  check: HealthConfig;
}

export interface ProbeResult {
  ok: boolean;
  /** Short and stable for identical failures (logs are rate-limited on it): "connect ECONNREFUSED". */
  detail: string;
  /** Elapsed milliseconds, rounded. */
  ms: number;
}

export interface Probe {
  readonly kind: ProbeKind;
  /** Checks `target` once; resolves within about `timeoutMs`, never rejects. */
  run(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult>;
}

/** A probe registry: one probe per kind. */
export type ProbeRegistry = Readonly<Record<ProbeKind, Probe>>;
