/**
 * What a node announces by BGP (issue 26), as one pure function of what it knows: its
 * readiness (cluster events: ruleset applied, VRRP running, table complete, shared links up),
 * each service's availability (the health checks), and where its stop is. The service
 * (services/bgp.ts) applies the answer to BIRD and to the kill-switch device.
 *
 * - A node that is not ready announces nothing: its device is down, so BIRD withdraws every
 *   route at once, whatever the file says (a restarted node never announces before its
 *   table is complete: Cilium's lesson).
 * - A service's address is announced while the service has an available backend (kube-vip's
 *   lesson: a node whose backends all fail withdraws); `bgp.addresses` while ready.
 * - A graceful stop drains first: the same routes tagged GRACEFUL_SHUTDOWN, the device kept
 *   up even though the node is no longer "ready" (the stop made it so), for `drain`; then
 *   everything is withdrawn, and only then does the node hand over its VIPs and buckets.
 */

/** Where the node's stop is: running, draining (tagged, still announced), withdrawn (stopped). */
export type BgpPhase = 'running' | 'draining' | 'withdrawn';

export interface BgpInputs {
  ready: boolean;
  phase: BgpPhase;
  /** Each service's address and whether it has an available backend now. */
  services: readonly { name: string; address: string; available: boolean }[];
  /** `bgp.addresses`: announced while the node is ready. */
  extra: readonly string[];
}

export interface BgpDesired {
  /** The kill switch: down withdraws every route of the node at once. */
  deviceUp: boolean;
  /** The addresses in the file (announced while the device is up). */
  addresses: string[];
  gracefulShutdown: boolean;
  /** Why, for status and the log: "announcing 2 addresses", "not ready: ...". */
  why: string;
}

export function desiredAnnouncement(i: BgpInputs, notReadyReason = 'not ready'): BgpDesired {
  if (i.phase === 'withdrawn') return { deviceUp: false, addresses: [], gracefulShutdown: false, why: 'stopped: withdrawn' };
  const withdrawn = i.services.filter((s) => !s.available).map((s) => s.address);
  const addresses = [...new Set([...i.services.filter((s) => s.available).map((s) => s.address), ...i.extra])];
  // An address served by two services stays while either has a backend.
  const none = [...new Set(withdrawn)].filter((a) => !addresses.includes(a));
  const tail = none.length ? `; withdrawn for want of a backend: ${none.join(', ')}` : '';
  if (i.phase === 'draining') return { deviceUp: true, addresses, gracefulShutdown: true, why: `draining: ${addresses.length} tagged GRACEFUL_SHUTDOWN${tail}` };
  if (!i.ready) return { deviceUp: false, addresses, gracefulShutdown: false, why: `${notReadyReason}: nothing announced` };
  return { deviceUp: true, addresses, gracefulShutdown: false, why: `announcing ${addresses.length}${tail}` };
}

/** Two answers that need nothing done between them. */
export function sameAnnouncement(a: BgpDesired, b: BgpDesired): boolean {
  return a.deviceUp === b.deviceUp && a.gracefulShutdown === b.gracefulShutdown && a.addresses.length === b.addresses.length && a.addresses.every((x, k) => x === b.addresses[k]);
}
