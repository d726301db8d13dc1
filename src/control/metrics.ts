/**
 * Prometheus metrics of a node, built from its status at each scrape (a fresh registry per
 * scrape: no global registry, nothing to keep in step). Served over the control socket
 * (`fwlb metrics`) and, with `fwlb run --metrics ADDR:PORT`, over HTTP at /metrics.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { NodeStatus } from '../services/node-daemon.js';

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

export async function renderMetrics(s: NodeStatus): Promise<string> {
  const r = new Registry();
  r.setDefaultLabels({ node: s.node, cluster: s.cluster });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [r] });
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [r] });
  const m: Makers = { gauge, counter };

  gauge('fwlb_ready', 'The node is ready: ruleset applied, VRRP running, its state table complete (1) or not (0)').set(s.ready.ready ? 1 : 0);
  if (s.ready.startToReadyMs !== null) gauge('fwlb_start_to_ready_seconds', 'From the process start to ready').set(s.ready.startToReadyMs / 1000);
  gauge('fwlb_ruleset_apply_seconds', 'How long the last ruleset transaction took').set(s.ruleset.applyMs / 1000);
  gauge('fwlb_ruleset_bytes', 'Size of the applied ruleset script').set(s.ruleset.bytes);
  gauge('fwlb_blocked_prefixes', 'Prefixes in the block list').set(s.ruleset.blockedPrefixes);
  const reloads = counter('fwlb_reloads_total', 'Config reloads by outcome', ['result']);
  reloads.inc({ result: 'ok' }, s.reloads.ok);
  reloads.inc({ result: 'failed' }, s.reloads.failed);
  const cd = s.config.distribution;
  if (cd) {
    gauge('fwlb_config_version', 'The cluster config version this node runs (0: none pushed yet)').set(cd.version);
    gauge('fwlb_config_local_changes', 'The running config is not its version as pushed (changed and reloaded by hand)').set(cd.localChanges ? 1 : 0);
    const inStep = gauge('fwlb_config_peer_in_step', 'The peer runs the same config version and files as this node (1), or not (0: behind, ahead, other files, unknown)', ['peer']);
    for (const [peer, p] of Object.entries(cd.peers)) inStep.set({ peer }, p.state === 'same' ? 1 : 0);
    gauge('fwlb_config_confirm_pending', 'A commit-confirm waits for its confirm').set(cd.confirm ? 1 : 0);
    const refused = counter('fwlb_config_refused_total', 'Configs from peers (or pushed here) refused, by reason; frames refused by the link (bad signature, strangers) under link_*', ['reason']);
    for (const [reason, n] of Object.entries(cd.counters.refused)) refused.inc({ reason }, n ?? 0);
    for (const [reason, n] of Object.entries(cd.link?.refused ?? {})) refused.inc({ reason: `link_${reason}` }, n);
    counter('fwlb_config_rollbacks_total', 'Versions rolled back for a missed confirm').inc(cd.counters.rollbacks);
    if (cd.runtime) {
      gauge('fwlb_runtime_version', "The cluster's runtime-change version this node holds (backend and maintenance changes made with --cluster)").set(cd.runtime.version);
      const kept = gauge('fwlb_runtime_changes', 'Runtime changes kept in the state file and replayed at start, by scope (local: this node only; cluster: made with --cluster)', ['scope']);
      kept.set({ scope: 'local' }, cd.runtime.local);
      kept.set({ scope: 'cluster' }, cd.runtime.shared);
    }
  }

  const up = gauge('fwlb_backend_up', 'Backend takes new flows (enabled, healthy, weight > 0)', ['service', 'backend']);
  const healthy = gauge('fwlb_backend_healthy', 'Health check verdict (1 up, 0 down; unchecked backends count as up)', ['service', 'backend']);
  const weight = gauge('fwlb_backend_weight', 'Backend weight', ['service', 'backend']);
  const share = gauge('fwlb_backend_table_share', "Backend's share of the service's slot table", ['service', 'backend']);
  const active = gauge('fwlb_backend_active_connections', 'Established flows to the backend (conntrack)', ['service', 'backend']);
  const fresh = counter('fwlb_backend_new_connections_total', 'New flows sent to the backend (kernel counter)', ['service', 'backend']);
  for (const svc of s.services) {
    for (const b of svc.backends) {
      const l = { service: svc.name, backend: b.name };
      up.set(l, b.slots > 0 ? 1 : 0);
      healthy.set(l, b.health === 'down' ? 0 : 1);
      weight.set(l, b.weight);
      share.set(l, svc.tableSize ? b.slots / svc.tableSize : 0);
      if (b.activeConnections !== null) active.set(l, b.activeConnections);
      if (b.newConnections !== null) fresh.inc(l, b.newConnections);
    }
  }

  const state = gauge('fwlb_vrrp_state', 'VRRP instance state (1 for the current one)', ['group', 'instance', 'state']);
  const prio = gauge('fwlb_vrrp_priority', 'Effective VRRP priority', ['group', 'instance']);
  const transitions = counter('fwlb_vrrp_group_transitions_total', 'Sync group state changes since VRRP started', ['group']);
  for (const g of s.vrrp.groups) {
    transitions.inc({ group: g.name }, g.transitions);
    for (const i of g.instances) {
      for (const st of ['initialize', 'backup', 'master', 'fault']) state.set({ group: g.name, instance: i.name, state: st }, i.state === st ? 1 : 0);
      prio.set({ group: g.name, instance: i.name }, i.priority);
    }
  }
  gauge('fwlb_vrrp_maintenance', 'Demoted by hand (fwlb maintenance on)').set(s.vrrp.maintenance ? 1 : 0);
  const events = counter('fwlb_vrrp_events_total', 'VRRP events: split brain, priority 0 sent and received, ...', ['event']);
  for (const [k, n] of Object.entries(s.vrrp.counters)) events.inc({ event: k }, n);
  const dropped = counter('fwlb_vrrp_rx_dropped_total', 'Received VRRP packets dropped, by reason', ['reason']);
  for (const [k, n] of Object.entries(s.vrrp.drops)) dropped.inc({ reason: k }, n ?? 0);
  counter('fwlb_vrrp_foreign_adverts_total', 'Adverts for virtual routers that are not ours').inc(s.vrrp.foreignAdverts);
  counter('fwlb_vrrp_garp_refresh_total', 'Gratuitous ARPs sent by the refresh while master').inc(s.vrrp.garpRefreshes ?? 0);
  if (s.vrrp.adverts) {
    const a = s.vrrp.adverts;
    const adv = counter('fwlb_vrrp_adverts_total', "The master's adverts sent by their own thread: sent, failed, expired (the daemon stopped renewing them)", ['result']);
    adv.inc({ result: 'sent' }, a.sent);
    adv.inc({ result: 'failed' }, a.failed);
    adv.inc({ result: 'expired' }, a.expired);
    gauge('fwlb_vrrp_advert_late_max_seconds', 'The latest an advert left past its due time').set(a.lateMaxMs / 1000);
  }

  syncMetrics(s, m);
  livenessMetrics(s, m);
  clusterMetrics(s, m);
  if (s.sharing) {
    const h = s.sharing;
    gauge('fwlb_sharing_ready', 'This node takes its share (1: ready, its table complete)').set(h.ready ? 1 : 0);
    gauge('fwlb_sharing_members', 'Nodes sharing the traffic, as this node sees them').set(h.members.length);
    gauge('fwlb_sharing_buckets_owned', 'Buckets this node owns').set(h.owned);
    gauge('fwlb_sharing_buckets', 'Buckets of the flow hash').set(h.buckets);
    counter('fwlb_sharing_ownership_moves_total', 'Times the bucket owners changed (a member came or went)').inc(h.moves);
    counter('fwlb_sharing_apply_failures_total', 'Writes of the owned buckets the kernel refused').inc(h.applyFailures);
    const pk = counter('fwlb_sharing_packets_total', "Packets of shared flows: carried, dropped as another node's, dropped with no daemon", ['verdict']);
    pk.inc({ verdict: 'carried' }, h.packets.carried);
    pk.inc({ verdict: 'others' }, h.packets.others);
    pk.inc({ verdict: 'no_daemon' }, h.packets.noDaemon);
    gauge('fwlb_sharing_links_down', 'Links with shared addresses that are down (the node carries nothing meanwhile)').set(h.linksDown.length);
  }
  bgpMetrics(s, { gauge, counter });
  if (s.control) {
    gauge('fwlb_control_connections', 'Control socket connections being served').set(s.control.connections);
    gauge('fwlb_control_waiting', 'Control socket connections waiting for a turn').set(s.control.waiting);
    const refused = counter('fwlb_control_refused_total', 'Control requests refused and connections cut, by reason (busy, too_large, idle, evicted: idle the longest when a new one needed room, bad_request, unknown_command)', ['reason']);
    for (const [k, n] of Object.entries(s.control.refused)) refused.inc({ reason: k }, n);
  }
  const nlDropped = counter('fwlb_netlink_dropped_total', 'Netlink messages dropped by our sockets, by reason', ['socket', 'reason']);
  const nlLost = counter('fwlb_netlink_lost_total', 'Times the kernel reported lost netlink messages (ENOBUFS)', ['socket']);
  for (const [name, socks] of Object.entries(s.netlink ?? {})) {
    for (const [kind, c] of Object.entries(socks)) {
      if (!c) continue;
      const socket = `${name}/${kind}`;
      nlLost.inc({ socket }, c.lost);
      for (const [reason, n] of Object.entries(c.dropped)) nlDropped.inc({ socket, reason }, n ?? 0);
    }
  }
  return r.metrics();
}

/** Makers of this scrape's gauges and counters (one registry per scrape). */
interface Makers {
  gauge: (name: string, help: string, labelNames?: string[]) => Gauge;
  counter: (name: string, help: string, labelNames?: string[]) => Counter;
}

