/**
 * keepalived as the peer in lab tests and benchmarks: a config for a node of the lab, and a
 * handle that starts it in the node's namespace, stops it gracefully, or crashes it.
 * keepalived runs a parent and a VRRP child; the child's PID comes from its pidfile.
 * A crash stops the parent first (SIGSTOP), so that the child does not get the parent's
 * death signal and shut down gracefully (priority 0), then kills both.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FwlbError } from '../lib/errors.js';
import type { Lab } from './lab.js';
import type { ProcessHandle } from './processes.js';

export interface KeepalivedInstance {
  name: string;
  iface: string;
  vrid: number;
  priority: number;
  /** Seconds; keepalived takes fractions with VRRPv3. */
  advertInt: number;
  /** "a.b.c.d/len". */
  vips: string[];
  nopreempt?: boolean;
}

export interface KeepalivedOptions {
  routerId: string;
  version: 2 | 3;
  instances: KeepalivedInstance[];
  /** Put every instance in one vrrp_sync_group. */
  syncGroup?: string;
  notify?: string;
  /**
   * keepalived's BFD to the peer on the sync link, tracked by the sync group with a weight
   * (keepalived 2.2.7 cannot make a backup take over before Master_Down_Interval on a BFD
   * event: its tracked priority only trims Skew_Time; `reverse` applies the weight while the
   * session is down). Needs UDP 3784 open between the nodes.
   */
  bfd?: { neighbor: string; source: string; minRxMs: number; minTxMs: number; multiplier: number; track?: { weight: number; reverse: boolean } };
}

export function keepalivedConfig(o: KeepalivedOptions): string {
  const lines = [
    'global_defs {',
    `  router_id ${o.routerId}`,
    `  vrrp_version ${o.version}`,
    '  script_user root',
    '  enable_script_security',
    '  vrrp_garp_master_repeat 3',
    '  vrrp_garp_master_delay 1',
    '}',
  ];
  // A bfd_instance must come before the track_bfd that names it.
  if (o.bfd) {
    lines.push('bfd_instance PEER {', `  neighbor_ip ${o.bfd.neighbor}`, `  source_ip ${o.bfd.source}`, `  min_rx ${o.bfd.minRxMs}`, `  min_tx ${o.bfd.minTxMs}`, `  multiplier ${o.bfd.multiplier}`, '}');
  }
  if (o.syncGroup) {
    lines.push(`vrrp_sync_group ${o.syncGroup} {`, '  group {', ...o.instances.map((i) => `    ${i.name}`), '  }');
    if (o.notify) lines.push(`  notify "${o.notify}"`);
    if (o.bfd?.track) lines.push('  track_bfd {', `    PEER weight ${o.bfd.track.weight}${o.bfd.track.reverse ? ' reverse' : ''}`, '  }');
    lines.push('}');
  }
  for (const i of o.instances) {
    lines.push(
      `vrrp_instance ${i.name} {`,
      '  state BACKUP',
      `  interface ${i.iface}`,
      `  virtual_router_id ${i.vrid}`,
      `  priority ${i.priority}`,
      `  advert_int ${i.advertInt}`,
      ...(i.nopreempt ? ['  nopreempt'] : []),
      '  virtual_ipaddress {',
      ...i.vips.map((v) => `    ${v} dev ${i.iface}`),
      '  }',
      '}',
    );
  }
  return lines.join('\n') + '\n';
}

export class Keepalived {
  private constructor(
    private readonly lab: Lab,
    readonly node: string,
    readonly parent: ProcessHandle,
    private readonly vrrpPidFile: string,
  ) {}

  /** Starts keepalived (VRRP only, in the foreground) on a lab node with this config. */
  static start(lab: Lab, node: string, o: KeepalivedOptions): Promise<Keepalived> {
    return Keepalived.startText(lab, node, keepalivedConfig(o), !!o.bfd);
  }

  /** The same with a keepalived.conf of its own (`bfd`: it has a bfd_instance). */
  static async startText(lab: Lab, node: string, text: string, bfd = false): Promise<Keepalived> {
    const dir = lab.stateDir;
    const conf = `${dir}/${node}.keepalived.conf`;
    const pid = `${dir}/${node}.keepalived.pid`;
    const vrrpPid = `${dir}/${node}.keepalived-vrrp.pid`;
    writeFileSync(conf, text);
    // A crashed run leaves its pidfiles, and keepalived would refuse to start.
    for (const f of [pid, vrrpPid]) rmSync(f, { force: true });
    // With BFD, its child process too (--vrrp would run VRRP alone); keepalived starts only
    // the subsystems its config has.
    const bfdPid = `${dir}/${node}.keepalived-bfd.pid`;
    rmSync(bfdPid, { force: true });
    const only = bfd ? ['-b', bfdPid] : ['--vrrp'];
    const parent = lab.spawn(node, ['keepalived', ...only, '--dont-fork', '--log-console', '--log-detail', '-f', conf, '-p', pid, '-r', vrrpPid], {
      log: `${dir}/${node}.keepalived.log`,
    });
    const k = new Keepalived(lab, node, parent, vrrpPid);
    for (let i = 0; i < 100 && k.childPid() === undefined; i++) {
      if (!parent.alive()) throw new FwlbError('ERR_KEEPALIVED', `keepalived on ${node} exited: see ${dir}/${node}.keepalived.log`);
      await sleep(50);
    }
    if (k.childPid() === undefined) throw new FwlbError('ERR_KEEPALIVED', `keepalived on ${node} started no VRRP child`);
    return k;
  }

  childPid(): number | undefined {
    try {
      const n = Number(readFileSync(this.vrrpPidFile, 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** Graceful: SIGTERM to the parent, which stops the child (priority 0, VIPs removed). */
  async stop(): Promise<void> {
    await this.lab.stop(this.parent, 'SIGTERM', 10_000);
  }

  /** As a crash of the daemon: no priority 0, VIPs left in the kernel. */
  async crash(): Promise<void> {
    const child = this.childPid();
    this.parent.kill('SIGSTOP');
    if (child) {
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.lab.stop(this.parent, 'SIGKILL', 2000);
  }
}

/**
 * keepalived as the sandwich lab's VRRP peer (what the benchmarks run beside fwlb): fw1 at
 * priority 200, fw2 at 100, one sync group of the two VIPs (VRID 51 outside, 52 inside).
 */
export function sandwichKeepalived(fw: 'fw1' | 'fw2', o: { version?: 2 | 3; advertInt?: number; notify?: string; bfd?: KeepalivedOptions['bfd'] } = {}): KeepalivedOptions {
  const priority = fw === 'fw1' ? 200 : 100;
  const advertInt = o.advertInt ?? 0.1;
  return {
    routerId: fw,
    version: o.version ?? 3,
    syncGroup: 'G',
    ...(o.notify ? { notify: o.notify } : {}),
    ...(o.bfd ? { bfd: o.bfd } : {}),
    instances: [
      { name: 'EXT', iface: 'eth0', vrid: 51, priority, advertInt, vips: ['198.18.0.100/24'] },
      { name: 'INT', iface: 'eth1', vrid: 52, priority, advertInt, vips: ['198.18.1.1/24'] },
    ],
  };
}
