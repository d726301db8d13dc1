/**
 * Why a received VRRP packet was dropped, as a closed set of names (one name table, like
 * pfsync's), and a tiny pure counter record the service exports as
 * `vrrp_rx_dropped_total{reason}`.
 *
 * Three layers drop packets, and all share this one counter family:
 *  - the raw IPv4 datagram reader (`decodeIPv4Packet`),
 *  - the VRRP packet decoder (`decodeAdvert`): checks that need nothing but the packet and
 *    its IP header (RFC 5798 7.1 / RFC 3768 7.1, first group),
 *  - the instance state machine: checks that need the instance's configuration (VRID,
 *    version, owner, address list, v2 interval and auth type), emitted as `drop` effects.
 */

/** Reasons the raw IPv4 datagram reader rejects a datagram. */
export const IPV4_DROP_REASONS = [
  'too_short', // fewer bytes than an IPv4 header
  'bad_ip_version', // version nibble is not 4
  'bad_ip_header_length', // IHL below 5 or beyond the buffer
  'bad_ip_total_length', // total length below the header or beyond the buffer
  'bad_ip_checksum', // header checksum does not verify (RFC 791 3.1)
  'ip_fragment', // a fragment; VRRP adverts are never fragmented
  'bad_protocol', // not protocol 112 (only from decodeIPv4Advert)
] as const;
export type Ipv4DropReason = (typeof IPV4_DROP_REASONS)[number];

/** Reasons the VRRP decoder rejects a packet. */
export const PACKET_DROP_REASONS = [
  'too_short', // fewer bytes than the fixed VRRP header
  'bad_ip_meta', // source/destination from the IP layer are not addresses of the stated family
  'bad_ttl', // IP TTL / hop limit is not 255 (RFC 5798 5.1.1.3, 5.1.2.3, 7.1; RFC 3768 5.2.3, 7.1)
  'bad_version', // version is neither 2 nor 3 (RFC 5798 5.2.1; RFC 3768 5.3.1)
  'bad_family', // a VRRPv2 packet over IPv6 (RFC 3768 is IPv4 only)
  'bad_length', // length is not exactly header + addresses (+ v2 auth data) (RFC 5798 7.1; RFC 3768 7.1)
  'bad_checksum', // checksum does not verify (RFC 5798 5.2.8; RFC 3768 5.3.8)
  'bad_type', // type is not ADVERTISEMENT (RFC 5798 5.2.2; RFC 3768 5.3.2)
  'bad_vrid', // VRID 0 (RFC 5798 5.2.3; RFC 3768 5.3.3)
  'bad_address_count', // no address at all (RFC 5798 5.2.5: the minimum is 1)
  'bad_interval', // advertisement interval 0 (RFC 5798 5.2.7; RFC 3768 5.3.7)
  'bad_auth', // v2 auth type outside 0..2 (RFC 3768 5.3.6)
] as const;
export type PacketDropReason = (typeof PACKET_DROP_REASONS)[number];

/** Reasons an instance rejects a well-formed advertisement (RFC 5798 7.1; RFC 3768 7.1). */
export const INSTANCE_DROP_REASONS = [
  'vrid_mismatch', // the VRID is not this instance's
  'version_mismatch', // a v2 advert to a v3 instance or the reverse
  'family_mismatch', // an IPv6 advert to an IPv4 instance or the reverse
  'local_owner', // this router owns the addresses (priority 255): it discards every advert (RFC 5798 7.1)
  'address_mismatch', // the address list differs from ours and the sender is not the owner (RFC 5798 7.1)
  'interval_mismatch', // v2 only: the interval differs from ours (RFC 3768 7.1)
  'auth_mismatch', // v2 only: the auth type differs from ours (RFC 3768 7.1)
  'own_advert', // our own advert looped back
] as const;
export type InstanceDropReason = (typeof INSTANCE_DROP_REASONS)[number];

/**
 * Reasons a well-formed advert in an fwlb peer's name is refused because it contradicts
 * what that peer says itself, authenticated, in its liveness BEATs (services/liveness.ts).
 */
export const PEER_CHECK_DROP_REASONS = [
  'forged_priority', // the peer's BEATs give another priority for that VRID (a spoofed advert)
  'forged_vrid', // the peer runs no such virtual router
  'forged_release', // priority 0 while the peer says it is master and not stopping, unconfirmed by its next BEAT
] as const;
export type PeerCheckDropReason = (typeof PEER_CHECK_DROP_REASONS)[number];

export type VrrpDropReason = Ipv4DropReason | PacketDropReason | InstanceDropReason | PeerCheckDropReason;

/** Every drop reason once, in a stable order: export them all, zeros included. */
export const VRRP_DROP_REASONS: readonly VrrpDropReason[] = [
  ...new Set<VrrpDropReason>([...IPV4_DROP_REASONS, ...PACKET_DROP_REASONS, ...INSTANCE_DROP_REASONS, ...PEER_CHECK_DROP_REASONS]),
];

/** Drop counts by reason. Immutable: `recordDrop` returns a new record. */
export type DropCounters = Readonly<Record<VrrpDropReason, number>>;

/** All reasons at zero. */
export function emptyDropCounters(): DropCounters {
  return Object.fromEntries(VRRP_DROP_REASONS.map((r) => [r, 0])) as Record<VrrpDropReason, number>;
}

/** The counters with one more drop for `reason` (`by` more when given). */
export function recordDrop(counters: DropCounters, reason: VrrpDropReason, by = 1): DropCounters {
  return { ...counters, [reason]: (counters[reason] ?? 0) + by };
}

/** The sum of two counter records (for example, per-instance counters into a node total). */
export function mergeDropCounters(a: DropCounters, b: DropCounters): DropCounters {
  return Object.fromEntries(VRRP_DROP_REASONS.map((r) => [r, (a[r] ?? 0) + (b[r] ?? 0)])) as Record<VrrpDropReason, number>;
}

/** Counters as rows for a metrics exporter, in the stable order of VRRP_DROP_REASONS. */
export function dropCounterRows(counters: DropCounters): Array<{ reason: VrrpDropReason; count: number }> {
  return VRRP_DROP_REASONS.map((reason) => ({ reason, count: counters[reason] ?? 0 }));
}
