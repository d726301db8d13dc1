/**
 * The health probe registry: the configured check kind picks the plug-in.
 */
import type { HealthConfig } from '../../config/schema.js';
import { httpProbe } from './http.js';
import type { Probe, ProbeKind, ProbeRegistry } from './probe.js';
import { scriptProbe } from './script.js';
import { tcpProbe } from './tcp.js';

export type { Probe, ProbeKind, ProbeRegistry, ProbeResult, ProbeTarget } from './probe.js';
export { describeError, timeoutDetail } from './probe.js';
export { tcpProbe } from './tcp.js';
export { httpProbe, hostHeader } from './http.js';
export { scriptProbe, scriptEnv } from './script.js';

/** The real probes, one per kind. Stateless, so one shared registry is safe. */
export const probes: ProbeRegistry = Object.freeze({ tcp: tcpProbe, http: httpProbe, script: scriptProbe });

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

/** The probe for a health config from `registry` (default: the real probes). */
export function probeFor(check: HealthConfig, registry: ProbeRegistry = probes): Probe | undefined {
  const kind = checkKind(check);
  return kind === undefined ? undefined : registry[kind];
}
