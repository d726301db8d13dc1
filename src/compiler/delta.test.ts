import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapsRefresh, rulesetDelta } from './delta.js';
import type { Block } from './ruleset.js';

const base: Block[] = [
  { head: 'counter be_1', body: [] },
  { head: 'map svc_web', body: ['typeof numgen inc mod 2 : ip daddr . tcp dport', 'elements = { 0 : 198.18.1.11 . 80 }'] },
  { head: 'chain svc_web', body: ['meta l4proto tcp dnat ip to numgen inc mod 64 map @svc_web'] },
  { head: 'chain forward', body: ['type filter hook forward priority filter; policy drop;', 'ct state established,related accept', 'counter comment "policy drop"'] },
  { head: 'chain nat_prerouting', body: ['type nat hook prerouting priority dstnat; policy accept;', 'ip daddr . meta l4proto . th dport vmap { 198.18.0.100 . tcp . 80 : goto svc_web }'] },
  { head: 'chain digest_aaaa', body: [] },
];
const withDigest = (bs: Block[], d: string) => bs.map((b) => (b.head.startsWith('chain digest_') ? { head: `chain digest_${d}`, body: [] } : b));

test('one rule changed: only its chain is flushed and filled again, and the digest chain replaced', () => {
  const next = withDigest(base.map((b) => (b.head === 'chain forward' ? { ...b, body: [b.body[0]!, b.body[1]!, 'tcp dport 22 accept', b.body[2]!] } : b)), 'bbbb');
  const d = rulesetDelta(base, next)!;
  assert.match(d, /^flush chain inet fwlb forward$/m);
  assert.match(d, /^delete chain inet fwlb digest_aaaa$/m);
  assert.match(d, /chain digest_bbbb \{/);
  assert.doesNotMatch(d, /svc_web/, 'the service is untouched');
});

test('a service gone: its chain flushed before anything is deleted, chains before maps, counters last', () => {
  const next = withDigest(
    base.filter((b) => !/svc_web|counter/.test(b.head)).map((b) => (b.head === 'chain nat_prerouting' ? { ...b, body: [b.body[0]!] } : b)),
    'cccc',
  );
  const lines = rulesetDelta(base, next)!.split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  assert.ok(at(/^flush chain inet fwlb nat_prerouting$/) < at(/^delete chain inet fwlb svc_web$/));
  assert.ok(at(/^flush chain inet fwlb svc_web$/) < at(/^delete chain inet fwlb svc_web$/));
  assert.ok(at(/^delete chain inet fwlb svc_web$/) < at(/^delete map inet fwlb svc_web$/));
  assert.ok(at(/^delete map inet fwlb svc_web$/) < at(/^delete counter inet fwlb be_1$/));
});

test('what a delta cannot express is a full replace; nothing changed is an empty delta', () => {
  assert.equal(rulesetDelta(base, base), '');
  const hook = base.map((b) => (b.head === 'chain forward' ? { ...b, body: ['type filter hook forward priority filter; policy accept;', ...b.body.slice(1)] } : b));
  assert.equal(rulesetDelta(base, hook), undefined, 'a base chain policy change');
  const type = base.map((b) => (b.head === 'map svc_web' ? { ...b, body: ['typeof numgen inc mod 2 : ip6 daddr . tcp dport'] } : b));
  assert.equal(rulesetDelta(base, type), undefined, 'a map type change');
});

test('maps refresh: every service map flushed and filled again, nothing else', () => {
  const r = mapsRefresh(base);
  assert.match(r, /^flush map inet fwlb svc_web$/m);
  assert.match(r, /elements = \{ 0 : 198\.18\.1\.11 \. 80 \}/);
  assert.doesNotMatch(r, /chain/);
  assert.equal(mapsRefresh(base.filter((b) => !b.head.startsWith('map'))), '');
});
