import { describe, expect, it } from 'vitest';
import { createApiClient } from './client';
import { classifyReportStatus, createReporter, type Report } from './reports';

/** A fake API answering from a script: each request gets `answer(path, body, n)`, n counting from 0. */
function fakeApi(answer: (path: string, body: unknown, n: number) => Response | Promise<Response>) {
  const requests: { path: string; body: unknown; at: number }[] = [];
  const doFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const path = new URL(String(input)).pathname;
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    requests.push({ path, body, at: Date.now() });
    return answer(path, body, requests.length - 1);
  }) as typeof fetch;
  return { requests, api: createApiClient({ apiUrl: 'http://api.test', apiKey: 'dva_x', fetch: doFetch }) };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const silent = { info() {}, warn() {}, error() {} };

const complete = (taskId: string): Report => ({
  kind: 'complete',
  taskId,
  attempt: 1,
  result: taskId,
  cost: 0,
});

describe('classifyReportStatus', () => {
  it('confirms 2xx, gives up on 401/403/404/409, retries 429 and 5xx, and treats other 4xx as refused data', () => {
    expect([200, 401, 404, 409, 429, 500, 503, 400, 422].map((s) => classifyReportStatus(s).action)).toEqual([
      'confirmed',
      'revoked',
      'lost',
      'lost',
      'retry',
      'retry',
      'retry',
      'refused',
      'refused',
    ]);
  });
});

describe('createReporter', () => {
  it('retries only the item of a batch that answered 5xx, and the whole batch after a network error', async () => {
    const { api, requests } = fakeApi((_path, body, n) => {
      if (n === 0) throw new TypeError('fetch failed');
      const items = (body as { items: { task_id: string }[] }).items;
      // The second request answers: a done, b a 503 of its own; later ones confirm.
      return json(200, {
        items: items.map((i) => ({ task_id: i.task_id, status: n === 1 && i.task_id === 'b' ? 503 : 200 })),
      });
    });
    const reporter = createReporter({ api, batch: true, logger: silent, maxBackoffMs: 20 });
    const ends = await Promise.all([reporter.report(complete('a')), reporter.report(complete('b'))]);
    expect(ends).toEqual([
      { outcome: 'confirmed', kind: 'complete' },
      { outcome: 'confirmed', kind: 'complete' },
    ]);
    const sent = requests.map((r) =>
      (r.body as { items: { task_id: string }[] }).items.map((i) => i.task_id),
    );
    expect(sent[0]).toEqual(['a', 'b']);
    expect(sent.flat().filter((id) => id === 'a')).toHaveLength(2);
    expect(sent.at(-1)).toEqual(['b']);
    expect(reporter.pending).toBe(0);
  });

  it('waits the Retry-After of a 503 and of a 429 before the next try, and logs one warning and one recovery', async () => {
    const { api, requests } = fakeApi((_path, _body, n) =>
      n === 0
        ? json(503, { title: 'Service Unavailable' }, { 'retry-after': '1' })
        : n === 1
          ? json(429, { title: 'Too Many Requests' }, { 'retry-after': '1' })
          : json(200, { task_id: 't' }),
    );
    const lines: string[] = [];
    const logger = {
      info: (_: object, msg?: string) => void lines.push(`info ${msg}`),
      warn: (_: object, msg?: string) => void lines.push(`warn ${msg}`),
      error: (_: object, msg?: string) => void lines.push(`error ${msg}`),
    };
    const reporter = createReporter({ api, batch: false, logger, maxBackoffMs: 10 });
    const end = await reporter.report({
      kind: 'failure',
      taskId: 't',
      attempt: 2,
      error: 'boom',
      retryable: true,
    });
    expect(end).toEqual({ outcome: 'confirmed', kind: 'failure' });
    expect(requests.map((r) => r.path)).toEqual(Array(3).fill('/api/tasks/t/report-failure'));
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(950);
    expect(requests[2]!.at - requests[1]!.at).toBeGreaterThanOrEqual(950);
    expect(lines).toEqual([
      expect.stringMatching(/^warn API unreachable \(answered 503\); holding 1 outcome/),
      expect.stringMatching(/^info API reachable again after \d+\.\d s; reporting 1 held outcome/),
    ]);
  });

  it('a refused failure report is sent once more bare, then given up', async () => {
    const { api, requests } = fakeApi(() => json(400, { detail: 'details: too deep' }));
    const reporter = createReporter({ api, batch: false, logger: silent });
    const end = await reporter.report({
      kind: 'failure',
      taskId: 't',
      attempt: 1,
      error: `bad\u0000byte`,
      retryable: true,
      details: { deep: {} },
    });
    expect(end).toEqual({ outcome: 'refused', status: 400, detail: 'details: too deep' });
    expect(requests.map((r) => r.body)).toEqual([
      { error: 'bad\u0000byte', retryable: true, details: { deep: {} }, attempt: 1 },
      { error: 'bad\uFFFDbyte', retryable: true, attempt: 1 },
    ]);
  });

  it('drain() resolves when the held outcomes are settled, or after its bound with the count left', async () => {
    const { api } = fakeApi(() => json(503, {}));
    const reporter = createReporter({ api, batch: false, logger: silent, maxBackoffMs: 10 });
    const end = reporter.report(complete('t'));
    expect(await reporter.drain(100)).toBe(1);
    reporter.abandonAll('agent stopped');
    expect(await end).toEqual({ outcome: 'abandoned', reason: 'agent stopped' });
    expect(await reporter.drain(100)).toBe(0);
  });
});
