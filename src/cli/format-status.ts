/** `fwlb status` as text for people: the node, its readiness, ruleset, VRRP, sync, liveness, sharing and services, one section each. */
import type { NodeStatus, Readiness, StartingStatus } from '../services/node-daemon.js';

function readyLine(r: Readiness): string {
  if (r.ready) return `ready    yes (${r.startToReadyMs ?? '?'} ms from process start: ${Object.entries(r.steps).map(([k, v]) => `${k} ${v}`).join(', ')})`;
  return `ready    NO: ${r.reason}`;
}

/** The cluster version of the config and where the peers stand (issue 24). */
function configVersionText(d: NodeStatus['config']['distribution']): string {
  if (!d) return '';
  const peers = Object.entries(d.peers).map(([n, p]) => `${n} ${p.state === 'same' ? 'same' : `${p.state.toUpperCase()} (version ${p.version ?? '?'})`}`);
  const confirm = d.confirm ? `, NOT CONFIRMED: rolls back in ${Math.round(d.confirm.inMs / 1000)} s` : '';
  return `, version ${d.version} (${d.hash.slice(0, 12)})${d.localChanges ? ' CHANGED BY HAND since pushed' : ''}${confirm}${peers.length ? `; peers: ${peers.join(', ')}` : ''}`;
}

/** `fwlb status` for people. */
export function formatStatus(s: NodeStatus | StartingStatus): string {
  if ('starting' in s) return [`node ${s.node} is starting`, readyLine(s.ready), ''].join('\n');
  const lines = [
    `node ${s.node} of cluster ${s.cluster} (pid ${s.pid}, up since ${s.startedAt})`,
    readyLine(s.ready),
    `config   ${s.config.file} (${s.config.digest.slice(0, 12)})${configVersionText(s.config.distribution)}`,
    `ruleset  ${s.ruleset.digest.slice(0, 12)} applied ${s.ruleset.appliedAt} in ${s.ruleset.applyMs} ms, ${s.ruleset.bytes} bytes, ${s.ruleset.blockedPrefixes} blocked prefixes`,
    `reloads  ${s.reloads.ok} ok, ${s.reloads.failed} failed${s.reloads.lastError ? ` (last error: ${s.reloads.lastError.split('\n')[0]})` : ''}`,
  ];
  const v = s.vrrp;
  if (v.groups.length) {
    lines.push('', `vrrp${v.maintenance ? '  (maintenance: demoted by hand)' : ''}${v.preemptHold?.held ? `  (preemption held: ${v.preemptHold.why.join('; ')})` : ''}`);
    for (const g of v.groups) {
      lines.push(`  group ${g.name}: ${g.state} (${g.transitions} transitions)`);
      for (const i of g.instances) {
        const master = i.state === 'master' ? 'this node' : i.master ? `${i.master.address} (prio ${i.master.priority}, heard ${i.master.ageMs} ms ago)` : 'none heard';
        const timers = Object.entries(i.timers).map(([k, ms]) => `${k} in ${ms} ms`).join(', ') || 'no timer';
        lines.push(
          `    ${i.name.padEnd(8)} ${i.interface.padEnd(8)} vrid ${String(i.vrid).padEnd(3)} v${i.version}${i.family === 6 ? ' IPv6' : ''} ${i.state.padEnd(7)} prio ${i.priority}${i.priority !== i.configuredPriority ? ` (configured ${i.configuredPriority})` : ''}  master: ${master}`,
          `             advert ${i.advertIntervalMs} ms${i.family === 6 ? ` from ${i.source ?? 'no link-local address yet'}` : ''}, ${timers}${i.faults.length ? `, faults: ${i.faults.join(' ')}` : ''}${i.lastTransition ? `, last: ${i.lastTransition.from} -> ${i.lastTransition.to} ${Math.round(i.lastTransition.agoMs / 1000)} s ago (${i.lastTransition.why})` : ''}`,
        );
      }
    }
    const notable = Object.entries(v.counters).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
    if (notable.length) lines.push(`  counters: ${notable.join(', ')}`);
    const drops = Object.entries(v.drops).map(([k, n]) => `${k} ${n}`);
    if (drops.length) lines.push(`  dropped adverts: ${drops.join(', ')}`);
  }
  if (s.sync) {
    const y = s.sync;
    const own = s.liveness?.own;
    lines.push('', `state sync  ${y.bulk.text}${y.bulk.source ? ` (from ${y.bulk.source})` : ''}${own?.behind ? '; THIS NODE IS BEHIND its peers (see their lag to us below)' : ''}`);
    if (y.writeBacklog && y.writeBacklog.records > 0) lines.push(`  ${y.writeBacklog.records} received records wait for our kernel (oldest ${y.writeBacklog.oldestMs} ms)`);
    for (const p of y.peers) {
      const m = p.lag?.lastMinute;
      const q = m && m.p50Ms !== null ? `; last minute p50 ${m.p50Ms} / p99 ${m.p99Ms} / max ${m.maxMs} ms over ${m.records} records` : '';
      const told = s.liveness?.peers.find((x) => x.peer === p.peer)?.told;
      lines.push(
        `  peer ${p.peer.padEnd(8)} ${p.alive ? (p.peerLeaving ? 'leaving' : 'alive') : 'silent'}${p.peerSynced ? ', synced' : ', not synced'}${p.lag?.behind ? ', BEHIND' : ''}; lag ${Math.round(p.lagMs)} ms${q}; ${p.queuedRecords} records queued, ${p.inFlight} in flight${p.resync !== 'none' ? `, resync ${p.resync}` : ''}${told && told.lagMs > 0 ? `; we are ${told.lagMs} ms behind it` : ''}`,
      );
    }
    const notable = Object.entries(y.counters).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`);
    if (notable.length) lines.push(`  counters: ${notable.join(', ')}`);
    const drops = Object.entries(y.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`);
    if (drops.length) lines.push(`  dropped: ${drops.join(', ')}`);
  }
  if (s.liveness) {
    const l = s.liveness;
    const died = l.thread?.failures ? `; its thread died ${l.thread.failures} times (${l.thread.restarts} started again), last: ${l.thread.lastError}` : '';
    lines.push('', `liveness  a BEAT every ${l.intervalMs} ms, gone after ${l.multiplier} missed${died}`);
    for (const p of l.peers) {
      const ago = p.lastBeatAgoMs === null ? 'never heard' : `last ${p.lastBeatAgoMs} ms ago`;
      lines.push(`  peer ${p.peer.padEnd(8)} ${p.state}; ${ago}; gone ${p.downs} times, ${p.released} virtual routers taken over`);
    }
  }
  if (s.sharing) {
    const h = s.sharing;
    const shares = Object.entries(h.shares).map(([k, v]) => `${k} ${v}`).join(', ');
    lines.push('', `sharing  ${h.ready ? 'ready' : `not ready (carries nothing${h.linksDown.length ? `: ${h.linksDown.join(', ')} down` : ''})`}; ${h.members.length} member(s): ${h.members.join(', ') || '-'}`);
    lines.push(`  owns ${h.owned} of ${h.buckets} buckets (${shares || 'no owners'}); ownership moved ${h.moves} times${h.applyFailures ? `, ${h.applyFailures} kernel writes failed` : ''}`);
    lines.push(`  packets: ${h.packets.carried} carried, ${h.packets.others} of others' buckets dropped, ${h.packets.noDaemon} dropped with no daemon; gate ${h.gate ? 'held' : 'not held'}`);
    lines.push(`  addresses ${h.addresses.join(', ') || '-'}; MACs ${Object.entries(h.macs).map(([r, m]) => `${r} ${m}`).join(', ')}`);
  }
  if (s.bgp) lines.push('', ...bgpLines(s.bgp));
  const n = (v: number | null) => (v === null ? '-' : String(v));
  for (const svc of s.services) {
    lines.push('', `service ${svc.name}  ${svc.listen}  ${svc.scheduler} (${svc.tableSize} slots)`);
    lines.push(`  ${'backend'.padEnd(12)} ${'address'.padEnd(22)} ${'weight'.padStart(6)} ${'admin'.padEnd(8)} ${'health'.padEnd(9)} ${'share'.padStart(6)} ${'active'.padStart(6)} ${'new'.padStart(8)}`);
    for (const b of svc.backends) {
      const share = svc.tableSize ? `${((100 * b.slots) / svc.tableSize).toFixed(1)}%` : '-';
      lines.push(
        `  ${b.name.padEnd(12)} ${b.address.padEnd(22)} ${String(b.weight).padStart(6)} ${b.admin.padEnd(8)} ${b.health.padEnd(9)} ${share.padStart(6)} ${n(b.activeConnections).padStart(6)} ${n(b.newConnections).padStart(8)}` +
          (b.health === 'down' && b.healthDetail ? `  (${b.healthDetail})` : '') +
          (b.origin === 'runtime' ? '  [added at runtime]' : ''),
      );
    }
  }
  return lines.join('\n') + '\n';
}

