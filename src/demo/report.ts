/**
 * The demo's report as a picture (issue 23): one self-contained HTML file (inline CSS and
 * SVG, no script, nothing fetched) with the checks and, per failover, a timeline of what the
 * client saw: the new connections it opened every few milliseconds, per 50 ms, answered or
 * failed; when the master failed and when the backup said it was master (from its own
 * cluster events); who held the VIPs; the longest gap and the long sessions kept. Pure: the
 * demo hands it the figures.
 */
import type { ProbeRecord } from '../lab/probe-stats.js';

export interface FailoverFigures {
  name: string;
  /** The prober's requests (offset ms from its start, who answered or null, duration). */
  probes: readonly ProbeRecord[];
  /** When the failure was caused and when the backup became master: ms from the prober's start (null: not seen). */
  failAt: number;
  takeoverAt: number | null;
  from: string;
  to: string;
  gapMs: number;
  failed: number;
  sessions: { label: string; kept: number; total: number; worstStallMs: number | null }[];
}

/**
 * Active-active: the buckets each node's status said it owned, sampled over a failure and a
 * rejoin. BGP: the router's next hops per node (1 or 0), `unit` and `source` saying so.
 */
export interface BucketTimeline {
  name: string;
  nodes: readonly string[];
  /** The scale's top: every bucket, or every node. */
  buckets: number;
  /** What a sample counts (default "buckets") and where it came from (default "owned, as each node's status said"). */
  unit?: string;
  source?: string;
  /** Each node in a lane of its own (a sample of 1 fills it) instead of stacked: which nodes, not how many. */
  lanes?: boolean;
  /** ms from the first sample; per node its owned buckets, null when it did not answer. */
  samples: readonly { t: number; owned: Readonly<Record<string, number | null>> }[];
  /** What happened when (ms from the first sample): the failure, the restart, the members again. */
  marks: readonly { t: number; label: string }[];
}

export interface DemoReport {
  title: string;
  date: string;
  checks: readonly { name: string; ok: boolean; detail: string }[];
  failovers: readonly FailoverFigures[];
  buckets?: readonly BucketTimeline[];
}

const BIN_MS = 50;
const W = 760;
const H = 150;
const PAD = { l: 44, r: 10, t: 24, b: 30 };

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The timeline of one failover as an SVG. */
export function timelineSvg(f: FailoverFigures): string {
  const end = Math.max(BIN_MS, ...f.probes.map(([t]) => t + BIN_MS), f.failAt + BIN_MS, (f.takeoverAt ?? 0) + BIN_MS);
  const bins = Math.ceil(end / BIN_MS);
  const ok = new Array<number>(bins).fill(0);
  const bad = new Array<number>(bins).fill(0);
  for (const [t, who] of f.probes) (who === null ? bad : ok)[Math.min(bins - 1, Math.floor(t / BIN_MS))]!++;
  const top = Math.max(1, ...ok.map((n, i) => n + bad[i]!));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (ms: number) => PAD.l + (ms / (bins * BIN_MS)) * iw;
  const y = (n: number) => PAD.t + ih - (n / top) * ih;
  const bw = Math.max(1, iw / bins - 1);
  const parts: string[] = [];
  // Who held the VIPs: the old master until the failure, nobody until the takeover, the new one after.
  const band = (a: number, b: number, cls: string, label: string) =>
    b > a ? `<rect class="${cls}" x="${x(a).toFixed(1)}" y="4" width="${(x(b) - x(a)).toFixed(1)}" height="14"/>${x(b) - x(a) > 7 * label.length ? `<text x="${(x(a) + 4).toFixed(1)}" y="15" class="band-label">${esc(label)}</text>` : ''}` : '';
  const takeover = f.takeoverAt ?? bins * BIN_MS;
  parts.push(band(0, f.failAt, 'held-old', `${f.from} holds the VIPs`), band(f.failAt, takeover, 'held-none', 'moving'), band(takeover, bins * BIN_MS, 'held-new', `${f.to} holds the VIPs`));
  for (let i = 0; i < bins; i++) {
    if (ok[i]) parts.push(`<rect class="ok" x="${x(i * BIN_MS).toFixed(1)}" y="${y(ok[i]!).toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(0) - y(ok[i]!)).toFixed(1)}"/>`);
    if (bad[i]) parts.push(`<rect class="failed" x="${x(i * BIN_MS).toFixed(1)}" y="${y(ok[i]! + bad[i]!).toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(ok[i]!) - y(ok[i]! + bad[i]!)).toFixed(1)}"/>`);
  }
  parts.push(`<line class="fail" x1="${x(f.failAt).toFixed(1)}" x2="${x(f.failAt).toFixed(1)}" y1="${PAD.t}" y2="${PAD.t + ih}"><title>failure caused at ${Math.round(f.failAt)} ms</title></line>`);
  if (f.takeoverAt !== null) parts.push(`<line class="takeover" x1="${x(f.takeoverAt).toFixed(1)}" x2="${x(f.takeoverAt).toFixed(1)}" y1="${PAD.t}" y2="${PAD.t + ih}"><title>${esc(f.to)} master at ${Math.round(f.takeoverAt)} ms</title></line>`);
  // Axes: time every 500 ms, the count at the top.
  parts.push(`<line class="axis" x1="${PAD.l}" x2="${PAD.l + iw}" y1="${PAD.t + ih}" y2="${PAD.t + ih}"/>`);
  for (let t = 0; t <= bins * BIN_MS; t += 500) parts.push(`<text class="tick" x="${x(t).toFixed(1)}" y="${H - 12}" text-anchor="middle">${t / 1000} s</text>`);
  parts.push(`<text class="tick" x="${PAD.l - 6}" y="${PAD.t + 4}" text-anchor="end">${top}</text><text class="tick" x="${PAD.l - 6}" y="${PAD.t + ih}" text-anchor="end">0</text>`);
  return `<svg class="timeline" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(f.name)}: new connections per ${BIN_MS} ms">${parts.join('')}</svg>`;
}

