/**
 * Applies rulesets through nft(8). A script is sent as one batch, which the kernel
 * commits as one transaction: either all of it takes effect or none of it, so a
 * failing ruleset leaves the previous one in place. The kernel's reason is returned.
 */
import { runRaw } from '../lib/exec.js';
import { FwlbError } from '../lib/errors.js';

export class NftError extends FwlbError {
  constructor(action: string, readonly reason: string) {
    super('ERR_NFT', `nft ${action} failed: ${reason.trim()}`);
    this.name = 'NftError';
  }
}

export interface Nft {
  /** Checks a script against the kernel without committing anything (nft -c). */
  check(script: string): Promise<void>;
  /** Commits a script as one transaction. */
  apply(script: string): Promise<void>;
  /** Runs a listing command (e.g. ['list', 'table', 'inet', 'fwlb']) and returns its output. */
  list(args: readonly string[]): Promise<string>;
}

/** `command` is how to run nft: ['nft'], or e.g. ['ip', 'netns', 'exec', NS, 'nft'] in tests and tools. */
export function createNft(command: readonly string[] = ['nft']): Nft {
  const [bin = 'nft', ...pre] = command;
  const exec = async (action: string, args: string[], input?: string) => {
    const r = await runRaw(bin, [...pre, ...args], input);
    if (r.status !== 0) throw new NftError(action, r.stderr || r.stdout || `exit ${r.status}`);
    return r.stdout;
  };
  return {
    check: async (script) => void (await exec('check', ['-c', '-f', '-'], script)),
    apply: async (script) => void (await exec('apply', ['-f', '-'], script)),
    list: (args) => exec('list', [...args]),
  };
}

/** Named counters of a table (name -> packets); an unreadable answer gives an empty map. */
export async function readCounters(nft: Nft, family: string, table: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let text: string;
  try {
    text = await nft.list(['-j', 'list', 'counters', 'table', family, table]);
  } catch {
    return out;
  }
  try {
    const doc = JSON.parse(text) as { nftables?: { counter?: { name?: unknown; packets?: unknown } }[] };
    for (const item of doc.nftables ?? []) {
      const c = item.counter;
      if (c && typeof c.name === 'string' && typeof c.packets === 'number') out.set(c.name, c.packets);
    }
  } catch {
    // Not JSON: nothing to report.
  }
  return out;
}