/** The node's place in the cluster as its events say it (fsm/cluster.ts): ready with shared links up, peers by state, events by type. */
function clusterMetrics(s: NodeStatus, { gauge, counter }: Makers): void {
  if (!s.role) return;
  gauge('fwlb_cluster_ready', 'Ready as the cluster events say it: as fwlb_ready, and every shared link up (1) or not (0)').set(s.role.ready.ready ? 1 : 0);
  const peers = gauge('fwlb_cluster_peers', 'Peers by the state the liveness last said', ['state']);
  for (const st of ['up', 'down', 'leaving']) peers.set({ state: st }, Object.values(s.role.peers).filter((p) => p === st).length);
  const ev = counter('fwlb_cluster_events_total', 'Cluster events since the start, by type (a flapping peer or group climbs)', ['type']);
  for (const [type, n] of Object.entries(s.role.eventCounts ?? {})) ev.inc({ type }, n);
}

/** The state sync: events, drops, completeness, per peer alive, synced, lag, queue. */
function syncMetrics(s: NodeStatus, { gauge, counter }: Makers): void {
  if (!s.sync) return;
  const ev = counter('fwlb_sync_events_total', 'State sync: records, messages, retransmissions, acks, bulk syncs, overflows', ['counter']);
  for (const [k, n] of Object.entries(s.sync.counters)) ev.inc({ counter: k }, n);
  const sd = counter('fwlb_sync_rx_dropped_total', 'State sync datagrams and records dropped, by reason (auth, replay, decode, ...)', ['reason']);
  for (const [k, n] of Object.entries(s.sync.drops)) sd.inc({ reason: k }, n);
  const refused = counter('fwlb_sync_writes_refused_total', 'State sync writes the kernel refused, by operation and errno', ['write']);
  for (const [k, n] of Object.entries(s.sync.applyErrorsBy ?? {})) refused.inc({ write: k }, n);
  if (s.sync.socketDrops !== null && s.sync.socketDrops !== undefined) counter('fwlb_sync_socket_drops_total', 'State sync datagrams the kernel dropped on a full receive buffer').inc(s.sync.socketDrops);
  gauge('fwlb_sync_complete', 'Our state table is complete (bulk sync done, or alone)').set(s.sync.bulk.complete ? 1 : 0);
  const alive = gauge('fwlb_sync_peer_alive', 'A peer heard within the dead interval', ['peer']);
  const ready = gauge('fwlb_sync_peer_synced', "A peer's own table is complete (its HELLO says so)", ['peer']);
  const lag = gauge('fwlb_sync_peer_lag_seconds', 'Age of the oldest record not yet acked by the peer', ['peer']);
  const queued = gauge('fwlb_sync_peer_queued_records', 'Records waiting to be sent to the peer', ['peer']);
  const lagQ = gauge('fwlb_sync_peer_lag_quantile_seconds', 'Lag of the live changes the peer acknowledged in the last minute (queued to acked), by quantile (0.5, 0.99; the bucket edge, at most 10% high)', ['peer', 'quantile']);
  const behind = gauge('fwlb_sync_peer_behind', "The peer's oldest unacknowledged change is older than state_sync.lag_bound", ['peer']);
  for (const p of s.sync.peers) {
    alive.set({ peer: p.peer }, p.alive ? 1 : 0);
    ready.set({ peer: p.peer }, p.peerSynced ? 1 : 0);
    lag.set({ peer: p.peer }, p.lagMs / 1000);
    queued.set({ peer: p.peer }, p.queuedRecords);
    const m = p.lag?.lastMinute;
    if (m?.p50Ms != null) lagQ.set({ peer: p.peer, quantile: '0.5' }, m.p50Ms / 1000);
    if (m?.p99Ms != null) lagQ.set({ peer: p.peer, quantile: '0.99' }, m.p99Ms / 1000);
    behind.set({ peer: p.peer }, p.lag?.behind ? 1 : 0);
  }
  if (s.sync.writeBacklog) {
    gauge('fwlb_sync_write_backlog_records', "Records received from the peers and not yet in our kernel").set(s.sync.writeBacklog.records);
    gauge('fwlb_sync_write_backlog_oldest_seconds', 'How long the oldest record waiting for our kernel has waited').set(s.sync.writeBacklog.oldestMs / 1000);
  }
  if (s.liveness?.own) gauge('fwlb_sync_behind', "This node's table lags a peer's by more than state_sync.lag_bound (as its BEATs say)").set(s.liveness.own.behind ? 1 : 0);
}

