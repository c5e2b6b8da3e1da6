import type { PlatformEvent, PlatformEventType } from '@devart/contracts';
import { backoffMs, retryAfterMs } from './client';
import { ApiError } from './errors';

export type { PlatformEvent, PlatformEventType };

export interface EventsClientOptions {
  apiUrl: string;
  /** A user token (viewer and up see every event) or an agent key (its own events only). */
  token: string;
  fetch?: typeof fetch;
  /** First reconnection delay (default 500 ms), doubled up to `retryCapMs` (default 30 s), with jitter. */
  retryBaseMs?: number;
  retryCapMs?: number;
}

export interface EventsOptions {
  /** Only these types (all by default). */
  types?: readonly PlatformEventType[];
  /** Start after this event id (the last one handled); by default only events from now on. */
  after?: string;
  task_id?: string;
  workflow_run_id?: string;
  agent_id?: string;
  /** Ends the iteration (the loop simply finishes). */
  signal?: AbortSignal;
}

export interface EventsClient {
  /**
   * The platform's events as an endless async iterator over GET /api/events. When the stream ends
   * (a restart, a network cut, the server dropping a slow reader) it reconnects with the last id
   * it yielded (Last-Event-ID), with backoff, so nothing is lost or repeated. Stop it with the
   * signal or by leaving the loop. 400, 401 and 403 are thrown as ApiError; 429 and 5xx are retried.
   * @example
   * for await (const event of client.events({ types: ['task.done', 'task.failed'], after: savedId })) {
   *   await handle(event);
   *   savedId = event.id;
   * }
   */
  events(options?: EventsOptions): AsyncGenerator<PlatformEvent, void, undefined>;
}

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });

/** Splits a server-sent event stream into `{ id, event, data }` frames (comments skipped). */
async function* frames(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replaceAll('\r\n', '\n');
      for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const frame: { id?: string; event?: string; data: string[] } = { data: [] };
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          if (colon === 0) continue;
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') frame.id = value;
          else if (field === 'event') frame.event = value;
          else if (field === 'data') frame.data.push(value);
        }
        yield { id: frame.id, event: frame.event, data: frame.data.join('\n') };
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * A client of the event log. The iterator is the SSE stream made resumable: it keeps the last id
 * itself, so a consumer only has to persist `event.id` if it wants to survive its own restart.
 * @example
 * const client = createEventsClient({ apiUrl: 'http://localhost:8080', token });
 * for await (const event of client.events({ types: ['task.done'] })) console.log(event.task_id);
 */
export function createEventsClient(options: EventsClientOptions): EventsClient {
  const fetchImpl = options.fetch ?? fetch;
  const baseMs = options.retryBaseMs ?? 500;
  const capMs = options.retryCapMs ?? 30_000;
  return {
    async *events({ types, after, signal, ...subjects } = {}) {
      let last = after;
      let failures = 0;
      const url = new URL('/api/events', options.apiUrl);
      if (types && types.length > 0) url.searchParams.set('types', types.join(','));
      for (const [key, value] of Object.entries(subjects)) if (value) url.searchParams.set(key, value);
      while (!signal?.aborted) {
        let waitMs = backoffMs(failures, { baseMs, capMs });
        try {
          const res = await fetchImpl(url, {
            headers: {
              authorization: `Bearer ${options.token}`,
              accept: 'text/event-stream',
              ...(last === undefined ? {} : { 'last-event-id': last }),
            },
            signal,
          });
          if (!res.ok || !res.body) {
            const text = await res.text().catch(() => '');
            const problem = (() => {
              try {
                return JSON.parse(text) as { detail?: string };
              } catch {
                return { detail: text.slice(0, 500) };
              }
            })();
            const retryAfter = res.headers.get('retry-after') ?? undefined;
            if (res.status !== 429 && res.status < 500) {
              throw new ApiError(
                res.status,
                problem,
                `GET /api/events: ${res.status} ${problem.detail ?? ''}`,
                retryAfter,
              );
            }
            waitMs = retryAfterMs(retryAfter, capMs, Date.now()) ?? waitMs;
          } else {
            for await (const frame of frames(res.body)) {
              // `ready`, `dropped` and comments carry no id; the stream ending after `dropped` reconnects below.
              if (
                frame.id === undefined ||
                !frame.event ||
                frame.event === 'ready' ||
                frame.event === 'dropped'
              ) {
                continue;
              }
              failures = 0;
              last = frame.id;
              yield JSON.parse(frame.data) as PlatformEvent;
            }
          }
        } catch (error) {
          if (signal?.aborted) return;
          if (error instanceof ApiError) throw error;
          // A network error or a cut stream: reconnect below.
        }
        failures++;
        await sleep(waitMs, signal);
      }
    },
  };
}
