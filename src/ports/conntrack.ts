/**
 * Port: what the load balancer needs of connection tracking (the flows of a virtual
 * service, per backend). Implemented by adapters/netlink/ctnetlink.ts (the daemon's) and
 * adapters/conntrack.ts (conntrack(8), the reference the lab test compares against).
 */
export interface FlowSummary {
  /** Reply source (the backend after DNAT) "address:port" -> flows, and established ones. */
  byBackend: Map<string, { flows: number; established: number }>;
}

export interface ServiceKey {
  address: string;
  port: number;
  proto: 'tcp' | 'udp';
  family: 4 | 6;
}

export interface Conntrack {
  /** The flows whose original destination is the service. */
  serviceFlows(s: ServiceKey): Promise<FlowSummary>;
  /** Deletes the flows of the service that go to one backend; returns how many. */
  deleteBackendFlows(s: ServiceKey, backend: { address: string; port: number }): Promise<number>;
}