const NODE_COLOURS = ['#0969da', '#bf8700', '#8250df', '#1a7f37', '#cf222e', '#57606a'];

/** The buckets per node over time as an SVG: one stacked bar per sample, the marks as lines. */
export function bucketsSvg(b: BucketTimeline): string {
  const end = Math.max(1, ...b.samples.map((x) => x.t), ...b.marks.map((m) => m.t));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (ms: number) => PAD.l + (ms / end) * iw;
  const y = (n: number) => PAD.t + ih - (n / b.buckets) * ih;
  const parts: string[] = [];
  b.samples.forEach((smp, i) => {
    const next = b.samples[i + 1]?.t ?? smp.t + (smp.t - (b.samples[i - 1]?.t ?? smp.t - 100));
    const w = Math.max(0.5, x(next) - x(smp.t));
    let acc = 0;
    b.nodes.forEach((n, k) => {
      const v = smp.owned[n] ?? 0;
      if (b.lanes) acc = k;
      if (v > 0) parts.push(`<rect fill="${NODE_COLOURS[k % NODE_COLOURS.length]}" x="${x(smp.t).toFixed(1)}" y="${y(acc + v).toFixed(1)}" width="${w.toFixed(1)}" height="${(y(acc) - y(acc + v)).toFixed(1)}"><title>${esc(n)}: ${v} ${esc(b.unit ?? 'buckets')} at ${(smp.t / 1000).toFixed(2)} s</title></rect>`);
      acc += v;
    });
  });
  for (const m of b.marks) parts.push(`<line class="fail" x1="${x(m.t).toFixed(1)}" x2="${x(m.t).toFixed(1)}" y1="${PAD.t - 10}" y2="${PAD.t + ih}"/><text class="band-label" x="${(x(m.t) + 3).toFixed(1)}" y="${PAD.t - 2}">${esc(m.label)}</text>`);
  parts.push(`<line class="axis" x1="${PAD.l}" x2="${PAD.l + iw}" y1="${PAD.t + ih}" y2="${PAD.t + ih}"/>`);
  const step = end > 20_000 ? 5000 : end > 6000 ? 2000 : 500;
  for (let t = 0; t <= end; t += step) parts.push(`<text class="tick" x="${x(t).toFixed(1)}" y="${H - 12}" text-anchor="middle">${t / 1000} s</text>`);
  parts.push(`<text class="tick" x="${PAD.l - 6}" y="${PAD.t + 4}" text-anchor="end">${b.buckets}</text><text class="tick" x="${PAD.l - 6}" y="${PAD.t + ih}" text-anchor="end">0</text>`);
  return `<svg class="buckets" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(b.name)}: ${esc(b.unit ?? 'buckets')} per node">${parts.join('')}</svg>`;
}

