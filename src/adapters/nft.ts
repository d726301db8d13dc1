/**
 * Applies rulesets through nft(8). A script is sent as one batch, which the kernel
 * commits as one transaction: either all of it takes effect or none of it, so a
 * failing ruleset leaves the previous one in place. The kernel's reason is returned.
 */
import { runRaw } from '../lib/exec.js';
import { FwlbError } from '../lib/errors.js';
import type { Nft } from '../ports/nft.js';

export class NftError extends FwlbError {
  constructor(action: string, readonly reason: string) {
    super('ERR_NFT', `nft ${action} failed: ${reason.trim()}`);
    this.name = 'NftError';
  }
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
