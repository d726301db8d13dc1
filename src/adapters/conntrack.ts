/**
 * What the load balancer needs of connection tracking (the flows of a virtual service,
 * deleting the flows of one backend), and an implementation through conntrack(8). The
 * daemon uses the ctnetlink one (adapters/netlink/ctnetlink.ts); this one is kept as the
 * independent reference the ctnetlink lab test compares against. Its parser treats its
 * input as untrusted.
 */
import { runRaw } from '../lib/exec.js';
import type { Conntrack, FlowSummary, ServiceKey } from '../ports/conntrack.js';

/**
 * Parses `conntrack -L` lines. A line that does not parse is skipped, never fatal.
 * Format: "tcp 6 431999 ESTABLISHED src=.. dst=.. sport=.. dport=.. src=.. dst=.. sport=.. dport=.. [ASSURED] ..."
 * The second src=/sport= pair is the reply direction's source: the backend.
 */
export function parseFlows(text: string): FlowSummary {
  const byBackend: FlowSummary['byBackend'] = new Map();
  for (const line of text.split('\n')) {
    const srcs = [...line.matchAll(/\bsrc=([0-9a-fA-F:.]+)/g)];
    const sports = [...line.matchAll(/\bsport=(\d+)/g)];
    const replySrc = srcs[1]?.[1];
    const replyPort = sports[1]?.[1];
    if (!replySrc || !replyPort) continue;
    const key = `${replySrc}:${replyPort}`;
    const e = byBackend.get(key) ?? { flows: 0, established: 0 };
    e.flows++;
    if (/\bESTABLISHED\b/.test(line) || (/^udp/.test(line) && /\bASSURED\b/.test(line))) e.established++;
    byBackend.set(key, e);
  }
  return { byBackend };
}


export function createConntrack(command: readonly string[] = ['conntrack']): Conntrack {
  const [bin = 'conntrack', ...pre] = command;
  const filter = (s: ServiceKey) => ['-f', s.family === 4 ? 'ipv4' : 'ipv6', '-p', s.proto, '--orig-dst', s.address, '--orig-port-dst', String(s.port)];
  return {
    async serviceFlows(s) {
      const r = await runRaw(bin, [...pre, '-L', ...filter(s)]);
      return parseFlows(r.stdout);
    },
    async deleteBackendFlows(s, b) {
      const r = await runRaw(bin, [...pre, '-D', ...filter(s), '--reply-src', b.address, '--reply-port-src', String(b.port)]);
      const m = /(\d+) flow entries have been deleted/.exec(r.stderr + r.stdout);
      return m ? Number(m[1]) : 0;
    },
  };
}
