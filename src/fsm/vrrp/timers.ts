/**
 * VRRP timer formulas, one named function each, in milliseconds.
 *
 * RFC 5798 6.1 states them in centiseconds (v3) and RFC 3768 6.1 in seconds (v2). We keep
 * milliseconds throughout and round down to a whole millisecond at the end, so a result is
 * never coarser than the RFC's integer centiseconds and never differs from the exact value by
 * a millisecond or more. (keepalived does the same in microseconds.)
 */
import { VRRP_V2_ADVER_INT_UNIT_MS, VRRP_V3_ADVER_INT_UNIT_MS } from '../../codec/vrrp/constants.js';

/**
 * Skew_Time, VRRPv3 (RFC 5798 6.1): (((256 - Priority) * Master_Adver_Interval) / 256).
 * The higher our priority, the shorter our skew, so the best backup's timer fires first.
 */
export function skewTime(priority: number, masterAdverIntervalMs: number): number {
  return Math.floor(((256 - priority) * masterAdverIntervalMs) / 256);
}

/**
 * Skew_Time, VRRPv2 (RFC 3768 6.1): ((256 - Priority) / 256) seconds, independent of the
 * advertisement interval.
 */
export function skewTimeV2(priority: number): number {
  return Math.floor(((256 - priority) * VRRP_V2_ADVER_INT_UNIT_MS) / 256);
}

/**
 * Master_Down_Interval (RFC 5798 6.1; RFC 3768 6.1): (3 * Master_Adver_Interval) + Skew_Time,
 * the time a backup waits without hearing the master before it declares the master down.
 * In v2 Master_Adver_Interval is the configured Advertisement_Interval (v2 requires both ends
 * to agree, RFC 3768 7.1).
 */
export function masterDownInterval(priority: number, masterAdverIntervalMs: number, version: 2 | 3 = 3): number {
  return 3 * masterAdverIntervalMs + skewFor(version, priority, masterAdverIntervalMs);
}

/** Skew_Time of the given protocol version. */
export function skewFor(version: 2 | 3, priority: number, masterAdverIntervalMs: number): number {
  return version === 3 ? skewTime(priority, masterAdverIntervalMs) : skewTimeV2(priority);
}

/**
 * A v3 interval as carried on the wire: whole centiseconds (RFC 5798 5.2.7). A backup learns
 * Master_Adver_Interval from the master's advert, so this is the value it will see.
 */
export function toCentiseconds(ms: number): number {
  return Math.round(ms / VRRP_V3_ADVER_INT_UNIT_MS);
}
