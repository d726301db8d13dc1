/**
 * Test helper (not a test file): a probe target on 127.0.0.1 with a health config built
 * from the defaults plus `check`.
 */
import type { HealthConfig } from '../../config/schema.js';
import type { ProbeTarget } from '../../ports/health.js';

export function loopbackTarget(port: number, check: Partial<HealthConfig>): ProbeTarget {
  return {
    service: 'web',
    backend: 'web1',
    address: '127.0.0.1',
    port,
    family: 4,
    check: { interval: 1000, timeout: 500, rise: 2, fall: 3, ...check },
  };
}
