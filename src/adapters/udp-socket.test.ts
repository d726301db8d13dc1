/**
 * The sync's UDP socket over both families, on loopback (no root): datagrams cross whole
 * with their source as text, an IPv6 socket sends to IPv6 peers only, and a link-local
 * address without its interface is refused with a clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Poller } from './netlink/poller.js';
import { UdpSocket } from './udp-socket.js';
import { libc } from './libc.js';

async function exchange(address: string, port: number, ifname?: string): Promise<{ from: string; text: string }[]> {
  const poller = new Poller();
  const got: { from: string; text: string }[] = [];
  const rx = UdpSocket.open({ poller, address, port, ...(ifname ? { ifname } : {}), onDatagram: (v, from) => void got.push({ from, text: v.toString() }) });
  const tx = UdpSocket.open({ poller, address, port: port + 1, ...(ifname ? { ifname } : {}), onDatagram: () => undefined });
  try {
    for (const t of ['one', 'two', 'three']) tx.send(Buffer.from(t), address, port);
    for (let i = 0; i < 100 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.throws(() => tx.send(Buffer.from('x'), address.includes(':') ? '127.0.0.1' : '::1', port), /another address family/);
  } finally {
    rx.close();
    tx.close();
    poller.close();
  }
  return got;
}

test('IPv4 and IPv6: datagrams arrive whole with their source', async () => {
  const port = 40_000 + (process.pid % 10_000);
  assert.deepEqual(await exchange('127.0.0.1', port), ['one', 'two', 'three'].map((text) => ({ from: '127.0.0.1', text })));
  assert.deepEqual(await exchange('::1', port + 2), ['one', 'two', 'three'].map((text) => ({ from: '::1', text })));
});

test('a link-local address needs its interface', () => {
  const poller = new Poller();
  try {
    assert.throws(() => UdpSocket.open({ poller, address: 'fe80::1', port: 40_000, ifname: 'no-such-if0', onDatagram: () => undefined }), /link-local address needs its interface \(no-such-if0 not found\)/);
    assert.equal(libc().if_nametoindex('lo'), 1);
  } finally {
    poller.close();
  }
});
