/**
 * One node's view of the cluster config: its interface names, its addresses,
 * and its peers. Every node runs the same file and picks its part by name.
 */
import { FwlbError } from '../lib/errors.js';
import type { Config } from './schema.js';
import { bareAddress } from '../lib/ip.js';

export interface PeerView {
  name: string;
  priority: number;
  /** role -> address (without prefix length). */
  addresses: Record<string, string>;
}

export interface NodeView {
  name: string;
  priority: number;
  /** role -> Linux interface name on this node. */
  interfaces: Record<string, string>;
  /** role -> "address/len" or "address" as configured. */
  addresses: Record<string, string>;
  peers: PeerView[];
}

const bare = bareAddress;

export function nodeView(c: Config, name: string): NodeView {
  const me = c.nodes[name];
  if (!me) {
    throw new FwlbError('ERR_NODE', `node "${name}" is not in the config (nodes: ${Object.keys(c.nodes).join(', ')}); use --node`);
  }
  const peers = Object.entries(c.nodes)
    .filter(([n]) => n !== name)
    .map(([n, p]) => ({
      name: n,
      priority: p.priority,
      addresses: Object.fromEntries(Object.entries(p.addresses).map(([r, a]) => [r, bare(a)])),
    }));
  return { name, priority: me.priority, interfaces: { ...c.interfaces, ...me.interfaces }, addresses: { ...me.addresses }, peers };
}
