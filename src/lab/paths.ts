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
