/**
 * Port: the face every subsystem of a node shows its daemon (issue 21): `prepare` a new
 * config into a plan, with everything that can fail done and nothing of the running one
 * touched (it rejects with the reason when the part cannot take the config); `commit` puts a
 * plan in place; `discard` drops a plan a reload did not commit (another part refused). A
 * reload prepares every part first and commits all of them or none
 * (services/node-daemon.ts).
 */
import type { LoadedConfig } from '../config/load.js';
import type { NodeView } from '../config/node.js';

/** A config as a node sees it: the whole file, and this node's part of it. */
export interface NodeConfig {
  loaded: LoadedConfig;
  view: NodeView;
}

/** A plan, and whether committing it changes anything. */
export interface Prepared<P> {
  plan: P;
  changed: boolean;
}

export interface Subsystem<P = unknown> {
  /** Named in a refusal: "vrrp: interface eth9 does not exist". */
  readonly name: string;
  prepare(next: NodeConfig): Promise<Prepared<P>>;
  commit(plan: P): Promise<void>;
  discard?(plan: P): void;
}
