/** The lab's public surface, for integration tests, the demo and benchmarks. */
export { Lab, labDown, labStatus, labUp, openLab, verifyLab } from './lab.js';
export type { DownReport, LabStatus, LinkStatus, NamespaceStatus, PingOptions, UpOptions } from './lab.js';
export type { PingResult } from './ping.js';
export { ProcessHandle } from './processes.js';
export type { ExitInfo, SpawnOptions } from './processes.js';
export type { ProcessKind, ProcessRecord } from './state.js';
export {
  DEFAULT_PREFIX, DEFAULT_TOPOLOGY, LAB_SUBNETS, LAB_VIPS, TOPOLOGIES, describeLab, findHost, findIface,
} from './topology.js';
export type { HostRole, HostSpec, IfaceSpec, LabCounts, LabOptions, LabSpec, TopologyName } from './topology.js';
export { BACKEND_SERVER_JS, CLI_MAIN_JS, PING_JS, PROBE_JS, REPO_ROOT } from './paths.js';
