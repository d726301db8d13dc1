/**
 * Which probe a health config asks for, and the stable detail of a probe that ran out of
 * time: pure, shared by the health checker (services/) and the probes (adapters/health/).
 */
import type { HealthConfig } from '../../config/schema.js';
import type { Probe, ProbeKind, ProbeRegistry } from '../../ports/health.js';

/** The stable detail of a probe that ran out of time. */
export function timeoutDetail(timeoutMs: number): string {
  return `timeout after ${timeoutMs} ms`;
}

/**
 * The kind a health config asks for. The config cross-check demands exactly one; should
 * several be set anyway, the first of tcp, http, script wins. Undefined if none is.
 */
export function checkKind(check: HealthConfig): ProbeKind | undefined {
  if (check.tcp) return 'tcp';
  if (check.http) return 'http';
  if (check.script) return 'script';
  return undefined;
}

/** The probe for a health config from `registry`. */
export function probeFor(check: HealthConfig, registry: ProbeRegistry): Probe | undefined {
  const kind = checkKind(check);
  return kind === undefined ? undefined : registry[kind];
}
