/**
 * The live status page (issue 23), served beside /metrics by the metrics listener
 * (control/metrics-http.ts): `/` the page, `/status.js` its script, `/status.json` the node's
 * status (what `fwlb status --json` prints). Plain HTML, CSS and JS, no build step, no
 * network but the node itself: the script asks for /status.json every second and redraws,
 * so a failover, a bucket moving or a backend going down shows without a reload.
 *
 * What an operator looks at first: is the node ready (and why not), each VRRP group's state
 * and the VIPs it holds, who is master of each instance, the peers, under sharing the
 * buckets owned, the state sync's health, each service's backends with health, weight,
 * share and connections, and the last cluster events. The script builds the page with
 * textContent only: nothing from the status is ever parsed as HTML.
 */

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fwlb status</title>
<style>
  :root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --mute: #57606a; --line: #d0d7de; }
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  header { display: flex; gap: 1.5em; align-items: baseline; padding: 0.8em 1.2em; background: #fff; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
  header h1 { font-size: 1.25em; margin: 0; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; padding: 1em 1.2em; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.6em 0.9em; overflow-x: auto; }
  section h2 { font-size: 1em; margin: 0.2em 0 0.5em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 0.2em 0.5em 0.2em 0; border-bottom: 1px solid #eaeef2; vertical-align: top; }
  th { color: var(--mute); font-weight: 600; }
  .ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; } .warn { color: var(--warn); font-weight: 600; }
  .mute { color: var(--mute); } .mono { font-family: ui-monospace, monospace; }
  #events li { list-style: none; padding: 0.1em 0; } #events { padding: 0; margin: 0; max-height: 28em; overflow: auto; }
</style>
</head>
<body>
<header>
  <h1>fwlb <span id="node" class="mono">…</span></h1>
  <span>cluster <b id="cluster">…</b></span>
  <span id="ready">…</span>
  <span class="mute">config <span id="digest" class="mono">…</span><span id="cfgver"></span>, reloads <span id="reloads">…</span></span>
  <span class="mute" id="updated">connecting…</span>
</header>
<main>
  <section id="vrrp"><h2>VRRP: groups, instances, who holds what</h2><div id="groups"></div></section>
  <section><h2>Peers</h2><table id="peers"></table></section>
  <section id="sharing-box" hidden><h2>Sharing</h2><div id="sharing"></div></section>
  <section id="bgp-box" hidden><h2>BGP</h2><div id="bgp"></div></section>
  <section><h2>State sync</h2><div id="sync"></div></section>
  <section><h2>Services and backends</h2><div id="services"></div></section>
  <section><h2>Recent events</h2><ul id="events"></ul></section>
</main>
<script src="/status.js"></script>
</body>
</html>
`;

export const STATUS_PAGE_JS = `'use strict';
const $ = (id) => document.getElementById(id);
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
  }
  for (const k of kids) if (k !== undefined && k !== null) e.append(k instanceof Node ? k : String(k));
  return e;
}
const stateClass = (s) => (s === 'master' || s === 'up' || s === 'healthy' || s === 'done' ? 'ok' : s === 'fault' || s === 'down' || s === 'unhealthy' || s === 'not-ready' ? 'bad' : 'warn');
function table(head, rows) {
  const t = el('table');
  t.append(el('tr', null, ...head.map((h) => el('th', null, h))));
  for (const r of rows) t.append(r);
  return t;
}
function ago(ms) { return ms < 1000 ? ms + ' ms' : ms < 120000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms / 60000) + ' min'; }

