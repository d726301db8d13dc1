/** Parses "250ms", "1s", "1.5s", "2m" into milliseconds; undefined when malformed. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000;
  const ms = n * unit;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}
