/**
 * A node's runtime changes as a short log that says the same as the long one (issue 24):
 * backend add / weight / drain / disable / enable / remove and maintenance, each kept only
 * as its last word per backend and kind, in the order they were made, so that replaying the
 * log on a fresh daemon (a restart, a node that was away) brings it where the changes left it.
 * Pure: no I/O; the schema checks what comes from disk or a peer.
 */
import { z } from 'zod';

const name = z.string().min(1).max(256);
export const RuntimeCommandSchema = z.discriminatedUnion('op', [
  z.object({ op: z.enum(['drain', 'disable', 'enable', 'remove']), service: name, backend: name }).strict(),
  z.object({ op: z.literal('weight'), service: name, backend: name, weight: z.number().int().min(0).max(1000) }).strict(),
  z.object({ op: z.literal('add'), service: name, backend: name, address: z.string().min(2).max(64), port: z.number().int().min(1).max(65535).optional(), weight: z.number().int().min(0).max(1000).optional() }).strict(),
  z.object({ op: z.literal('maintenance'), on: z.boolean() }).strict(),
]);
export type RuntimeCommand = z.infer<typeof RuntimeCommandSchema>;

/** The runtime changes of the cluster (those made with --cluster) and their version. */
export const ClusterLogSchema = z.object({ version: z.number().int().min(0), commands: z.array(RuntimeCommandSchema).max(100_000) }).strict();
export type ClusterLog = z.infer<typeof ClusterLogSchema>;

/** What a node keeps: every runtime change it runs (its own and the cluster's), and the cluster's apart. */
export const RuntimeDocSchema = z.object({ v: z.literal(1), cluster: z.string(), local: z.array(RuntimeCommandSchema).max(100_000), shared: ClusterLogSchema }).strict();
export type RuntimeDoc = z.infer<typeof RuntimeDocSchema>;

/** What a later command makes of an earlier one: which kind of word it is on which backend. */
function slot(c: RuntimeCommand): string {
  if (c.op === 'maintenance') return 'maintenance';
  const kind = c.op === 'add' ? 'add' : c.op === 'weight' ? 'weight' : 'admin';
  return `${c.service}\u0000${c.backend}\u0000${kind}`;
}

const sameBackend = (a: RuntimeCommand, b: RuntimeCommand) => a.op !== 'maintenance' && b.op !== 'maintenance' && a.service === b.service && a.backend === b.backend;

/**
 * The log with `c` made after it: the earlier word of the same kind on the same backend goes;
 * a remove of a backend added at runtime takes every word about it (it is gone for good); an
 * add after a remove starts that backend afresh; maintenance off is the same as none.
 */
export function appendCommand(log: readonly RuntimeCommand[], c: RuntimeCommand): RuntimeCommand[] {
  const key = slot(c);
  let out = log.filter((x) => slot(x) !== key);
  if (c.op === 'remove' && log.some((x) => x.op === 'add' && sameBackend(x, c))) return out.filter((x) => !sameBackend(x, c));
  if (c.op === 'add') out = out.filter((x) => !sameBackend(x, c));
  if (c.op === 'maintenance' && !c.on) return out;
  return [...out, c];
}

/** Keeps the words about backends `keep` says still hold (a reload dropped the others). */
export function pruneCommands(log: readonly RuntimeCommand[], keep: (service: string, backend: string) => boolean): RuntimeCommand[] {
  return log.filter((c) => c.op === 'maintenance' || keep(c.service, c.backend));
}
