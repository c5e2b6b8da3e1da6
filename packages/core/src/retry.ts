/** Exponential backoff with full jitter (DESIGN §3): a retry waits a random time in [0, min(cap, base·2^(n-1))). */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 1000, capMs: 5 * 60_000 };

/** The upper bound of the wait before retry number `failures` (1 = after the first failure). */
export function backoffCeilingMs(failures: number, policy: BackoffPolicy): number {
  if (!Number.isInteger(failures) || failures < 1)
    throw new RangeError('failures must be a positive integer');
  // 2^(n-1) overflows to Infinity long after the cap applies; min() keeps it finite.
  return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(failures - 1, 60));
}

/**
 * The wait before retry number `failures`, full jitter: uniform in [0, ceiling).
 * @example backoffDelayMs(3, { baseMs: 1000, capMs: 60_000 }, () => 0.5) // 2000
 */
export function backoffDelayMs(
  failures: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeilingMs(failures, policy));
}

export type RetryDecision =
  | { outcome: 'retry'; retryCount: number; delayMs: number }
  | { outcome: 'quarantine'; retryCount: number; reason: 'retries_exhausted' | 'non_retryable' };

/**
 * What a failure does to a task. `max_retries` counts retries after the first attempt, so with
 * max_retries = 3 a task runs at most 4 times: the failure that makes retry_count exceed it quarantines.
 */
export function decideRetry(
  task: { retry_count: number; max_retries: number },
  failure: { retryable: boolean },
  policy: BackoffPolicy,
  random: () => number = Math.random,
): RetryDecision {
  const retryCount = task.retry_count + 1;
  if (!failure.retryable) return { outcome: 'quarantine', retryCount, reason: 'non_retryable' };
  if (retryCount > task.max_retries)
    return { outcome: 'quarantine', retryCount, reason: 'retries_exhausted' };
  return { outcome: 'retry', retryCount, delayMs: backoffDelayMs(retryCount, policy, random) };
}

/** A task's own policy (`retry_backoff: { base_ms, cap_ms }`) over the defaults. */
export function backoffPolicyOf(
  override: { base_ms?: number; cap_ms?: number } | null | undefined,
  defaults: BackoffPolicy = defaultBackoff,
): BackoffPolicy {
  return { baseMs: override?.base_ms ?? defaults.baseMs, capMs: override?.cap_ms ?? defaults.capMs };
}

const MAX_ERROR_BYTES = 8 * 1024;

/** Caps an error message at 8 KiB of UTF-8 without splitting a character. */
export function capErrorMessage(message: string, maxBytes = MAX_ERROR_BYTES): string {
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= maxBytes) return message;
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
