/**
 * VRRPv3 over IPv6 by hand, run inside a lab namespace (adapters/vrrp-socket-v6.ts):
 *
 *   node dist/src/lab/vrrp6-probe.js send --ifname eth0 --vrid 51 --priority 200 --address fe80::51 --address 2001:2::100 [--count 3]
 *   node dist/src/lab/vrrp6-probe.js listen --ifname eth0 [--seconds 3]
 *
 * Both wait (up to 5 s) for the interface's link-local address to leave duplicate address
 * detection: the socket is bound to it, and a tentative address refuses the bind. `send`
 * prints `{linkLocal, sent}`; `listen` one JSON line per advert received: its IPv6 source,
 * destination and hop limit as the socket reported them, and the decoded advert or the
 * decoder's reason. The advert's addresses are the virtual ones as given (RFC 9568 5.2.9: the
 * first one link-local); its IPv6 source is the interface's own link-local. Exit 0, or 2 on error.
 */
import { networkInterfaces } from 'node:os';
import { parseArgs } from 'node:util';
import { Poller } from '../adapters/netlink/poller.js';
import { VrrpSocketV6, type ReceivedV6 } from '../adapters/vrrp-socket-v6.js';
import { libc } from '../adapters/libc.js';
import { decodeAdvert, encodeAdvert } from '../codec/vrrp/packet.js';
import { VRRP_MCAST_GROUP_V6 } from '../codec/vrrp/constants.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ifname: { type: 'string', default: 'eth0' },
    vrid: { type: 'string', default: '51' },
    priority: { type: 'string', default: '100' },
    address: { type: 'string', multiple: true, default: [] },
    count: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
  },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The interface's link-local address, once the socket can be bound to it (DAD done). */
async function openSocket(ifname: string, poller: Poller, onPacket: (p: ReceivedV6) => void): Promise<{ sock: VrrpSocketV6; linkLocal: string }> {
  const ifindex = libc().if_nametoindex(ifname);
  if (!ifindex) throw new Error(`no interface ${ifname}`);
  const deadline = Date.now() + 5000;
  for (;;) {
    const ll = (networkInterfaces()[ifname] ?? []).find((a) => a.family === 'IPv6' && a.address.startsWith('fe80:'));
    if (ll) {
      try {
        return { sock: VrrpSocketV6.open({ ifname, ifindex, linkLocal: ll.address, watcher: poller, onPacket }), linkLocal: ll.address };
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
    } else if (Date.now() > deadline) throw new Error(`${ifname} has no link-local address after 5 s`);
    await sleep(100);
  }
}

async function main(): Promise<void> {
  const poller = new Poller({ keepAlive: true });
  const ifname = values.ifname!;
  if (positionals[0] === 'send') {
    const { sock, linkLocal } = await openSocket(ifname, poller, () => undefined);
    const payload = encodeAdvert({ version: 3, family: 6, vrid: Number(values.vrid), priority: Number(values.priority), maxAdvertIntervalMs: 100, addresses: values.address! }, { src: linkLocal, dst: VRRP_MCAST_GROUP_V6 });
    const count = Number(values.count);
    for (let i = 0; i < count; i++) {
      sock.send(payload);
      await sleep(100);
    }
    sock.close();
    poller.close();
    process.stdout.write(JSON.stringify({ linkLocal, sent: count }) + '\n');
    return;
  }
  if (positionals[0] === 'listen') {
    const { sock, linkLocal } = await openSocket(ifname, poller, (p) => {
      const r = decodeAdvert(p.payload, { src: p.source, dst: p.destination ?? '::', ttl: p.hopLimit ?? -1, family: 6 });
      process.stdout.write(JSON.stringify({ source: p.source, destination: p.destination, hopLimit: p.hopLimit, ...(r.ok ? { advert: r.value } : { reason: r.reason }) }) + '\n');
    });
    process.stdout.write(JSON.stringify({ listening: linkLocal }) + '\n');
    await sleep(Number(values.seconds) * 1000);
    sock.close();
    poller.close();
    return;
  }
  throw new Error('usage: vrrp6-probe.js send|listen [--ifname eth0] ...');
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
});
