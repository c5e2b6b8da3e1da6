import { describe, expect, it } from 'vitest';
import { backoffCeilingMs, backoffDelayMs, backoffPolicyOf, capErrorMessage, decideRetry } from './retry';

const policy = { baseMs: 1000, capMs: 60_000 };

describe('backoff', () => {
  it('doubles the ceiling per failure from the base, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffCeilingMs(n, policy))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000,
    ]);
    expect(backoffCeilingMs(10_000, policy)).toBe(60_000);
  });

  it('draws the delay uniformly below the ceiling (full jitter)', () => {
    expect(backoffDelayMs(3, policy, () => 0)).toBe(0);
    expect(backoffDelayMs(3, policy, () => 0.5)).toBe(2000);
    expect(backoffDelayMs(3, policy, () => 0.999_999)).toBe(3999);
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelayMs(7, policy);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(60_000);
    }
  });

  it('refuses a failure count that is not a positive integer', () => {
    expect(() => backoffCeilingMs(0, policy)).toThrow(RangeError);
    expect(() => backoffCeilingMs(1.5, policy)).toThrow(RangeError);
  });

  it("takes a task's own base and cap over the defaults", () => {
    expect(backoffPolicyOf({ base_ms: 10 })).toEqual({ baseMs: 10, capMs: 300_000 });
    expect(backoffPolicyOf(null, policy)).toEqual(policy);
  });
});

describe('decideRetry', () => {
  it('retries while retry_count stays within max_retries, then quarantines', () => {
    const task = { max_retries: 2 };
    expect(decideRetry({ ...task, retry_count: 0 }, { retryable: true }, policy, () => 0)).toEqual({
      outcome: 'retry',
      retryCount: 1,
      delayMs: 0,
    });
    expect(decideRetry({ ...task, retry_count: 1 }, { retryable: true }, policy).outcome).toBe('retry');
    expect(decideRetry({ ...task, retry_count: 2 }, { retryable: true }, policy)).toEqual({
      outcome: 'quarantine',
      retryCount: 3,
      reason: 'retries_exhausted',
    });
  });

  it('quarantines a non-retryable failure at once', () => {
    expect(decideRetry({ retry_count: 0, max_retries: 5 }, { retryable: false }, policy)).toEqual({
      outcome: 'quarantine',
      retryCount: 1,
      reason: 'non_retryable',
    });
  });

  it('with max_retries = 0 the first failure quarantines', () => {
    expect(decideRetry({ retry_count: 0, max_retries: 0 }, { retryable: true }, policy).outcome).toBe(
      'quarantine',
    );
  });
});

describe('capErrorMessage', () => {
  it('keeps short messages as they are', () => {
    expect(capErrorMessage('boom')).toBe('boom');
  });

  it('cuts at 8 KiB on a character boundary', () => {
    const cut = capErrorMessage(`${'a'.repeat(8191)}é and more`);
    expect(cut).toBe('a'.repeat(8191));
    expect(Buffer.byteLength(capErrorMessage('€'.repeat(5000)))).toBeLessThanOrEqual(8192);
    expect(capErrorMessage('€'.repeat(5000))).toBe('€'.repeat(2730));
  });
});
