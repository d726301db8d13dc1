/**
 * The `bgp` lab's BIRD configs: one neighbour per firewall on the router, ECMP merged into its
 * kernel, GRACEFUL_SHUTDOWN honoured, BFD on every session; each firewall exporting what its fwlb writes. BIRD 2
 * itself parses them (`bird -p`, no root needed), with a file like the one fwlb writes included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describeLab, findHost } from './topology.js';
import { birdPaths, nodeBirdConf, routerBirdConf } from './bird.js';
import { compileBirdAnnouncement } from '../compiler/bird.js';

test('the router: a neighbour per firewall at its edge address, merge paths, LOCAL_PREF 0 for GRACEFUL_SHUTDOWN', () => {
  const spec = describeLab({ topology: 'bgp', prefix: 'b' });
  const text = routerBirdConf(spec);
  for (const [n, a] of [[1, '198.18.3.2'], [2, '198.18.3.3'], [3, '198.18.3.4'], [4, '198.18.3.5']] as const) assert.ok(text.includes(`protocol bgp fw${n} from fws { neighbor ${a} as 65010; }`), text);
  assert.match(text, /protocol kernel kernel4 \{ ipv4 \{ import none; export all; \}; merge paths on; \}/);
  assert.match(text, /if \(65535,0\) ~ bgp_community then bgp_local_pref = 0/);
  const fw2 = nodeBirdConf(spec, findHost(spec, 'fw2'));
  assert.ok(fw2.includes(`include "${birdPaths(spec.stateDir, 'fw2').includeDir}/*.conf";`));
  assert.match(fw2, /local 198\.18\.3\.3 as 65010; neighbor 198\.18\.3\.1 as 65000;/);
  assert.match(fw2, /export where proto ~ "fwlb\*"/);
  // BFD beside each BGP session, on both ends: a dead node's routes go in half a second.
  for (const t of [text, fw2]) {
    assert.match(t, /protocol bfd \{ interface "\*" \{ min rx interval 100 ms; min tx interval 100 ms; idle tx interval 300 ms; multiplier 5; \}; \}/);
    assert.match(t, /bfd on;/);
  }
});

test('BIRD 2 parses both, the node with the file fwlb writes', () => {
  const dir = mkdtempSync(`${tmpdir()}/fwlb-bird-`);
  try {
    const spec = { ...describeLab({ topology: 'bgp', prefix: 'b' }), stateDir: dir };
    mkdirSync(birdPaths(dir, 'fw1').includeDir);
    writeFileSync(birdPaths(dir, 'fw1').include, compileBirdAnnouncement({ node: 'fw1', device: 'fwlb-bgp', addresses: ['198.18.30.100', '2001:2:0:30::100'], communities: [[65010, 100]], gracefulShutdown: true }));
    for (const [name, text] of [['rt', routerBirdConf(spec)], ['fw1', nodeBirdConf(spec, findHost(spec, 'fw1'))]] as const) {
      writeFileSync(`${dir}/${name}.conf`, text);
      execFileSync('bird', ['-p', '-c', `${dir}/${name}.conf`], { stdio: 'pipe' });
    }
    // And one it must refuse, so the check above means something.
    writeFileSync(`${dir}/bad.conf`, 'protocol static x { ipv4; route 198.18.30.1/32 via; }\n');
    assert.throws(() => execFileSync('bird', ['-p', '-c', `${dir}/bad.conf`], { stdio: 'pipe' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
