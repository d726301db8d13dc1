/** Port: nftables as the services drive it (adapters/nft.ts: nft -f, whole transactions). */
export interface Nft {
  /** Checks a script against the kernel without committing anything (nft -c). */
  check(script: string): Promise<void>;
  /** Commits a script as one transaction. */
  apply(script: string): Promise<void>;
  /** Runs a listing command (e.g. ['list', 'table', 'inet', 'fwlb']) and returns its output. */
  list(args: readonly string[]): Promise<string>;
}
