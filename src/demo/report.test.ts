import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketsSvg, renderDemoReport, timelineSvg, type BucketTimeline, type FailoverFigures } from './report.js';

const probes = Array.from({ length: 500 }, (_, i): [number, string | null, number] => [i * 5, i * 5 >= 700 && i * 5 < 760 ? null : i % 2 ? 'web1' : 'web2', 1.5]);
const f: FailoverFigures = { name: 'crash of fw1 <all links>', probes, failAt: 700, takeoverAt: 765, from: 'fw1', to: 'fw2', gapMs: 65, failed: 12, sessions: [{ label: 'TCP sessions', kept: 50, total: 50, worstStallMs: 80 }] };

test('a timeline: answered and failed requests per 50 ms, the failure and the takeover marked, who held the VIPs', () => {
  const svg = timelineSvg(f);
  assert.equal((svg.match(/class="failed"/g) ?? []).length, 2, 'the failed requests fall in two 50 ms bins (700-760 ms)');
  assert.equal((svg.match(/class="ok"/g) ?? []).length, 49, 'every bin of the 2.5 s has answered requests but 700-750 ms, all failed');
  assert.match(svg, /<line class="fail" x1="([\d.]+)"/);
  assert.match(svg, /<line class="takeover"[^>]*><title>fw2 master at 765 ms<\/title>/);
  assert.match(svg, /class="held-old"[^>]*\/><text[^>]*>fw1 holds the VIPs<\/text>/);
  assert.match(svg, /class="held-new"[^>]*\/><text[^>]*>fw2 holds the VIPs<\/text>/);
  const x = (cls: string) => Number(new RegExp(`<line class="${cls}" x1="([\\d.]+)"`).exec(svg)![1]);
  assert.ok(x('takeover') > x('fail'), 'the takeover after the failure');
});

test('the report: self-contained (no script, nothing fetched), names escaped, the checks and one section per failover', () => {
  const html = renderDemoReport({ title: 'fwlb demo', date: '2026-12-06', checks: [{ name: 'VRRP election', ok: true, detail: 'fw1 <master>' }, { name: 'x', ok: false, detail: 'y' }], failovers: [f, { ...f, name: 'graceful', takeoverAt: null }] });
  assert.doesNotMatch(html, /<script|src=|href=|@import|url\(/);
  assert.equal((html.match(/<svg class="timeline"/g) ?? []).length, 2);
  assert.match(html, /crash of fw1 &lt;all links&gt;/);
  assert.match(html, /fw1 &lt;master&gt;/);
  assert.match(html, /<b id="summary">1\/2 checks passed<\/b>/);
  assert.match(html, /fw2 master 65 ms after the failure/);
  assert.match(html, /fw2 was not seen taking over/);
});

test('active-active: the buckets each node owned over a crash and a rejoin, stacked per sample, the marks named', () => {
  const third = { fw1: 1387, fw2: 1349, fw3: 1360 };
  const samples = Array.from({ length: 60 }, (_, i) => {
    const t = i * 100;
    const owned = t < 1000 || t >= 4000 ? third : t < 1200 ? { fw1: 1387, fw2: 1349, fw3: null } : { fw1: 2102, fw2: 1994, fw3: null };
    return { t, owned };
  });
  const b: BucketTimeline = { name: 'buckets <per node>', nodes: ['fw1', 'fw2', 'fw3'], buckets: 4096, samples, marks: [{ t: 1000, label: 'fw3 crashes' }, { t: 3000, label: 'fw3 restarted' }] };
  const svg = bucketsSvg(b);
  assert.equal((svg.match(/<title>fw3: /g) ?? []).length, 10 + 20, 'fw3 drawn only where its status answered with buckets');
  assert.equal((svg.match(/<title>fw1: 2102 buckets/g) ?? []).length, 28, 'fw1 holds its share and fw3\'s part from 1.2 s to 4 s');
  assert.match(svg, /<text class="band-label"[^>]*>fw3 crashes<\/text>/);
  const html = renderDemoReport({ title: 'aa', date: 'd', checks: [], failovers: [], buckets: [b] });
  assert.match(html, /<section class="buckets-over-time" data-buckets="buckets &lt;per node&gt;">/);
  assert.match(html, /every 100 ms/);
  assert.doesNotMatch(html, /<script|src=|href=|@import|url\(/);
});

test('BGP: the router\'s next hops in lanes, one per node, whatever the others do; the unit and source named', () => {
  const nodes = ['fw1', 'fw2', 'fw3'];
  const samples = [0, 100, 200].map((t) => ({ t, owned: { fw1: t < 200 ? 1 : 0, fw2: 1, fw3: 1 } }));
  const b: BucketTimeline = { name: 'next hops', nodes, buckets: 3, unit: 'next hop', source: "in the router's route", lanes: true, samples, marks: [] };
  const svg = bucketsSvg(b);
  // fw3's bar keeps its height (its lane) when fw1 leaves; stacked, it would drop a lane.
  const ys = [...svg.matchAll(/y="([\d.]+)"[^>]*><title>fw3: 1 next hop at/g)].map((m) => m[1]);
  assert.equal(ys.length, 3);
  assert.equal(new Set(ys).size, 1, `fw3 in one lane: ${ys.join(', ')}`);
  const stacked = [...bucketsSvg({ ...b, lanes: false }).matchAll(/y="([\d.]+)"[^>]*><title>fw3: 1 next hop at/g)].map((m) => m[1]);
  assert.equal(new Set(stacked).size, 2, 'stacked, it drops when fw1 goes: the check above means something');
  assert.match(renderDemoReport({ title: 't', date: 'd', checks: [], failovers: [], buckets: [b] }), /next hop in the router&#39;s route, every 100 ms/);
});
