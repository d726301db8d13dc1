/**
 * Listens for gratuitous ARPs on a lab host's interface and reports them, for the tests of
 * the GARP refresh:
 *   node arp-listen.js --dev IFACE --seconds S [--ip ADDR]
 * Prints {"garps": [{"at": ms, "mac": "...", "ip": "..."}]}: every ARP whose sender and target
 * address are the same (a gratuitous one), of ADDR only if given. Times are the machine's
 * clock (timeOrigin + now).
 */
import { parseArgs } from 'node:util';
import { ETH_P_ARP } from '../adapters/libc.js';
import { decodeArp } from '../codec/arp/arp.js';
import { packetSocket, readFor } from './listen-socket.js';

const { values } = parseArgs({ options: { dev: { type: 'string' }, seconds: { type: 'string', default: '5' }, ip: { type: 'string' } } });
if (!values.dev) {
  process.stderr.write('arp-listen: --dev is required\n');
  process.exit(2);
}
const garps: { at: number; mac: string; ip: string }[] = [];
readFor(
  packetSocket('arp-listen', values.dev, ETH_P_ARP),
  Number(values.seconds),
  (frame) => {
    if (frame.length < 14 || frame.readUInt16BE(12) !== ETH_P_ARP) return;
    const r = decodeArp(frame.subarray(14));
    if (!r.ok || r.value.senderIp !== r.value.targetIp) return;
    if (values.ip && r.value.senderIp !== values.ip) return;
    garps.push({ at: Math.round(performance.timeOrigin + performance.now()), mac: r.value.senderMac, ip: r.value.senderIp });
  },
  () => process.stdout.write(JSON.stringify({ garps }) + '\n'),
);
