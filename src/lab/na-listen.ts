/**
 * A capture of neighbour advertisements on a lab host's interface (issue 22), for the tests
 * of IPv6 takeover:
 *   node na-listen.js --dev IFACE --seconds S [--target ADDR]
 * Prints {"adverts": [{at, mac, source, destination, target, router, solicited, override,
 * hopLimit, targetLinkLayer}]}: every neighbour advertisement that passes RFC 4861's receive
 * checks (codec/ndp), of target ADDR only if given; times are the machine's clock.
 */
import { parseArgs } from 'node:util';
import { ETHERTYPE_IPV6, ICMPV6_NEIGHBOR_ADVERTISEMENT, decodeNdp } from '../codec/ndp/ndp.js';
import { packetSocket, readFor } from './listen-socket.js';

const { values } = parseArgs({ options: { dev: { type: 'string' }, seconds: { type: 'string', default: '5' }, target: { type: 'string' } } });
if (!values.dev) {
  process.stderr.write('na-listen: --dev is required\n');
  process.exit(2);
}
const adverts: Record<string, unknown>[] = [];
const fd = packetSocket('na-listen', values.dev, ETHERTYPE_IPV6);
process.stdout.write(JSON.stringify({ listening: values.dev }) + '\n');
readFor(
  fd,
  Number(values.seconds),
  (frame) => {
    const r = decodeNdp(frame);
    if (!r.ok || r.value.type !== ICMPV6_NEIGHBOR_ADVERTISEMENT) return;
    const a = r.value;
    if (values.target && a.target !== values.target) return;
    adverts.push({ at: Math.round(performance.timeOrigin + performance.now()), mac: a.ethSource, source: a.source, destination: a.destination, target: a.target, router: a.router, solicited: a.solicited, override: a.override, hopLimit: a.hopLimit, targetLinkLayer: a.targetLinkLayer });
  },
  () => process.stdout.write(JSON.stringify({ adverts }) + '\n'),
);
