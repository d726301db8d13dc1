/**
 * VRRP protocol constants, each with the RFC section that defines it.
 * RFC 5798 is VRRP version 3 (IPv4 and IPv6); RFC 3768 is VRRP version 2 (IPv4 only).
 */

/** IP protocol / IPv6 next header number of VRRP. RFC 5798 5.1.1.4 and 5.1.2.4; RFC 3768 5.2.4. */
export const IPPROTO_VRRP = 112;

/** IPv4 multicast group of VRRP, link-local scope. RFC 5798 5.1.1.2; RFC 3768 5.2.2. */
export const VRRP_MCAST_GROUP_V4 = '224.0.0.18';

/** IPv6 multicast group of VRRP (FF02:0:0:0:0:0:0:12), link-local scope. RFC 5798 5.1.2.2. */
export const VRRP_MCAST_GROUP_V6 = 'ff02::12';

/**
 * IPv4 TTL / IPv6 Hop Limit of every advertisement; a receiver discards any other value, so a
 * packet that crossed a router is never believed. RFC 5798 5.1.1.3, 5.1.2.3 and 7.1;
 * RFC 3768 5.2.3 and 7.1.
 */
export const VRRP_IP_TTL = 255;

/** Version field of VRRPv2. RFC 3768 5.3.1. */
export const VRRP_VERSION_2 = 2;
/** Version field of VRRPv3. RFC 5798 5.2.1. */
export const VRRP_VERSION_3 = 3;

/** The only packet type: ADVERTISEMENT. Any other type is discarded. RFC 5798 5.2.2; RFC 3768 5.3.2. */
export const VRRP_TYPE_ADVERTISEMENT = 1;

/** Priority of the router that owns the virtual addresses. RFC 5798 5.2.4; RFC 3768 5.3.4. */
export const VRRP_PRIO_OWNER = 255;
/** Default priority of a backup router. RFC 5798 5.2.4 and 6.1; RFC 3768 5.3.4. */
export const VRRP_PRIO_DEFAULT = 100;
/** Priority 0: the master stops participating; a backup takes over after Skew_Time. RFC 5798 5.2.4; RFC 3768 5.3.4. */
export const VRRP_PRIO_STOP = 0;

/** Length of the fixed VRRP header (version/type, VRID, priority, count, interval, checksum). RFC 5798 5.1; RFC 3768 5.1. */
export const VRRP_HEADER_LEN = 8;
/** The address count is 8 bits. RFC 5798 5.2.5; RFC 3768 5.3.5. */
export const VRRP_MAX_ADDRESSES = 255;
/** VRID range: 1..255 (8 bits, 0 is not a valid identifier). RFC 5798 5.2.3 and 6.1; RFC 3768 5.3.3. */
export const VRRP_VRID_MIN = 1;
export const VRRP_VRID_MAX = 255;

/** v3 Max Adver Int: 12 bits in centiseconds, so at most 4095 cs = 40.95 s. RFC 5798 5.2.7. */
export const VRRP_V3_ADVER_INT_MAX_CS = 0x0fff;
/** v3 default advertisement interval: 100 cs = 1 s. RFC 5798 5.2.7 and 6.1. */
export const VRRP_V3_ADVER_INT_DEFAULT_CS = 100;
/** One v3 interval unit in milliseconds (a centisecond). RFC 5798 5.2.7. */
export const VRRP_V3_ADVER_INT_UNIT_MS = 10;

/** v2 Adver Int: 8 bits in seconds. RFC 3768 5.3.7. */
export const VRRP_V2_ADVER_INT_MAX_S = 0xff;
/** v2 default advertisement interval: 1 s. RFC 3768 5.3.7 and 6.1. */
export const VRRP_V2_ADVER_INT_DEFAULT_S = 1;
/** One v2 interval unit in milliseconds (a second). RFC 3768 5.3.7. */
export const VRRP_V2_ADVER_INT_UNIT_MS = 1000;

/** v2 Authentication Type values. 0 = none; 1 and 2 are reserved (RFC 2338's simple text and AH). RFC 3768 5.3.6. */
export const VRRP_V2_AUTH_NONE = 0;
export const VRRP_V2_AUTH_RESERVED_TEXT = 1;
export const VRRP_V2_AUTH_RESERVED_AH = 2;
/** v2 Authentication Data: 8 bytes, zero on transmission, ignored on reception. RFC 3768 5.3.10. */
export const VRRP_V2_AUTH_DATA_LEN = 8;

/**
 * The virtual router MAC address: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6
 * (IANA OUI 00-00-5E). RFC 5798 7.3; RFC 3768 7.3 (IPv4 only).
 */
export function virtualMac(family: 4 | 6, vrid: number): string {
  const hex = (n: number) => (n & 0xff).toString(16).padStart(2, '0');
  return ['00', '00', '5e', '00', family === 4 ? '01' : '02', hex(vrid)].join(':');
}
