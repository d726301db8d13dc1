/**
 * conntrackd (FTFW) as the state-sync peer in benchmarks, as people run it beside
 * keepalived (../shared/peer-reference): one daemon per firewall syncing over UDP on the
 * lab's sync cable, and a keepalived notify script that commits the external cache on
 * master and asks for a resync on backup (the logic of conntrackd's primary-backup.sh).
 *
 * Traps written down in the peer reference and handled here: the Address Ignore filter
 * matches original tuples, so the VIPs are not listed (DNATed flows would not be synced);
 * a crashed run leaves its lock file, which stops the next start; TCPWindowTracking Off
 * makes committed entries be-liberal.
 */
import { rmSync, writeFileSync, chmodSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FwlbError } from '../lib/errors.js';
import type { Lab } from './lab.js';
import type { ProcessHandle } from './processes.js';

export interface ConntrackdOptions {
  /** This node's and the peer's addresses on the sync link. */
  self: string;
  peer: string;
  iface: string;
  port: number;
  /** Addresses whose flows are not synced (the nodes' own; never a VIP that is DNATed). */
  ignore: string[];
  /**
   * Keep received entries in the external cache until a commit (default, as with keepalived's
   * notify); false: write them into the kernel at once (DisableExternalCache On), as fwlb does.
   */
  externalCache?: boolean;
  /** Ask the peer for its whole table at start (StartupResync). */
  startupResync?: boolean;
  /** Most entries in each cache (HashLimit); default 262144. */
  hashLimit?: number;
  /** The protocols synced (Filter Protocol Accept); default TCP alone, as the peer reference has it. */
  protocols?: readonly ('TCP' | 'UDP')[];
}

const files = (lab: Lab, node: string) => {
  const d = lab.stateDir;
  return { conf: `${d}/${node}.conntrackd.conf`, lock: `${d}/${node}.conntrackd.lock`, ctl: `${d}/${node}.conntrackd.ctl`, log: `${d}/${node}.conntrackd.log`, notify: `${d}/${node}.notify.sh` };
};

export function conntrackdConfig(lab: Lab, node: string, o: ConntrackdOptions): string {
  const f = files(lab, node);
  return `Sync {
  Mode FTFW {
    DisableExternalCache ${o.externalCache === false ? 'On' : 'Off'}
    CommitTimeout 1800
    PurgeTimeout 5
    StartupResync ${o.startupResync ? 'On' : 'Off'}
  }
  UDP {
    IPv4_address ${o.self}
    IPv4_Destination_Address ${o.peer}
    Port ${o.port}
    Interface ${o.iface}
    SndSocketBuffer 1249280
    RcvSocketBuffer 1249280
    Checksum on
  }
  Options {
    TCPWindowTracking Off
  }
}
General {
  HashSize ${o.hashLimit !== undefined && o.hashLimit > 262144 ? 262144 : 8192}
  HashLimit ${o.hashLimit ?? 262144}
  LogFile ${f.log}
  Syslog off
  LockFile ${f.lock}
  UNIX {
    Path ${f.ctl}
  }
  NetlinkBufferSize 2097152
  NetlinkBufferSizeMaxGrowth 8388608
  Filter From Userspace {
    Protocol Accept {
${(o.protocols ?? ['TCP']).map((p) => `      ${p}`).join('\n')}
    }
    Address Ignore {
${['127.0.0.1', ...o.ignore].map((a) => `      IPv4_address ${a}`).join('\n')}
    }
  }
}
`;
}

/** The keepalived notify script (sync group): GROUP NAME STATE. */
export function notifyScript(lab: Lab, node: string): string {
  const f = files(lab, node);
  return `#!/bin/sh
# keepalived -> conntrackd, as conntrackd's primary-backup.sh
C="conntrackd -C ${f.conf}"
case "$3" in
  MASTER) $C -c; $C -f; $C -R; $C -B ;;
  BACKUP) $C -t; $C -n ;;
  FAULT) $C -t ;;
esac
exit 0
`;
}

export class Conntrackd {
  private constructor(readonly node: string, readonly handle: ProcessHandle) {}

  /** Writes its config and the notify script, and starts it in the node's namespace. */
  static async start(lab: Lab, node: string, o: ConntrackdOptions): Promise<Conntrackd> {
    const f = files(lab, node);
    writeFileSync(f.conf, conntrackdConfig(lab, node, o));
    writeFileSync(f.notify, notifyScript(lab, node));
    chmodSync(f.notify, 0o755);
    // A killed run leaves its lock file and socket; conntrackd would refuse to start.
    rmSync(f.lock, { force: true });
    rmSync(f.ctl, { force: true });
    const handle = lab.spawn(node, ['conntrackd', '-C', f.conf], { log: `${f.log}.out` });
    for (let i = 0; i < 100; i++) {
      if (!handle.alive()) throw new FwlbError('ERR_CONNTRACKD', `conntrackd on ${node} exited: see ${f.log}`);
      if ((await lab.execRaw(node, ['conntrackd', '-C', f.conf, '-s'])).status === 0) return new Conntrackd(node, handle);
      await sleep(50);
    }
    throw new FwlbError('ERR_CONNTRACKD', `conntrackd on ${node} never answered on ${f.ctl}`);
  }

  /** The notify script keepalived runs for this node. */
  static notifyPath(lab: Lab, node: string): string {
    return files(lab, node).notify;
  }

  async stop(lab: Lab): Promise<void> {
    await lab.stop(this.handle, 'SIGTERM', 10_000);
  }
}

/** conntrackd on the sandwich lab's sync link (198.18.2.0/24, eth2, port 3781), the nodes' own addresses ignored. */
export function sandwichConntrackd(fw: 'fw1' | 'fw2', o: Pick<ConntrackdOptions, 'externalCache' | 'startupResync' | 'hashLimit'> = {}): ConntrackdOptions {
  const sync = { fw1: '198.18.2.1', fw2: '198.18.2.2' } as const;
  return {
    self: sync[fw],
    peer: sync[fw === 'fw1' ? 'fw2' : 'fw1'],
    iface: 'eth2',
    port: 3781,
    ignore: ['198.18.0.2', '198.18.0.3', '198.18.1.2', '198.18.1.3', sync.fw1, sync.fw2],
    ...o,
  };
}