/** The liveness: peers up and gone, takeovers, BEATs, drops, timing. */
function livenessMetrics(s: NodeStatus, { gauge, counter }: Makers): void {
  if (!s.liveness) return;
  if (s.liveness.thread) {
    counter('fwlb_liveness_thread_failures_total', 'Times the timing thread (BEATs, adverts) died').inc(s.liveness.thread.failures);
    counter('fwlb_liveness_restarts_total', 'Times a new timing thread was started after one died (3 a minute at most)').inc(s.liveness.thread.restarts);
  }
  const up = gauge('fwlb_liveness_peer_up', "A peer's liveness BEATs arrive (1), or it is gone (0)", ['peer']);
  const downs = counter('fwlb_liveness_peer_gone_total', 'Times a peer was taken for gone (no BEAT for its detection time)', ['peer']);
  const taken = counter('fwlb_liveness_takeovers_total', 'Virtual routers taken over because their master was gone', ['peer']);
  for (const p of s.liveness.peers) {
    up.set({ peer: p.peer }, p.state === 'up' ? 1 : 0);
    downs.inc({ peer: p.peer }, p.downs);
    taken.inc({ peer: p.peer }, p.released);
  }
  const beats = counter('fwlb_liveness_beats_total', 'Liveness BEATs sent and received', ['direction']);
  beats.inc({ direction: 'sent' }, s.liveness.counters.sent);
  beats.inc({ direction: 'received' }, s.liveness.counters.received);
  const bd = counter('fwlb_liveness_rx_dropped_total', 'Liveness datagrams dropped, by reason', ['reason']);
  for (const [k, n] of Object.entries(s.liveness.counters.dropped)) bd.inc({ reason: k }, n);
  const t = s.liveness.counters.timing;
  if (t) {
    gauge('fwlb_liveness_timer_late_max_seconds', 'The latest our BEAT timer fired past its due time').set(t.tickLateMaxMs / 1000);
    counter('fwlb_liveness_detections_deferred_total', "Detections put off because the peer's silence fell in a hold of our own thread").inc(t.deferred ?? 0);
    const gap = gauge('fwlb_liveness_beat_gap_max_seconds', "The longest time between two of a peer's BEATs", ['peer']);
    for (const [peer, g] of Object.entries(t.peers)) gap.set({ peer }, g.gapMaxMs / 1000);
  }
}

