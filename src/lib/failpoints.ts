/**
 * Failpoints: named steps that tests make fail on purpose, to prove what a failure there
 * leaves behind (a reload whose VRRP part fails leaves the node as it was). Off unless the
 * daemon is started with FWLB_FAILPOINTS (main reads it; nothing else reads the
 * environment): a comma-separated list of `name` (fails every time the step is reached) or
 * `name@N` (reached N-1 times normally, then fails every time from the Nth: `vrrp.prepare@2`
 * lets the start through and fails the first reload) or `name#N` (fails the Nth time only:
 * `vrrp.commit#2` fails the first reload's commit and lets the putting back through).
 * Names in use: `vrrp.prepare`, `vrrp.commit` (after the running groups handed over, before
 * the new ones start: a commit that fails half-way), `liveness.thread` (read once at the
 * start: the timing thread throws 200 BEAT rounds after the liveness started, as a bug would).
 */
export type Failpoint = (name: string) => boolean;

/** The failpoints of a FWLB_FAILPOINTS value; a malformed entry is an error naming it. */
export function parseFailpoints(spec: string | undefined): Failpoint {
  const when = new Map<string, { n: number; only: boolean }>();
  for (const raw of (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z][a-z0-9_.-]*)(?:([@#])(\d+))?$/.exec(raw);
    if (!m || (m[3] !== undefined && Number(m[3]) < 1)) throw new Error(`FWLB_FAILPOINTS: "${raw}" is not NAME, NAME@N or NAME#N (N from 1)`);
    when.set(m[1]!, { n: m[3] === undefined ? 1 : Number(m[3]), only: m[2] === '#' });
  }
  const reached = new Map<string, number>();
  return (name) => {
    const w = when.get(name);
    if (w === undefined) return false;
    const k = (reached.get(name) ?? 0) + 1;
    reached.set(name, k);
    return w.only ? k === w.n : k >= w.n;
  };
}
