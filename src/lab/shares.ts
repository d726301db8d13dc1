/**
 * Each sharing node's part of the shared traffic, from its own counter of the packets it
 * forwarded (status `sharing.packets`). Two readings per node; its rate is the packets between
 * them over the time between them as the node stamped them (`at`, when it read its kernel
 * counters), not over the time between the two status calls: a daemon busy with a burst of
 * new flows answers a status call hundreds of ms late, and a window measured from outside
 * would shrink or stretch its share by as much.
 */
export interface CarriedReading { carried: number; at: number }

export interface Shares {
  /** Packets each node carried between its two readings. */
  packets: Record<string, number>;
  /** Each node's part of the summed rates (0..1). */
  share: Record<string, number>;
  /** The furthest any node is from an equal share, as a fraction of an equal share. */
  worst: number;
  /** All packets counted. */
  total: number;
}

export function sharesOf(first: Record<string, CarriedReading>, second: Record<string, CarriedReading>): Shares {
  const nodes = Object.keys(first);
  const packets: Record<string, number> = {};
  const rate: Record<string, number> = {};
  for (const fw of nodes) {
    const a = first[fw]!;
    const b = second[fw];
    if (!b) throw new Error(`no second reading from ${fw}`);
    if (b.at <= a.at) throw new Error(`${fw}: its counters were read at ${a.at} and then at ${b.at}, not later`);
    packets[fw] = b.carried - a.carried;
    rate[fw] = packets[fw] / (b.at - a.at);
  }
  const sum = Object.values(rate).reduce((x, y) => x + y, 0);
  const share = Object.fromEntries(nodes.map((fw) => [fw, sum > 0 ? rate[fw]! / sum : 0]));
  const worst = Math.max(...nodes.map((fw) => Math.abs(share[fw]! * nodes.length - 1)));
  return { packets, share, worst, total: Object.values(packets).reduce((x, y) => x + y, 0) };
}

/**
 * How far from an equal share a node may be by the hash alone (as `worst` measures it), for
 * `flows` flows spread over `nodes`: which flows land in a node's buckets is chance (the
 * clients' source ports), so a node's part of F flows has a relative spread of
 * sqrt((nodes - 1) / F). A TCP session sends about twice the packets of a UDP flow, so F
 * counts for F / 1.5 here; the bound is 4.5 of those spreads (about one run in 100,000 beyond
 * it by chance), and never under 10%. With 2,540 flows: 15.5% for three nodes, 10.9% for two
 * (a CI run of the demo saw 11.1% for three: fw1 carried 37.0%, its flows 3.2 spreads off).
 */
export function shareBound(flows: number, nodes: number): number {
  const effective = flows / 1.5;
  return Math.max(0.1, 4.5 * Math.sqrt((nodes - 1) / effective));
}

/** Two readings `ms` apart from every node in `live`; `read` returns a node's counter and its stamp. */
export async function measureShares(live: readonly string[], ms: number, read: (fw: string) => Promise<CarriedReading>, sleep: (ms: number) => Promise<unknown>): Promise<Shares> {
  const readAll = async () => Object.fromEntries(await Promise.all(live.map(async (fw) => [fw, await read(fw)] as const)));
  const a = await readAll();
  await sleep(ms);
  return sharesOf(a, await readAll());
}

/** "fw1 33.1%, fw2 ..." of a measurement. */
export function sharesText(s: Shares): string {
  return Object.entries(s.share).map(([fw, v]) => `${fw} ${(100 * v).toFixed(1)}% (${s.packets[fw]} packets)`).join(', ');
}
