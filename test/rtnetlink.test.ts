/**
 * rtnetlink on the real kernel (needs root): the RtNetlink adapter and the Poller, run in a
 * namespace of their own (tnl-rtnl-<pid>, veth pairs va/vb and vc/vd, 198.18.0.0/15 only).
 *
 * The test process stays in the root namespace; each scenario runs in a child started with
 * `ip netns exec NS node <this file>` (TNL_RTNL_CHILD=<scenario>), which prints one JSON
 * report on stdout and must then exit by itself: if a socket, poll handle or timer were left
 * behind, it would hang and the parent would kill it and fail.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Poller, type PollerBackend } from '../src/adapters/netlink/poller.js';
import { NetlinkError } from '../src/adapters/netlink/errors.js';
import { RtNetlink, type RtEvent } from '../src/adapters/netlink/rtnetlink.js';

const SELF = fileURLToPath(import.meta.url);
const NS = `tnl-rtnl-${process.pid}`;
const VA_MAC = '02:00:00:00:00:0a';
const CHILD_TIMEOUT_MS = 30_000;

// =======================================================================================
// Child side: runs inside the namespace.

interface IpAddr {
  ifname: string;
  addr_info: Array<{ family: string; local: string; prefixlen: number; tentative?: boolean; label?: string }>;
}
interface IpLink {
  ifindex: number;
  ifname: string;
  address?: string;
  flags: string[];
}

function ipJson<T>(args: string[]): T {
  return JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8' })) as T;
}
function ipAddrs(dev: string): string[] {
  const [l] = ipJson<IpAddr[]>(['addr', 'show', 'dev', dev]);
  return (l?.addr_info ?? []).filter((a) => a.family === 'inet' || !a.local.startsWith('fe80')).map((a) => `${a.local}/${a.prefixlen}${a.tentative ? ' tentative' : ''}`);
}

/** Resolves with the first event that satisfies `pred`, or undefined after `ms`. */
function nextEvent(rt: RtNetlink, pred: (e: RtEvent) => boolean, ms = 2000): Promise<{ e: RtEvent; at: number } | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(undefined);
    }, ms);
    const off = rt.onEvent((e) => {
      if (!pred(e)) return;
      const at = performance.now();
      clearTimeout(timer);
      off();
      resolve({ e, at });
    });
  });
}

function stats(xs: number[]): { n: number; min: number; median: number; p90: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => Number((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN).toFixed(3));
  return { n: s.length, min: q(0), median: q(0.5), p90: q(0.9), max: q(1) };
}

