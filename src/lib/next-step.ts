/**
 * What to do next after a CLI error (issue 23: every CLI error says what to do next): one
 * line, `next: ...`, chosen by the error's code where it has one, else by the command.
 * Pure: the CLI prints it under the error.
 */

/** The next step after an error talking to a running node over its control socket. */
export function controlNextStep(code: string | undefined): string {
  switch (code) {
    case 'ERR_CONTROL_CONNECT':
      return 'start the node (`fwlb run -c FILE -n NODE`, or `systemctl start fwlb`), or point at its socket with --control PATH (or its name with -n NODE)';
    case 'ERR_CONTROL_CLOSED':
      return 'the node stopped while answering: see whether it runs (`systemctl status fwlb`) and read its log (`journalctl -u fwlb`), then try again';
    case 'ERR_CONTROL_TIMEOUT':
      return 'the node is busy or hung: read its log (`journalctl -u fwlb`), and try again; under systemd the watchdog restarts a hung daemon';
    case 'ERR_CONTROL_PROTOCOL':
      return 'the socket is not an fwlb node of this version: check --control PATH, and run the same fwlb release as the daemon';
    case 'ERR_STARTING':
      return 'wait until it is ready (`fwlb status --wait-ready`), then try again';
    case 'ERR_NO_SERVICE':
    case 'ERR_NO_BACKEND':
      return '`fwlb status` lists the services and their backends (the error names them too)';
    case 'ERR_BACKEND_EXISTS':
      return 'pick another name or address, or change the existing backend (`fwlb backend enable|weight ...`)';
    case 'ERR_BAD_ADDRESS':
    case 'ERR_BAD_PORT':
    case 'ERR_BAD_WEIGHT':
    case 'ERR_BAD_REQUEST':
      return 'correct the value the error names (`fwlb backend --help` shows each operation\'s arguments)';
    case 'ERR_CONFIG_PUSH':
      return 'fix what it names (a config refused here is sent to no node; `fwlb check -c FILE` checks it first); with no state sync, copy the file to each node and `fwlb reload` there';
    default:
      return 'see `fwlb status` and the node\'s log';
  }
}

/** The next step after a config file that does not load or check. */
export const CONFIG_NEXT_STEP = 'fix the file where each error points (key and line) and run `fwlb check -c FILE` again; nothing was applied';

/** The next step after a node name the file does not have. */
export const NODE_NEXT_STEP = 'name one of the file\'s `nodes:` with -n NODE (the default is this host\'s name)';

/** The next step after the checks against this host failed. */
export const HOST_NEXT_STEP = 'fix the host (interfaces, addresses, routes) or this node\'s part of the file; --no-host checks the file alone';

/** The next step after a reload the node refused. */
export const RELOAD_NEXT_STEP = 'the node runs on with its old config: fix the file (`fwlb check -c FILE -n NODE` shows what is wrong) and reload again';

/** An error and its next step, as the CLI prints them. */
export function withNextStep(message: string, next: string): string {
  const m = message.endsWith('\n') ? message.slice(0, -1) : message;
  return `${m}\nnext: ${next}\n`;
}
