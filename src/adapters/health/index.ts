/**
 * The health probe registry: the configured check kind picks the plug-in.
 */
import { httpProbe } from './http.js';
import type { ProbeRegistry } from '../../ports/health.js';
import { scriptProbe } from './script.js';
import { tcpProbe } from './tcp.js';

export { tcpProbe } from './tcp.js';
export { httpProbe, hostHeader } from './http.js';
export { scriptProbe, scriptEnv } from './script.js';

/** The real probes, one per kind. Stateless, so one shared registry is safe. */
export const probes: ProbeRegistry = Object.freeze({ tcp: tcpProbe, http: httpProbe, script: scriptProbe });
