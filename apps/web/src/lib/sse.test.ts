import { describe, expect, it, vi } from 'vitest';
import { createSseParser, openEventStream, reconnectDelayMs, type SseFrame, type StreamStatus } from './sse';

describe('createSseParser', () => {
  it('parses id, event and data frames and skips comments', () => {
    const parser = createSseParser();
    expect(
      parser.push(
        'event: ready\ndata: {"after":"0"}\n\n: keep-alive\n\nid: 7\nevent: task.done\ndata: {"id":"7"}\n\n',
      ),
    ).toEqual([
      { id: undefined, event: 'ready', data: '{"after":"0"}' },
      { id: '7', event: 'task.done', data: '{"id":"7"}' },
    ]);
  });

  it('keeps a frame split across chunks, at any byte, until its blank line arrives', () => {
    const text = 'id: 12\nevent: task.created\ndata: {"id":"12","type":"task.created"}\n\n';
    for (let cut = 1; cut < text.length; cut++) {
      const parser = createSseParser();
      const frames = [...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))];
      expect(frames, `cut at ${cut}`).toEqual([
        { id: '12', event: 'task.created', data: '{"id":"12","type":"task.created"}' },
      ]);
    }
  });

  it('accepts CRLF and CR line ends (a CRLF split between chunks too) and joins several data lines', () => {
    const parser = createSseParser();
    const frames = [
      ...parser.push('id: 1\r\ndata: a\r'),
      ...parser.push('\ndata: b\r\n\r\nid: 2\rdata:c\r\rid: 3'),
    ];
    expect(frames).toEqual([
      { id: '1', event: undefined, data: 'a\nb' },
      { id: '2', event: undefined, data: 'c' },
    ]);
  });
});

describe('reconnectDelayMs', () => {
  it('grows from about 500 ms, doubling, to at most 30 s, with jitter of up to a half', () => {
    expect(reconnectDelayMs(0, () => 0)).toBe(250);
    expect(reconnectDelayMs(0, () => 1)).toBe(500);
    expect(reconnectDelayMs(3, () => 1)).toBe(4000);
    expect(reconnectDelayMs(20, () => 1)).toBe(30_000);
    expect(reconnectDelayMs(20, () => 0)).toBe(15_000);
  });
});

/** A response whose body sends `chunks` and then ends (or stays open when `open`). */
function streamOf(chunks: string[], { open = false } = {}) {
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        if (!open) controller.close();
      },
    }),
    { headers: { 'content-type': 'text/event-stream' } },
  );
}

