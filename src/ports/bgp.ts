/**
 * Port: what the BGP announcer (services/bgp.ts, issue 26) needs from the machine: BIRD's
 * control socket, the file BIRD includes, and the kill-switch device the routes point
 * through. The real ones are adapters/bird-control.ts and adapters/tun.ts.
 */
import type { BirdReply } from '../codec/bird/reply.js';

export interface BirdControlPort {
  /** Sends one command line and resolves BIRD's reply (errors included: 8xxx, 9xxx); rejects when BIRD cannot be reached or does not answer in time. */
  command(line: string): Promise<BirdReply>;
  close(): void;
}

export interface AnnounceDevicePort {
  readonly name: string;
  /** Administratively up (routes through it announced) or down (all withdrawn). */
  setUp(up: boolean): Promise<void>;
  /** Closes it: the device is gone (what a dead daemon's is). */
  close(): void;
}

export interface BgpMachine {
  bird: BirdControlPort;
  device: AnnounceDevicePort;
  /** Writes the include file whole (a reader never sees half of it). */
  writeInclude(path: string, text: string): Promise<void>;
}