async function childMain(backend: PollerBackend): Promise<Record<string, unknown>> {
  const report: Record<string, unknown> = { backend };
  const poller = new Poller({ backend });
  const rt = RtNetlink.open({ poller });
  const events: RtEvent[] = [];
  rt.onEvent((e) => events.push(e));

  // Links: compared with `ip -j link`.
  const links = await rt.links();
  const ipLinks = ipJson<IpLink[]>(['link', 'show']);
  report.links = links.map((l) => ({ index: l.index, name: l.name, mac: l.mac, carrier: l.carrier, lowerUp: l.lowerUp, up: l.up, operstate: l.operstate }));
  report.ipLinks = ipLinks.map((l) => ({ index: l.ifindex, name: l.ifname, mac: l.address, lowerUp: l.flags.includes('LOWER_UP'), up: l.flags.includes('UP') }));
  const va = await rt.linkByName('va');
  const vb = await rt.linkByName('vb');
  assert.ok(va && vb, 'va and vb exist');
  report.va = va;
  report.vaByIndex = (await rt.link(va.index))?.name;
  report.noSuchLink = (await rt.linkByName('nosuch0')) === undefined;

  // Addresses: add, add again, list, delete, delete again; checked with `ip -j addr`.
  const added = nextEvent(rt, (e) => e.kind === 'addr' && e.local === '198.18.9.9' && !e.deleted);
  report.add4 = await rt.addAddress(va.index, '198.18.9.9/24');
  report.add4Event = (await added)?.e;
  report.add4Again = await rt.addAddress(va.index, '198.18.9.9/24');
  const added6 = nextEvent(rt, (e) => e.kind === 'addr' && e.local === '2001:db8:9::9' && !e.deleted);
  report.add6 = await rt.addAddress(va.index, '2001:db8:9::9/64');
  report.add6Event = (await added6)?.e;
  report.ipAfterAdd = ipAddrs('va');
  report.listed = (await rt.addresses()).filter((a) => a.index === va.index).map((a) => `${a.local}/${a.prefixLen}`);
  report.listed4 = (await rt.addresses(4)).map((a) => a.local);
  report.listed6 = (await rt.addresses(6)).map((a) => a.local);
  const foreign = nextEvent(rt, (e) => e.kind === 'addr' && e.local === '198.18.9.10' && !e.deleted);
  execFileSync('ip', ['addr', 'add', '198.18.9.10/24', 'dev', 'va']);
  report.foreignEvent = (await foreign)?.e;
  execFileSync('ip', ['addr', 'del', '198.18.9.10/24', 'dev', 'va']);
  report.del4 = await rt.delAddress(va.index, '198.18.9.9/24');
  report.del4Again = await rt.delAddress(va.index, '198.18.9.9/24');
  report.del6 = await rt.delAddress(va.index, '2001:db8:9::9/64');
  report.ipAfterDel = ipAddrs('va');
  try {
    await rt.addAddress(99999, '198.18.9.11/24');
    report.noDevice = 'no error';
  } catch (err) {
    report.noDevice = err instanceof NetlinkError ? { code: err.code, errno: err.errno, op: err.op, message: err.message } : String(err);
  }
  try {
    await rt.addAddress(va.index, '198.18.9.300/24');
    report.badInput = 'no error';
  } catch (err) {
    report.badInput = (err as { code?: string }).code;
  }

  // Carrier loss, 1: `ip link set vb down` run as a process; its peer va loses carrier.
  {
    const ev = nextEvent(rt, (e) => e.kind === 'link' && e.name === 'va' && !e.lowerUp, 3000);
    const t0 = performance.now();
    const child = spawn('ip', ['link', 'set', 'vb', 'down'], { stdio: 'ignore' });
    const exited = new Promise<number>((resolve) => child.on('exit', () => resolve(performance.now())));
    const got = await ev;
    const tExit = await exited;
    report.ipLinkDown = got
      ? {
          eventAfterSpawnMs: Number((got.at - t0).toFixed(3)),
          eventBeforeIpExitSeenMs: Number((tExit - got.at).toFixed(3)),
          carrier: (got.e as { carrier?: boolean }).carrier,
          operstate: (got.e as { operstate?: string }).operstate,
        }
      : 'no event';
    const up = nextEvent(rt, (e) => e.kind === 'link' && e.name === 'va' && e.lowerUp, 3000);
    execFileSync('ip', ['link', 'set', 'vb', 'up']);
    report.carrierBack = (await up) !== undefined;
  }

  // Carrier loss, 2: setting vb down through our own socket, timed from the request.
  {
    const lat: number[] = [];
    const ack: number[] = [];
    for (let i = 0; i < 20; i++) {
      const down = nextEvent(rt, (e) => e.kind === 'link' && e.name === 'va' && !e.lowerUp);
      const t0 = performance.now();
      await rt.setLinkUp(vb.index, false);
      ack.push(performance.now() - t0);
      const got = await down;
      if (got) lat.push(got.at - t0);
      const back = nextEvent(rt, (e) => e.kind === 'link' && e.name === 'va' && e.lowerUp);
      await rt.setLinkUp(vb.index, true);
      await back;
    }
    report.setLinkDown = { eventMs: stats(lat), ackMs: stats(ack) };
  }

  report.counters = rt.counters();
  report.dropped = rt.dropped;
  report.eventKinds = [...new Set(events.map((e) => e.kind))].sort();

  rt.close();
  poller.close();
  // What would still keep this process alive (the parent also checks that it exits).
  await sleep(10);
  report.activeAfterClose = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap'); // minus our own stdio
  return report;
}

