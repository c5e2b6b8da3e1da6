/**
 * Natural batching: the first item goes out at once (next tick); items that arrive while a request
 * is in flight travel together in the next one. Low load keeps single-item latency, high load
 * turns many round trips and commits into one.
 */
// maxBatch 200: not measured. With prefetch = concurrency an agent seldom holds more; the cap keeps
// a request under the API's 500 items per batch.
export function createBatcher<I, O>(send: (items: I[]) => Promise<O[]>, { maxBatch = 200 } = {}) {
  let queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  let inFlight = false;
  let scheduled = false;

  const flush = async () => {
    scheduled = false;
    if (inFlight || queue.length === 0) return;
    inFlight = true;
    const batch = queue.slice(0, maxBatch);
    queue = queue.slice(batch.length);
    try {
      const results = await send(batch.map((b) => b.item));
      if (results.length !== batch.length)
        throw new Error(`batch answered ${results.length} results for ${batch.length} items`);
      for (const [i, b] of batch.entries()) b.resolve(results[i]!);
    } catch (error) {
      for (const b of batch) b.reject(error);
    } finally {
      inFlight = false;
      if (queue.length > 0) schedule();
    }
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => void flush());
  };

  return {
    submit(item: I): Promise<O> {
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        schedule();
      });
    },
  };
}