/** BGP (issue 26): the kill switch, what is announced, BIRD's errors and its sessions. */
function bgpMetrics(s: NodeStatus, { gauge, counter }: Makers): void {
  const b = s.bgp;
  if (!b) return;
  gauge('fwlb_bgp_device_up', 'The BGP kill-switch device is up: the routes in BIRD are announced (0: all withdrawn)').set(b.deviceUp ? 1 : 0);
  gauge('fwlb_bgp_announced_addresses', 'Addresses this node announces through BIRD now').set(b.deviceUp ? b.announced.length : 0);
  gauge('fwlb_bgp_graceful_shutdown', 'The routes carry GRACEFUL_SHUTDOWN: the node drains before it withdraws').set(b.gracefulShutdown ? 1 : 0);
  gauge('fwlb_bgp_error', 'BIRD could not be reached or refused the file (1): everything withdrawn meanwhile').set(b.error ? 1 : 0);
  counter('fwlb_bgp_configures_total', 'Times BIRD was asked to re-read its config').inc(b.configures);
  const est = gauge('fwlb_bgp_session_established', "BIRD's BGP sessions, 1 when Established", ['protocol']);
  for (const p of b.protocols ?? []) if (p.proto === 'BGP') est.set({ protocol: p.name }, p.session === 'Established' ? 1 : 0);
  const bfd = gauge('fwlb_bgp_bfd_session_up', "BIRD's BFD sessions, 1 when Up", ['neighbor']);
  for (const f of b.bfd ?? []) bfd.set({ neighbor: f.address }, f.state === 'Up' ? 1 : 0);
  if (b.relay) {
    counter('fwlb_bgp_relay_seen_packets_total', 'Packets to the announced addresses that came in on the outer link (relay table)').inc(b.relay.seen);
    counter('fwlb_bgp_relayed_packets_total', "Of those, the packets relayed to their bucket's owner").inc(b.relay.relayed);
  }
}