/** Overflows a tiny event buffer while the loop is blocked: expects a 'lost' event, then life as usual. */
async function childOverrun(backend: PollerBackend): Promise<Record<string, unknown>> {
  const report: Record<string, unknown> = { backend };
  const poller = new Poller({ backend });
  const rt = RtNetlink.open({ poller, eventBuffer: 4096, groups: ['link', 'ipv4-ifaddr'] });
  const kinds: string[] = [];
  rt.onEvent((e) => kinds.push(e.kind));
  const vc = await rt.linkByName('vc');
  assert.ok(vc);
  const batch = join(tmpdir(), `tnl-rtnl-batch-${process.pid}`);
  writeFileSync(batch, Array.from({ length: 300 }, (_, i) => `addr add 198.19.${i >> 7}.${(i & 0x7f) + 1}/32 dev vc`).join('\n') + '\n');
  // Synchronous: the event loop is blocked while the kernel sends 300 events to a 4 KiB buffer.
  try {
    execFileSync('ip', ['-batch', batch]);
  } finally {
    unlinkSync(batch);
  }
  await sleep(100);
  report.lostSeen = kinds.includes('lost');
  report.lostCount = rt.counters().events?.lost;
  report.addrEventsKept = kinds.filter((k) => k === 'addr').length;
  // The socket still works afterwards: a fresh change still arrives.
  const ev = nextEvent(rt, (e) => e.kind === 'link' && e.name === 'vd' && !e.up);
  execFileSync('ip', ['link', 'set', 'vd', 'down']);
  report.eventAfterOverrun = (await ev) !== undefined;
  execFileSync('ip', ['link', 'set', 'vd', 'up']);
  report.addressesAfter = (await rt.addresses(4)).filter((a) => a.index === vc.index).length;
  execFileSync('ip', ['addr', 'flush', 'dev', 'vc']);
  rt.close();
  poller.close();
  return report;
}

// =======================================================================================
// Parent side.

interface ChildResult {
  report: Record<string, unknown>;
  code: number | null;
  signal: NodeJS.Signals | null;
  killed: boolean;
  stderr: string;
  wallMs: number;
}

