/** Exponential backoff settings. */
export interface BackoffOptions {
  /** Delay before the first retry (ms). */
  initialDelayMs: number;
  /** Cap of every delay (ms). */
  maxDelayMs: number;
}

/**
 * Delay before retry number `attempt` (1-based): `initialDelayMs * 2^(attempt-1)`, capped at
 * `maxDelayMs`, then shortened by up to 30 % at random so that many clients dropped together do
 * not reconnect in lockstep. Jitter only shortens, so the cap holds without piling up on it.
 * @example backoffDelay(3, { initialDelayMs: 100, maxDelayMs: 10_000 }, () => 0) // 400
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exponent);
  return Math.round(base * (1 - 0.3 * random()));
}