/** BGP: what the node announces and why, BIRD's last word, its protocols as BIRD says now. */
function bgpLines(b: NonNullable<NodeStatus['bgp']>): string[] {
  const out = [`bgp      ${b.why}; device ${b.device} ${b.deviceUp ? 'up' : 'down'}${b.gracefulShutdown ? '; tagged GRACEFUL_SHUTDOWN' : ''}`];
  out.push(`  announced ${b.deviceUp && b.announced.length ? b.announced.join(', ') : '-'}; BIRD ${b.socket}, file ${b.include}`);
  if (b.error) out.push(`  error: ${b.error}`);
  if (b.lastConfigure) out.push(`  last configure ${b.lastConfigure.at}: ${b.lastConfigure.message} (${b.configures} in all)`);
  if (b.relay) out.push(`  relay    ${b.relay.seen} packets to the announced addresses from the router, ${b.relay.relayed} of them relayed to their bucket's owner`);
  if (b.protocols === null) out.push("  BIRD's protocols: no answer");
  for (const p of b.protocols ?? []) {
    if (p.proto !== 'BGP' && p.proto !== 'Static') continue;
    const exported = Object.entries(p.exported).map(([ch, n]) => `${ch} ${n}`).join(', ');
    out.push(`  ${p.proto === 'BGP' ? 'neighbour' : 'static'} ${p.name.padEnd(12)} ${p.state.padEnd(6)} ${p.session ?? ''}${exported ? `; exported ${exported}` : ''}`);
  }
  for (const f of b.bfd ?? []) out.push(`  bfd       ${f.address.padEnd(12)} ${f.state.padEnd(6)} on ${f.iface} since ${f.since}`);
  return out;
}
