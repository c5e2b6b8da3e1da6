import { describe, expect, it } from 'vitest';
import { createBatcher } from './batcher';

describe('createBatcher', () => {
  it('sends a lone item at once and groups what arrives while a request is in flight', async () => {
    const sent: number[][] = [];
    let release!: () => void;
    const batcher = createBatcher<number, number>(async (items) => {
      sent.push(items);
      if (sent.length === 1) await new Promise<void>((r) => (release = r));
      return items.map((i) => i * 10);
    });
    const first = batcher.submit(1);
    await new Promise((r) => setImmediate(r));
    const rest = [2, 3, 4].map((i) => batcher.submit(i));
    release();
    expect(await first).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(sent).toEqual([[1], [2, 3, 4]]);
  });

  it('caps a batch and rejects every item of a failed request', async () => {
    const sent: number[][] = [];
    const batcher = createBatcher<number, number>(
      async (items) => {
        sent.push(items);
        if (items.includes(3)) throw new Error('down');
        return items;
      },
      { maxBatch: 2 },
    );
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => batcher.submit(i)));
    expect(sent).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
  });
});
