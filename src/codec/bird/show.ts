/**
 * BIRD's `show protocols` and `show protocols all NAME` replies read into values (issue 26:
 * `fwlb status` says what BIRD does with the announcements). Pure; a reply that is not the
 * table asked for is an error naming why, never a throw. Shapes (BIRD 2.0.12, nest/proto.c,
 * proto/bgp/bgp.c; docs/bgp-research.md 2):
 *   2002-Name       Proto      Table      State  Since         Info
 *   1002-upstream4  BGP        ---        up     09:12:06.874  Established
 *   1006-  BGP state:          Established
 *        Neighbor address: 198.18.7.1
 *   0000
 * The columns are padded to a minimum width: split on whitespace. "Since" is one token
 * (`09:12:06.874`, `2026-12-07`) or, with `timeformat protocol iso long`, a date and a time.
 * And `show bfd sessions` (proto/bfd/bfd.c), one table per BFD protocol under code 1020:
 *   1020-bfd1:
 *    IP address                Interface  State      Since         Interval  Timeout
 *    198.18.3.1                eth0       Up         02:27:20.759    0.100    0.500
 *   0000
 * or `9001 There is no BFD protocol running`.
 */
import type { BirdReply } from './reply.js';

export interface BirdProtocol {
  name: string;
  /** The protocol's class: BGP, Static, Device, Kernel, BFD ... */
  proto: string;
  /** Its main channel's table, or '---'. */
  table: string;
  /** up, start, stop, down, flush. */
  state: string;
  since: string;
  /** The rest: for BGP its session state (Established, Active ...) and the last error. */
  info: string;
  /** With `all`: the detail lines as key and value, in order (`BGP state` -> `Established`), each under its channel (`Channel ipv4` starts one). */
  details: { key: string; value: string; channel?: string }[];
}

export type ShowResult<T> = { ok: true; value: T } | { ok: false; why: string };

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIME = /^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/** The protocols of a `show protocols [all] [NAME]` reply. */
export function parseProtocols(r: BirdReply): ShowResult<BirdProtocol[]> {
  if (r.code >= 8000) return { ok: false, why: `BIRD says ${r.code}: ${r.lines.map((l) => l.text).join('; ')}` };
  const out: BirdProtocol[] = [];
  let channel: string | undefined;
  for (const l of r.lines) {
    if (l.code === 1002) {
      channel = undefined;
      const t = l.text.trim().split(/\s+/);
      if (t.length < 4 || !t[0]) return { ok: false, why: `a protocol row with fewer than 4 columns: "${l.text.slice(0, 80)}"` };
      const twoTokenSince = t.length > 5 && DATE.test(t[4]!) && TIME.test(t[5]!);
      const sinceEnd = t.length > 4 ? (twoTokenSince ? 6 : 5) : 4;
      out.push({ name: t[0], proto: t[1]!, table: t[2]!, state: t[3]!, since: t.slice(4, sinceEnd).join(' '), info: t.slice(sinceEnd).join(' '), details: [] });
    } else if (l.code === 1006) {
      const p = out.at(-1);
      if (!p) return { ok: false, why: 'detail lines before any protocol row' };
      const colon = l.text.indexOf(':');
      const ch = /^\s*Channel (\S+)\s*$/.exec(l.text);
      if (ch) channel = ch[1];
      else if (colon > 0) p.details.push({ key: l.text.slice(0, colon).trim(), value: l.text.slice(colon + 1).trim(), ...(channel ? { channel } : {}) });
    } else if (l.code !== 2002 && l.code !== 0) {
      return { ok: false, why: `an unexpected line ${l.code} in a protocol table: "${l.text.slice(0, 80)}"` };
    }
  }
  return { ok: true, value: out };
}

/** A detail's value (the first with that key), e.g. detail(p, 'BGP state'). */
export function detail(p: BirdProtocol, key: string): string | undefined {
  return p.details.find((d) => d.key === key)?.value;
}

/** Routes exported per channel (`Routes: 1 imported, 2 exported, 0 preferred`), e.g. { ipv4: 2, ipv6: 1 }. */
export function exportedRoutes(p: BirdProtocol): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of p.details) {
    const m = d.key === 'Routes' && d.channel ? /(\d+) exported/.exec(d.value) : null;
    if (m) out[d.channel!] = Number(m[1]);
  }
  return out;
}

/** A BGP protocol's session state: from its details when shown, else the first word of its info. */
export function bgpSession(p: BirdProtocol): string | undefined {
  if (p.proto !== 'BGP') return undefined;
  return detail(p, 'BGP state') ?? (p.info.split(/\s+/)[0] || undefined);
}

/** One BFD session as BIRD shows it: the neighbour, the interface, Up / Down / Init / AdminDown, since when, the intervals in seconds. */
export interface BirdBfdSession {
  protocol: string;
  address: string;
  iface: string;
  state: string;
  since: string;
  intervalS: number;
  timeoutS: number;
}

/** The sessions of a `show bfd sessions` reply; none when BIRD runs no BFD protocol (9001). */
export function parseBfdSessions(r: BirdReply): ShowResult<BirdBfdSession[]> {
  if (r.code === 9001 && r.lines.some((l) => /no BFD protocol/i.test(l.text))) return { ok: true, value: [] };
  if (r.code >= 8000) return { ok: false, why: `BIRD says ${r.code}: ${r.lines.map((l) => l.text).join('; ')}` };
  const out: BirdBfdSession[] = [];
  let protocol: string | undefined;
  for (const l of r.lines) {
    if (l.code === 0) continue;
    if (l.code !== 1020) return { ok: false, why: `an unexpected line ${l.code} in a BFD session table: "${l.text.slice(0, 80)}"` };
    const text = l.text.trim();
    const head = /^(\S+):$/.exec(text);
    if (head) {
      protocol = head[1];
      continue;
    }
    if (text === '' || text.startsWith('IP address')) continue;
    const t = text.split(/\s+/);
    const [intervalS, timeoutS] = [Number(t.at(-2)), Number(t.at(-1))];
    if (!protocol || t.length < 6 || !Number.isFinite(intervalS) || !Number.isFinite(timeoutS)) return { ok: false, why: `a BFD session row not understood: "${text.slice(0, 80)}"` };
    out.push({ protocol, address: t[0]!, iface: t[1]!, state: t[2]!, since: t.slice(3, -2).join(' '), intervalS, timeoutS });
  }
  return { ok: true, value: out };
}
