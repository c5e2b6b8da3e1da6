import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff';

describe('backoffDelay', () => {
  const options = { initialDelayMs: 100, maxDelayMs: 10_000 };

  it('doubles from the initial delay and stops at the cap', () => {
    const noJitter = () => 0;
    expect([1, 2, 3, 4, 8, 9, 50].map((attempt) => backoffDelay(attempt, options, noJitter))).toEqual([
      100, 200, 400, 800, 10_000, 10_000, 10_000,
    ]);
  });

  it('jitters downwards by at most 30 %, so the cap always holds', () => {
    expect(backoffDelay(3, options, () => 1)).toBe(280);
    expect(backoffDelay(60, options, () => 0.999)).toBeGreaterThanOrEqual(7_000);
    for (let i = 0; i < 1_000; i++) {
      const delay = backoffDelay(1 + (i % 20), options);
      expect(delay).toBeGreaterThanOrEqual(70);
      expect(delay).toBeLessThanOrEqual(10_000);
    }
  });
});