function runChild(scenario: string, backend: PollerBackend): Promise<ChildResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('ip', ['netns', 'exec', NS, process.execPath, SELF], {
      env: { ...process.env, TNL_RTNL_CHILD: `${scenario}:${backend}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, CHILD_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      let report: Record<string, unknown> = {};
      try {
        report = JSON.parse(line) as Record<string, unknown>;
      } catch {
        report = { unparsed: out };
      }
      resolve({ report, code, signal, killed, stderr: err, wallMs: performance.now() - t0 });
    });
  });
}

function sh(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

const child = process.env.TNL_RTNL_CHILD;
if (child) {
  const [scenario, backend] = child.split(':') as [string, PollerBackend];
  try {
    const report = scenario === 'overrun' ? await childOverrun(backend) : await childMain(backend);
    process.stdout.write(JSON.stringify(report) + '\n');
    // No process.exit() here: on success the process must end on its own.
  } catch (err) {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1); // a failed scenario may leave sockets open: do not wait for the parent's timeout
  }
} else {
  const isRoot = process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0;
  const skip = isRoot ? false : 'needs root and iproute2';

  before(() => {
    if (skip) return;
    spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
    sh(['netns', 'add', NS]);
    sh(['-n', NS, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
    sh(['-n', NS, 'link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'vd']);
    sh(['-n', NS, 'link', 'set', 'va', 'address', VA_MAC]);
    for (const dev of ['lo', 'va', 'vb', 'vc', 'vd']) sh(['-n', NS, 'link', 'set', dev, 'up']);
    sh(['-n', NS, 'addr', 'add', '198.18.7.1/24', 'dev', 'va']);
  });

  after(() => {
    if (skip) return;
    spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  });

  for (const backend of ['uv', 'thread'] as const) {
    test(`RtNetlink in a namespace, poller backend '${backend}'`, { skip }, async () => {
      const r = await runChild('main', backend);
      assert.equal(r.killed, false, `the child did not exit by itself (a pending handle?)\n${r.stderr}`);
      assert.equal(r.code, 0, r.stderr);
      const rep = r.report as Record<string, any>;

      // Link dump agrees with `ip -j link`: name, index, MAC, carrier (LOWER_UP), up.
      const byName = (xs: any[]) => Object.fromEntries(xs.map((l) => [l.name, l]));
      const ours = byName(rep.links);
      const theirs = byName(rep.ipLinks);
      assert.deepEqual(Object.keys(ours).sort(), ['lo', 'va', 'vb', 'vc', 'vd']);
      for (const name of Object.keys(theirs)) {
        assert.equal(ours[name].index, theirs[name].index, name);
        assert.equal(ours[name].mac, theirs[name].mac, name);
        assert.equal(ours[name].lowerUp, theirs[name].lowerUp, name);
        assert.equal(ours[name].up, theirs[name].up, name);
      }
      assert.equal(ours.va.mac, VA_MAC);
      assert.equal(ours.va.carrier, true);
      assert.equal(ours.va.operstate, 'up');
      assert.equal(rep.va.name, 'va');
      assert.equal(rep.vaByIndex, 'va');
      assert.equal(rep.noSuchLink, true);

      // Addresses.
      assert.equal(rep.add4, 'added');
      assert.equal(rep.add4Again, 'exists');
      assert.equal(rep.add6, 'added');
      assert.ok(rep.ipAfterAdd.includes('198.18.9.9/24'), rep.ipAfterAdd);
      assert.ok(rep.ipAfterAdd.includes('2001:db8:9::9/64'), rep.ipAfterAdd); // not tentative: nodad
      assert.ok(rep.listed.includes('198.18.9.9/24') && rep.listed.includes('2001:db8:9::9/64'), rep.listed);
      assert.ok(rep.listed4.includes('198.18.9.9') && !rep.listed4.includes('2001:db8:9::9'));
      assert.ok(rep.listed6.includes('2001:db8:9::9') && !rep.listed6.includes('198.18.9.9'));
      assert.equal(rep.add4Event?.self, true, 'our own add is marked self');
      assert.equal(rep.add4Event?.prefixLen, 24);
      assert.equal(rep.add6Event?.family, 6); // arrives; the kernel does not attribute IPv6 events (self: false)
      assert.equal(rep.foreignEvent?.self, false, "`ip addr add` is not ours");
      assert.equal(rep.del4, 'deleted');
      assert.equal(rep.del4Again, 'absent');
      assert.equal(rep.del6, 'deleted');
      assert.ok(!rep.ipAfterDel.includes('198.18.9.9/24') && !rep.ipAfterDel.includes('2001:db8:9::9/64'), rep.ipAfterDel);
      assert.equal(rep.noDevice.code, 'ERR_NETLINK');
      assert.equal(rep.noDevice.errno, 'ENODEV');
      assert.equal(rep.noDevice.op, 'RTM_NEWADDR');
      assert.equal(rep.badInput, 'ERR_INVALID_ARGUMENT');

      // Carrier loss arrives, fast.
      assert.notEqual(rep.ipLinkDown, 'no event');
      assert.equal(rep.ipLinkDown.carrier, false);
      assert.equal(rep.ipLinkDown.operstate, 'lowerlayerdown');
      assert.equal(rep.carrierBack, true);
      assert.equal(rep.setLinkDown.eventMs.n, 20);
      assert.ok(rep.setLinkDown.eventMs.median < 20, `median ${rep.setLinkDown.eventMs.median} ms`);
      assert.deepEqual(rep.eventKinds, ['addr', 'link']);
      assert.deepEqual(rep.dropped, {});

      // Nothing left behind after close.
      assert.deepEqual(rep.activeAfterClose, []);
      console.log(
        `[${backend}] carrier loss -> event: via \`ip link set vb down\` ${rep.ipLinkDown.eventAfterSpawnMs} ms after spawn ` +
          `(${rep.ipLinkDown.eventBeforeIpExitSeenMs} ms before ip's exit was seen); via RTM_NEWLINK from our socket ` +
          `median ${rep.setLinkDown.eventMs.median} ms, p90 ${rep.setLinkDown.eventMs.p90} ms, max ${rep.setLinkDown.eventMs.max} ms ` +
          `(n=${rep.setLinkDown.eventMs.n}; ack median ${rep.setLinkDown.ackMs.median} ms); child ran ${r.wallMs.toFixed(0)} ms and exited by itself`,
      );
    });

    test(`event overrun (ENOBUFS) is reported as 'lost' and the socket keeps working, backend '${backend}'`, { skip }, async () => {
      const r = await runChild('overrun', backend);
      assert.equal(r.killed, false, `the child did not exit by itself\n${r.stderr}`);
      assert.equal(r.code, 0, r.stderr);
      const rep = r.report as Record<string, any>;
      assert.equal(rep.lostSeen, true, JSON.stringify(rep));
      assert.ok(rep.lostCount >= 1);
      assert.ok(rep.addrEventsKept < 300, `${rep.addrEventsKept} address events kept of 300`);
      assert.equal(rep.eventAfterOverrun, true);
      assert.equal(rep.addressesAfter, 300);
      console.log(`[${backend}] overrun: ${rep.addrEventsKept}/300 events kept, lost reported ${rep.lostCount}x, events flow again afterwards`);
    });
  }
}
