import type { NodeStatus } from '../services/node-daemon.js';

/** `fwlb status` for people. */
export function formatStatus(s: NodeStatus): string {
  const lines = [
    `node ${s.node} of cluster ${s.cluster} (pid ${s.pid}, up since ${s.startedAt})`,
    `config   ${s.config.file} (${s.config.digest.slice(0, 12)})`,
    `ruleset  ${s.ruleset.digest.slice(0, 12)} applied ${s.ruleset.appliedAt} in ${s.ruleset.applyMs} ms, ${s.ruleset.bytes} bytes, ${s.ruleset.blockedPrefixes} blocked prefixes`,
    `reloads  ${s.reloads.ok} ok, ${s.reloads.failed} failed${s.reloads.lastError ? ` (last error: ${s.reloads.lastError.split('\n')[0]})` : ''}`,
  ];
  for (const svc of s.services) {
    lines.push(`service  ${svc.name} ${svc.listen} ${svc.scheduler}`);
    for (const b of svc.backends) lines.push(`  backend ${b.name.padEnd(12)} ${b.address.padEnd(22)} weight ${String(b.weight).padEnd(4)} ${b.state}`);
  }
  return lines.join('\n') + '\n';
}
