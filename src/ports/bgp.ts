/**
 * Port: what the BGP announcer (services/bgp.ts, issue 26) needs from the machine: BIRD's
 * control socket, the file BIRD includes, and the kill-switch device the routes point
 * through; with the relay, its counters. The real ones are adapters/bird-control.ts,
 * adapters/tun.ts and the nftables counter dump (adapters/netlink/nft-counters.ts).
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
  /** With `bgp.relay`: the relay table's counters by name (compiler/relay.ts), read from the kernel now. */
  relayCounters?(): Promise<ReadonlyMap<string, number>>;
}
