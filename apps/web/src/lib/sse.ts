/**
 * A server-sent event stream read over `fetch`, for GET /api/events. Browsers' EventSource cannot
 * send an Authorization header, and a token in the URL would land in access logs and history; so
 * the console streams with `fetch`, parses the frames itself and reconnects with Last-Event-ID as
 * EventSource would (docs/web-ui.md).
 */

export interface SseFrame {
  id?: string;
  event?: string;
  data: string;
}

/**
 * An incremental SSE parser (the WHATWG "event stream interpretation" subset the API uses): feed it
 * text as it arrives, get the complete frames. Comment lines (`: keep-alive`) and blank frames are
 * dropped; CRLF and lone CR line ends are accepted; several `data:` lines join with `\n`.
 * @example
 * const parser = createSseParser();
 * parser.push('id: 7\nevent: task.done\ndata: {"id":"7"}\n\n'); // [{ id: '7', event: 'task.done', data: '{"id":"7"}' }]
 */
export function createSseParser() {
  let buffer = '';
  return {
    push(chunk: string): SseFrame[] {
      buffer += chunk;
      // A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
      const keepCr = buffer.endsWith('\r');
      let text = (keepCr ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, '\n');
      const frames: SseFrame[] = [];
      for (let cut = text.indexOf('\n\n'); cut >= 0; cut = text.indexOf('\n\n')) {
        const block = text.slice(0, cut);
        text = text.slice(cut + 2);
        const frame = parseBlock(block);
        if (frame) frames.push(frame);
      }
      buffer = keepCr ? `${text}\r` : text;
      return frames;
    },
  };
}

function parseBlock(block: string): SseFrame | null {
  let id: string | undefined;
  let event: string | undefined;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (id === undefined && event === undefined && data.length === 0) return null;
  return { id, event, data: data.join('\n') };
}

/** The delay before reconnection `failures` (0-based): 500 ms doubling to 30 s, with jitter of up to a half. */
export function reconnectDelayMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(failures, 16));
  return Math.round(base / 2 + (random() * base) / 2);
}

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface StreamOptions {
  url: string;
  /** Read each attempt, so a token refreshed meanwhile is used. */
  token: () => string | null;
  /** The last id seen; the first connection sends it too when given. */
  lastEventId?: string;
  onFrame: (frame: SseFrame) => void;
  onStatus?: (status: StreamStatus, detail?: string) => void;
  /** 401/403: the credential is refused; the stream stops (reconnecting would be refused again). */
  onRefused?: (status: number, detail: string) => void;
  fetch?: typeof fetch;
  delay?: (failures: number) => number;
  /** Replaceable in tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const abortableSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });

/**
 * Opens the stream and keeps it open until the returned `stop()`: on an error, a cut or `event:
 * dropped` it reconnects after reconnectDelayMs with the last id as Last-Event-ID, honouring a
 * 429's Retry-After. Status: `connecting` → `live` (after `event: ready`) → `reconnecting` → …
 * @example const stop = openEventStream({ url: '/api/events', token: readToken, onFrame: console.log });
 */
export function openEventStream(options: StreamOptions): { stop(): void; lastEventId(): string | undefined } {
  const controller = new AbortController();
  const { signal } = controller;
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const delay = options.delay ?? ((failures) => reconnectDelayMs(failures));
  const sleep = options.sleep ?? abortableSleep;
  let last = options.lastEventId;
  const status = (value: StreamStatus, detail?: string) => options.onStatus?.(value, detail);

  void (async () => {
    let failures = 0;
    status('connecting');
    while (!signal.aborted) {
      let waitMs: number | undefined;
      let detail = 'the connection ended';
      try {
        const token = options.token();
        const res = await fetchImpl(options.url, {
          headers: {
            accept: 'text/event-stream',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(last === undefined ? {} : { 'last-event-id': last }),
          },
          cache: 'no-store',
          signal,
        });
        if (!res.ok || !res.body) {
          const body = await res.text().catch(() => '');
          detail = problemDetail(body) ?? `HTTP ${res.status}`;
          if (res.status === 401 || res.status === 403) {
            status('stopped', detail);
            options.onRefused?.(res.status, detail);
            return;
          }
          const retryAfter = Number(res.headers.get('retry-after'));
          if (Number.isFinite(retryAfter) && retryAfter > 0) waitMs = Math.min(retryAfter * 1000, 60_000);
        } else {
          const parser = createSseParser();
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              for (const frame of parser.push(value)) {
                if (frame.event === 'ready') {
                  failures = 0;
                  status('live');
                  continue;
                }
                if (frame.event === 'dropped') {
                  detail = problemDetail(frame.data, 'reason') ?? 'the server dropped the stream';
                  continue;
                }
                if (frame.id !== undefined) last = frame.id;
                options.onFrame(frame);
              }
            }
          } finally {
            await reader.cancel().catch(() => {});
          }
        }
      } catch (error) {
        if (signal.aborted) break;
        detail = (error as Error).message;
      }
      if (signal.aborted) break;
      status('reconnecting', detail);
      await sleep(waitMs ?? delay(failures), signal);
      failures++;
    }
    status('stopped');
  })();

  return {
    stop: () => controller.abort(),
    lastEventId: () => last,
  };
}

function problemDetail(text: string, field: 'detail' | 'reason' = 'detail'): string | undefined {
  try {
    const value = (JSON.parse(text) as Record<string, unknown>)[field];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return text ? text.slice(0, 200) : undefined;
  }
}