function bucketSection(b: BucketTimeline): string {
  const legend = b.nodes.map((n, k) => `<span class="k" style="background:${NODE_COLOURS[k % NODE_COLOURS.length]}"></span>${esc(n)}`).join(' ');
  return `<section class="buckets-over-time" data-buckets="${esc(b.name)}"><h2>${esc(b.name)}</h2>
${bucketsSvg(b)}
<p class="legend">${legend} (${esc(b.unit ?? 'buckets')} ${esc(b.source ?? "owned, as each node's status said")}, every ${b.samples.length > 1 ? Math.round((b.samples[b.samples.length - 1]!.t - b.samples[0]!.t) / (b.samples.length - 1)) : 0} ms) <span class="k fail"></span> what happened</p></section>`;
}

export function renderDemoReport(r: DemoReport): string {
  const passed = r.checks.filter((c) => c.ok).length;
  const failovers = r.failovers
    .map((f) => {
      const sessions = f.sessions.map((s) => `${s.kept}/${s.total} ${esc(s.label)} kept, worst stall ${s.worstStallMs ?? '-'} ms`).join('; ');
      const took = f.takeoverAt === null ? `${esc(f.to)} was not seen taking over` : `${esc(f.to)} master ${Math.round(f.takeoverAt - f.failAt)} ms after the failure`;
      return `<section class="failover" data-failover="${esc(f.name)}"><h2>${esc(f.name)}</h2>
<p><b class="gap">longest gap ${Math.round(f.gapMs)} ms</b>, ${f.failed} of ${f.probes.length} new connections failed; ${took}; ${sessions}.</p>
${timelineSvg(f)}
<p class="legend"><span class="k ok"></span> answered <span class="k failed"></span> failed (new connections per ${BIN_MS} ms, one every few ms) <span class="k fail"></span> failure caused <span class="k takeover"></span> new master</p></section>`;
    })
    .join('\n');
  const checks = r.checks.map((c) => `<tr class="${c.ok ? 'pass' : 'fail'}"><td>${c.ok ? 'ok' : 'FAIL'}</td><td>${esc(c.name)}</td><td>${esc(c.detail)}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #1f2328; max-width: 1100px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; } td { padding: 0.15em 0.6em 0.15em 0; border-bottom: 1px solid #eaeef2; vertical-align: top; }
tr.pass td:first-child { color: #1a7f37; font-weight: 600; } tr.fail td:first-child { color: #cf222e; font-weight: 600; }
svg .ok { fill: #2da44e; } svg .failed { fill: #cf222e; } svg .fail { stroke: #cf222e; stroke-width: 2; stroke-dasharray: 4 3; }
svg .takeover { stroke: #0969da; stroke-width: 2; } svg .axis { stroke: #57606a; } svg .tick, svg .band-label { font-size: 11px; fill: #57606a; }
svg .held-old { fill: #ddf4ff; } svg .held-none { fill: #ffebe9; } svg .held-new { fill: #fff8c5; }
.legend { color: #57606a; font-size: 12px; } .k { display: inline-block; width: 12px; height: 10px; margin: 0 4px 0 12px; vertical-align: middle; }
.k.ok { background: #2da44e; } .k.failed { background: #cf222e; } .k.fail { border-top: 2px dashed #cf222e; height: 0; } .k.takeover { border-top: 2px solid #0969da; height: 0; }
</style></head>
<body>
<h1>${esc(r.title)}</h1>
<p>${esc(r.date)}: <b id="summary">${passed}/${r.checks.length} checks passed</b></p>
${failovers}
${(r.buckets ?? []).map(bucketSection).join('\n')}
<h2>Checks</h2>
<table id="checks">${checks}</table>
</body></html>
`;
}
