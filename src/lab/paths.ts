/**
 * Where the lab finds its programs: resolved from this module's own location
 * (dist/src/lab/paths.js -> repository root), never from the working directory.
 */
import { fileURLToPath } from 'node:url';

/** The repository root (the directory holding dist/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');

/** The compiled backend server run in client and web namespaces. */
export const BACKEND_SERVER_JS = `${REPO_ROOT}/dist/src/lab/backend-server.js`;
/** The compiled ICMP ping tool. */
export const PING_JS = `${REPO_ROOT}/dist/src/lab/ping.js`;
/** The fwlb CLI entry point that `startDaemon` runs. */
export const CLI_MAIN_JS = `${REPO_ROOT}/dist/src/cli/main.js`;
/** The compiled one-shot traffic probe (tcp echo / read, udp, http). */
export const PROBE_JS = `${REPO_ROOT}/dist/src/lab/probe.js`;
/** A long-lived TCP echo session that reports every stall (echo-session.ts). */
export const ECHO_SESSION_JS = `${REPO_ROOT}/dist/src/lab/echo-session.js`;
/** Sends one hand-made TCP segment through a raw socket (raw-tcp.ts). */
export const RAW_TCP_JS = `${REPO_ROOT}/dist/src/lab/raw-tcp.js`;
/** Many short TCP flows to a service, reporting who answered each (flows.ts). */
export const FLOWS_JS = `${REPO_ROOT}/dist/src/lab/flows.js`;
/** A steady prober of a service, for gaps and reaction times (prober.ts). */
export const PROBER_JS = `${REPO_ROOT}/dist/src/lab/prober.js`;
/** Many long-lived TCP sessions from one process (sessions.ts). */
export const SESSIONS_JS = `${REPO_ROOT}/dist/src/lab/sessions.js`;
/** Conntrack load and watch for the sync benchmark (ct-tool.ts). */
export const CT_TOOL_JS = `${REPO_ROOT}/dist/src/lab/ct-tool.js`;
/** A flood of bad datagrams at a state sync port (sync-flood.ts). */
export const SYNC_FLOOD_JS = `${REPO_ROOT}/dist/src/lab/sync-flood.js`;
/** Hand-made VRRP adverts from any source (vrrp-send.ts). */
export const VRRP_SEND_JS = `${REPO_ROOT}/dist/src/lab/vrrp-send.js`;
/** Listens for a router's VRRP adverts and reports their intervals (vrrp-listen.ts). */
export const VRRP_LISTEN_JS = `${REPO_ROOT}/dist/src/lab/vrrp-listen.js`;
/** Listens for gratuitous ARPs on an interface (arp-listen.ts). */
export const ARP_LISTEN_JS = `${REPO_ROOT}/dist/src/lab/arp-listen.js`;
/** VRRPv3 over IPv6 by hand: send or listen on a raw IPv6 socket (vrrp6-probe.ts). */
export const VRRP6_PROBE_JS = `${REPO_ROOT}/dist/src/lab/vrrp6-probe.js`;
export const NA_LISTEN_JS = `${REPO_ROOT}/dist/src/lab/na-listen.js`;
export const TOO_BIG_JS = `${REPO_ROOT}/dist/src/lab/too-big.js`;