function harness(responses: (() => Response | Promise<Response>)[]) {
  const frames: SseFrame[] = [];
  const statuses: string[] = [];
  const refused: [number, string][] = [];
  const headers: Record<string, string>[] = [];
  const sleeps: number[] = [];
  let call = 0;
  const fetchMock = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
    headers.push({ ...(init?.headers as Record<string, string>) });
    const next = responses[call++];
    if (!next) return new Promise<Response>(() => {}); // stays pending: the test ends here
    return next();
  });
  const stream = openEventStream({
    url: '/api/events',
    token: () => 'tok',
    fetch: fetchMock as unknown as typeof fetch,
    onFrame: (frame) => frames.push(frame),
    onStatus: (status: StreamStatus, detail?: string) =>
      statuses.push(detail ? `${status}: ${detail}` : status),
    onRefused: (status, detail) => refused.push([status, detail]),
    delay: (failures) => 100 * (failures + 1),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
  return { frames, statuses, refused, headers, sleeps, stream, fetchMock };
}

describe('openEventStream', () => {
  it('sends the bearer token, goes live on `ready`, and hands over each event frame', async () => {
    const h = harness([
      () =>
        streamOf(['event: ready\ndata: {}\n\n', 'id: 5\nevent: task.done\ndata: {"id":"5"}\n\n'], {
          open: true,
        }),
    ]);
    await vi.waitFor(() => expect(h.frames).toHaveLength(1));
    expect(h.headers[0]).toMatchObject({ authorization: 'Bearer tok', accept: 'text/event-stream' });
    expect(h.headers[0]!['last-event-id']).toBeUndefined();
    expect(h.statuses).toEqual(['connecting', 'live']);
    expect(h.frames[0]).toEqual({ id: '5', event: 'task.done', data: '{"id":"5"}' });
    expect(h.stream.lastEventId()).toBe('5');
    h.stream.stop();
  });

  it('reconnects after a cut with the last id as Last-Event-ID, backing off, and resets the backoff once live', async () => {
    const h = harness([
      () => streamOf(['event: ready\ndata: {}\n\n', 'id: 8\nevent: task.created\ndata: {}\n\n']),
      () => Promise.reject(new TypeError('network down')),
      () => streamOf(['event: ready\ndata: {}\n\n', 'id: 9\nevent: task.done\ndata: {}\n\n']),
      () => streamOf([]),
    ]);
    await vi.waitFor(() => expect(h.fetchMock).toHaveBeenCalledTimes(5));
    expect(h.headers.map((x) => x['last-event-id'])).toEqual([undefined, '8', '8', '9', '9']);
    expect(h.frames.map((f) => f.id)).toEqual(['8', '9']);
    // 100 after the first cut (live resets the count), 200 after the network error, 100 after the next live.
    expect(h.sleeps).toEqual([100, 200, 100, 200]);
    expect(h.statuses).toEqual([
      'connecting',
      'live',
      'reconnecting: the connection ended',
      'reconnecting: network down',
      'live',
      'reconnecting: the connection ended',
      'reconnecting: the connection ended',
    ]);
    h.stream.stop();
  });

  it('reconnects after `event: dropped`, saying why, without handing the frame over', async () => {
    const h = harness([
      () =>
        streamOf([
          'event: ready\ndata: {}\n\nid: 3\nevent: task.done\ndata: {}\n\n',
          'event: dropped\ndata: {"reason":"the client did not read"}\n\n',
        ]),
    ]);
    await vi.waitFor(() => expect(h.fetchMock).toHaveBeenCalledTimes(2));
    expect(h.frames.map((f) => f.event)).toEqual(['task.done']);
    expect(h.statuses).toContain('reconnecting: the client did not read');
    expect(h.headers[1]!['last-event-id']).toBe('3');
    h.stream.stop();
  });

  it('waits as long as a 429 says (Retry-After) before trying again', async () => {
    const h = harness([
      () =>
        new Response(JSON.stringify({ title: 'Too many', detail: 'at most 5 streams' }), {
          status: 429,
          headers: { 'retry-after': '5' },
        }),
    ]);
    await vi.waitFor(() => expect(h.fetchMock).toHaveBeenCalledTimes(2));
    expect(h.sleeps).toEqual([5000]);
    expect(h.statuses).toContain('reconnecting: at most 5 streams');
    h.stream.stop();
  });

  it('stops on 401 and reports the problem, instead of retrying a refused token', async () => {
    const h = harness([
      () =>
        new Response(JSON.stringify({ title: 'Unauthenticated', detail: 'token expired' }), { status: 401 }),
    ]);
    await vi.waitFor(() => expect(h.refused).toEqual([[401, 'token expired']]));
    await new Promise((r) => setTimeout(r, 20));
    expect(h.fetchMock).toHaveBeenCalledTimes(1);
    expect(h.statuses).toEqual(['connecting', 'stopped: token expired']);
  });

  it('stops when told to, aborting the request', async () => {
    let signal: AbortSignal | undefined;
    const fetchMock = vi.fn((_url: RequestInfo | URL, init?: RequestInit) => {
      signal = init?.signal ?? undefined;
      return new Promise<Response>(() => {});
    });
    const statuses: string[] = [];
    const stream = openEventStream({
      url: '/api/events',
      token: () => null,
      fetch: fetchMock as unknown as typeof fetch,
      onFrame: () => {},
      onStatus: (s) => statuses.push(s),
    });
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalled());
    expect((fetchMock.mock.calls[0]![1]!.headers as Record<string, string>).authorization).toBeUndefined();
    stream.stop();
    expect(signal?.aborted).toBe(true);
  });
});