function render(st) {
  $('node').textContent = st.node;
  $('cluster').textContent = st.cluster;
  const r = st.ready || { ready: false, reason: '?' };
  $('ready').replaceChildren(el('span', { class: r.ready ? 'ok' : 'bad', 'data-ready': String(r.ready) }, r.ready ? 'ready' : 'not ready: ' + r.reason));
  $('digest').textContent = (st.config && st.config.digest || '').slice(0, 12);
  $('reloads').textContent = st.reloads ? st.reloads.ok + ' ok, ' + st.reloads.failed + ' failed' : '-';
  // The cluster version of the config; a peer on another one, or a confirm waiting, flagged.
  const d = st.config && st.config.distribution;
  $('cfgver').replaceChildren(...(d ? [
    el('span', null, ', version ' + d.version + (d.localChanges ? ' (changed by hand)' : '')),
    ...Object.entries(d.peers || {}).filter(([, p]) => p.state !== 'same').map(([n, p]) => el('span', { class: 'bad', 'data-config-peer': n }, ' ' + n + ': ' + p.state + ' (version ' + (p.version === null ? '?' : p.version) + ')')),
    ...(d.confirm ? [el('span', { class: 'bad' }, ' not confirmed: rolls back in ' + Math.round(d.confirm.inMs / 1000) + ' s')] : []),
  ] : []));

  const groups = (st.vrrp && st.vrrp.groups) || [];
  const held = (st.role && st.role.groups) || {};
  $('groups').replaceChildren(...(groups.length ? groups.map((g) => el('div', { 'data-group': g.name },
    el('p', null, el('b', null, g.name), ' ', el('span', { class: 'state ' + stateClass(g.state) }, g.state), ' ',
      el('span', { class: 'mute' }, (held[g.name] && held[g.name].held.length ? 'holds ' + held[g.name].held.join(', ') : 'holds no VIP') + '; ' + g.transitions + ' transitions')),
    table(['instance', 'if', 'VRID', 'state', 'prio', 'master', 'VIPs'], g.instances.map((i) => el('tr', { 'data-instance': i.name },
      el('td', null, i.name + (i.family === 6 ? ' (IPv6)' : '')), el('td', { class: 'mono' }, i.interface), el('td', null, i.vrid),
      el('td', { class: 'state ' + stateClass(i.state) }, i.state + (i.faults && i.faults.length ? ' (' + i.faults.join(', ') + ')' : '')),
      el('td', null, i.priority),
      el('td', { class: 'mono master' }, i.state === 'master' ? 'this node' : i.master ? i.master.address + ' (prio ' + i.master.priority + ')' : '-'),
      el('td', { class: 'mono' }, i.addresses.join(' '))))))) : [el('p', { class: 'mute' }, 'no VRRP groups')]));

  const peers = Object.entries((st.role && st.role.peers) || {});
  const live = (st.liveness && st.liveness.peers) || [];
  // The liveness peers (services/liveness.ts LivenessStatus): BEATs, last heard, downs.
  $('peers').replaceChildren(...table(['peer', 'state', 'ready', 'BEATs', 'last heard', 'downs'], peers.map(([p, s]) => {
    const l = live.find((x) => x.peer === p);
    return el('tr', { 'data-peer': p }, el('td', null, p), el('td', { class: stateClass(s) }, s),
      el('td', null, l ? (l.ready ? 'yes' : 'no') : '-'), el('td', null, l ? l.beats : '-'),
      el('td', { class: 'mute' }, l && l.lastBeatAgoMs !== null ? ago(l.lastBeatAgoMs) + ' ago' : '-'), el('td', null, l ? l.downs : '-'));
  })).childNodes);

  const sh = st.sharing;
  $('sharing-box').hidden = !sh;
  if (sh) $('sharing').replaceChildren(
    el('p', null, el('span', { class: sh.ready ? 'ok' : 'bad' }, sh.ready ? 'carrying' : 'not carrying'), ' ', sh.owned + ' of ' + sh.buckets + ' buckets; members ' + (sh.members || []).join(', ')),
    table(['member', 'buckets'], Object.entries(sh.shares || {}).sort().map(([m, n]) => el('tr', { 'data-member': m }, el('td', null, m), el('td', null, n + ' (' + (100 * n / sh.buckets).toFixed(1) + '%)')))),
    el('p', { class: 'mute' }, 'packets carried ' + sh.packets.carried + ', others\\' dropped ' + sh.packets.others + (sh.linksDown && sh.linksDown.length ? '; links down: ' + sh.linksDown.join(', ') : '')));

  const bg = st.bgp;
  $('bgp-box').hidden = !bg;
  if (bg) $('bgp').replaceChildren(
    el('p', null, el('span', { class: bg.error ? 'bad' : bg.deviceUp ? 'ok' : 'warn' }, bg.deviceUp ? (bg.gracefulShutdown ? 'draining' : 'announcing') : 'withdrawn'), ' ', bg.why),
    el('p', { class: 'mono' }, bg.deviceUp && bg.announced.length ? bg.announced.join(', ') : '-'),
    ...(bg.error ? [el('p', { class: 'bad' }, bg.error)] : []),
    table(['protocol', 'kind', 'state', 'session', 'exported'], (bg.protocols || []).filter((p) => p.proto === 'BGP' || p.proto === 'Static').map((p) => el('tr', { 'data-protocol': p.name },
      el('td', null, p.name), el('td', null, p.proto), el('td', { class: p.state === 'up' ? 'ok' : 'bad' }, p.state), el('td', null, p.session || '-'),
      el('td', null, Object.entries(p.exported || {}).map(([c, n]) => c + ' ' + n).join(', ') || '-')))),
    ...(bg.bfd && bg.bfd.length ? [el('p', null, 'BFD: ', ...bg.bfd.map((f) => el('span', { class: f.state === 'Up' ? 'ok' : 'bad' }, f.address + ' ' + f.state + ' ')))] : []),
    ...(bg.relay ? [el('p', null, 'relay: ' + bg.relay.seen + ' packets from the router, ' + bg.relay.relayed + ' relayed to the owners of their buckets')] : []),
    el('p', { class: 'mute' }, 'BIRD ' + bg.socket + (bg.lastConfigure ? '; last configure: ' + bg.lastConfigure.message : '') + (bg.protocols === null ? '; BIRD did not answer' : '')));

  const sy = st.sync;
  $('sync').replaceChildren(...(sy ? [
    el('p', null, 'bulk sync ', el('span', { class: stateClass(sy.bulk.state) }, sy.bulk.state), ' ', el('span', { class: 'mute' }, sy.bulk.text)),
    el('p', null, 'sent ' + sy.sent + ', applied ' + sy.applied + ', apply errors ' + sy.applyErrors + ', socket drops ' + (sy.socketDrops === null ? '?' : sy.socketDrops)),
    ...(st.liveness && st.liveness.own && st.liveness.own.behind ? [el('p', { class: 'bad' }, 'this node is behind its peers (their BEATs say so)')] : []),
    // One row per sync link (fsm/sync/link.ts linkStatus): session, lag, queue, resync.
    table(['peer', 'session', 'table', 'oldest unacked', 'lag p50 / p99, last minute', 'queued', 'in flight', 'resync'], (sy.peers || []).map((p) => el('tr', { 'data-sync-peer': p.peer },
      el('td', null, p.peer), el('td', { class: p.session && p.alive ? 'ok' : 'bad' }, p.session ? (p.alive ? 'up' : 'silent') : 'none'),
      el('td', { class: p.peerSynced ? 'ok' : 'warn' }, p.peerLeaving ? 'leaving' : p.peerSynced ? 'complete' : 'incomplete'),
      el('td', { class: p.lag && p.lag.behind ? 'bad' : '' }, Math.round(p.lagMs) + ' ms' + (p.lag && p.lag.behind ? ' (behind)' : '')),
      el('td', null, p.lag && p.lag.lastMinute.p50Ms !== null ? p.lag.lastMinute.p50Ms + ' / ' + p.lag.lastMinute.p99Ms + ' ms' : '-'),
      el('td', null, p.queuedRecords + ' records'), el('td', null, p.inFlight), el('td', { class: p.resync === 'none' ? 'mute' : 'warn' }, p.resync)))),
  ] : [el('p', { class: 'mute' }, 'off')]));

  const svcs = st.services || [];
  $('services').replaceChildren(...(svcs.length ? svcs.map((s) => el('div', { 'data-service': s.name },
    el('p', null, el('b', null, s.name), ' ', el('span', { class: 'mono' }, s.listen), el('span', { class: 'mute' }, ' ' + s.scheduler + ', ' + s.tableSize + ' slots')),
    table(['backend', 'address', 'health', 'admin', 'weight', 'share', 'active', 'new'], s.backends.map((b) => el('tr', { 'data-backend': b.name },
      el('td', null, b.name), el('td', { class: 'mono' }, b.address), el('td', { class: stateClass(b.health), title: b.healthDetail }, b.health), el('td', null, b.admin),
      el('td', null, b.weight), el('td', null, s.tableSize ? (100 * b.slots / s.tableSize).toFixed(1) + '%' : '-'),
      el('td', null, b.activeConnections === null ? '-' : b.activeConnections), el('td', null, b.newConnections === null ? '-' : b.newConnections)))))) : [el('p', { class: 'mute' }, 'no services')]));

  const now = Date.now();
  const evs = (st.events || []).slice().reverse();
  $('events').replaceChildren(...evs.map((e) => {
    const { type, at, ...rest } = e;
    const detail = Object.entries(rest).map(([k, v]) => k + ' ' + (Array.isArray(v) ? v.join(' ') : typeof v === 'object' ? JSON.stringify(v) : v)).join(', ');
    return el('li', { 'data-event': type }, el('span', { class: 'mute' }, new Date(at).toLocaleTimeString() + ' '), el('b', null, type), ' ', detail);
  }));
  $('updated').textContent = 'updated ' + new Date(now).toLocaleTimeString();
  $('updated').className = 'mute';
}

async function tick() {
  try {
    const res = await fetch('/status.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(res.status + ' ' + (await res.text()));
    render(await res.json());
  } catch (e) {
    $('updated').textContent = 'no answer from the node: ' + e.message;
    $('updated').className = 'bad';
  } finally {
    setTimeout(tick, 1000);
  }
}
tick();
`;
