import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Agent, AgentOptions, TaskCallback } from '@devart/sdk';
import { getRequestListener } from '@hono/node-server';
import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import {
  brokerKind,
  createTestPlatform,
  type RegisteredTestAgent,
  type TestPlatform,
} from '../../../test/platform';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The platform's app on a real port, with the faults of a real outage: `down()` closes the port
 * (connections refused, open ones cut) until `up()`; `refuse(pattern)` answers 503 with
 * Retry-After to the requests whose path matches.
 */
async function serveWithFaults(app: TestPlatform['app']) {
  const listener = getRequestListener(app.fetch);
  let refused: RegExp | undefined;
  let retryAfter = '1';
  const server: Server = createServer((req, res) => {
    if (refused?.test(req.url ?? '')) {
      res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': retryAfter });
      res.end(JSON.stringify({ title: 'Service Unavailable', status: 503, detail: 'injected by the test' }));
      return;
    }
    void listener(req, res);
  });
  const listen = (port = 0) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen();
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return {
    url: `http://127.0.0.1:${port}`,
    down: close,
    up: async () => void (await listen(port)),
    refuse(pattern: RegExp | undefined, after = '1') {
      refused = pattern;
      retryAfter = after;
    },
    close: () => (server.listening ? close() : Promise.resolve()),
  };
}

type Served = Awaited<ReturnType<typeof serveWithFaults>>;

/** Every HTTP call an agent made: path, answer (or 'error' when there was none) and when. */
function recordingFetch() {
  const calls: { path: string; status: number | 'error'; at: number }[] = [];
  const doFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
    try {
      const res = await fetch(input, init);
      calls.push({ path, status: res.status, at: Date.now() });
      return res;
    } catch (error) {
      calls.push({ path, status: 'error', at: Date.now() });
      throw error;
    }
  }) as typeof fetch;
  return { calls, fetch: doFetch };
}

function recordingLogger() {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg?: string) =>
    void lines.push({ level, msg: msg ?? '', obj });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

let platform: TestPlatform | undefined;
let served: Served | undefined;
afterEach(async () => {
  served?.refuse(undefined);
  await served?.close();
  await platform?.close();
  platform = undefined;
  served = undefined;
});

interface TaskRow {
  id: string;
  status: string;
  attempt: number;
  retry_count: number;
  last_error: string | null;
}

async function tasksOf(p: TestPlatform, ids: string[]): Promise<TaskRow[]> {
  const { rows } = await p.db.query<TaskRow>(
    'SELECT id, status, attempt, retry_count, last_error FROM tasks WHERE id = ANY ($1::uuid[]) ORDER BY title',
    [ids],
  );
  return rows;
}

async function setUp(leaseSeconds: number) {
  platform = await createTestPlatform({ leaseSeconds, reaperIntervalMs: 100 });
  served = await serveWithFaults(platform.app);
  const registered = await platform.registerAgent(['work'], 'reporter');
  return { p: platform, s: served, registered };
}

/** An SDK agent over real HTTP with the default (batched) reports. */
function startAgent(
  p: TestPlatform,
  s: Served,
  registered: RegisteredTestAgent,
  callback: TaskCallback,
  options: Partial<AgentOptions> = {},
): Promise<Agent> {
  return p.startAgent(registered, callback, {
    apiUrl: s.url,
    // Over the port, not the platform's in-process shortcut.
    fetch,
    capabilities: ['work'],
    batchReports: true,
    ...options,
  });
}

/** A gate the callbacks wait at, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe(`the SDK keeps finished outcomes until the platform confirms them, on ${backend} + ${brokerKind}`, () => {
  it('the API goes away for 7 s while the agent finishes its tasks: every task ends DONE at attempt 1, reported once the API is back', async () => {
    const { p, s, registered } = await setUp(20);
    const http = recordingFetch();
    const log = recordingLogger();
    const finish = gate();
    const ran: string[] = [];
    const agent = await startAgent(
      p,
      s,
      registered,
      async (task) => {
        ran.push(`${task.task_id}:${task.attempt}`);
        await finish.opened;
        return { result: { title: task.title }, cost: '0.01' };
      },
      { concurrency: 8, fetch: http.fetch, logger: log.logger },
    );
    const ids = await p.createTasks(8, { capability: 'work' });
    await p.waitFor('all 8 tasks running', async () => ran.length === 8);

    await s.down();
    const downAt = Date.now();
    finish.open();
    await p.waitFor('the agent to hold 8 outcomes', async () => agent.pendingReports === 8);
    await sleep(7000 - (Date.now() - downAt));
    expect((await tasksOf(p, ids)).map((t) => t.status)).toEqual(ids.map(() => 'IN_PROGRESS'));
    await s.up();
    const upAt = Date.now();

    await p.waitFor('every task DONE', async () => (await tasksOf(p, ids)).every((t) => t.status === 'DONE'));
    // Reported within one backoff (≤ 5 s) of the API's return.
    expect(Date.now() - upAt).toBeLessThan(6500);
    expect((await tasksOf(p, ids)).map((t) => [t.status, t.attempt, t.retry_count])).toEqual(
      ids.map(() => ['DONE', 1, 0]),
    );
    expect(ran).toHaveLength(8);
    // The commit comes before the answer reaches the agent.
    await p.waitFor('the agent to hold nothing', async () => agent.pendingReports === 0, 2000);
    // The outcomes were tried during the outage, again and again, and not given up.
    const reportsDuringOutage = http.calls.filter(
      (c) => c.path === '/api/tasks/complete-batch' && c.at >= downAt && c.at < upAt,
    );
    expect(reportsDuringOutage.length).toBeGreaterThan(8);
    expect(new Set(reportsDuringOutage.map((c) => c.status))).toEqual(new Set(['error']));
    // One line when reports start failing, one when they go through again.
    const reportLines = log.lines.filter((l) => /API (unreachable|reachable again)/.test(l.msg));
    expect(reportLines.map((l) => l.level)).toEqual(['warn', 'info']);
    expect(reportLines[0]!.msg).toMatch(/API unreachable .*holding \d+ outcome/);
  });

  it('reports answered 503 + Retry-After for longer than a 3 s lease: heartbeats keep the lease, Retry-After is honoured, attempt 1 ends DONE', async () => {
    const { p, s, registered } = await setUp(3);
    const http = recordingFetch();
    const agent = await startAgent(p, s, registered, (task) => ({ result: task.title }), {
      concurrency: 4,
      fetch: http.fetch,
    });
    s.refuse(/complete-batch/, '1');
    const ids = await p.createTasks(4, { capability: 'work' });
    await p.waitFor('4 outcomes held', async () => agent.pendingReports === 4);
    const refusedAt = Date.now();
    await sleep(8000);
    expect((await tasksOf(p, ids)).map((t) => [t.status, t.attempt])).toEqual(
      ids.map(() => ['IN_PROGRESS', 1]),
    );
    s.refuse(undefined);
    await p.waitFor('every task DONE', async () => (await tasksOf(p, ids)).every((t) => t.status === 'DONE'));
    expect((await tasksOf(p, ids)).map((t) => [t.status, t.attempt, t.retry_count])).toEqual(
      ids.map(() => ['DONE', 1, 0]),
    );
    const { rows: attempts } = await p.db.query('SELECT count(*)::int AS n FROM task_attempts');
    expect(attempts[0]).toEqual({ n: 4 });
    // The leases were extended while the outcomes were held…
    const heartbeats = http.calls.filter(
      (c) => c.path.endsWith('/heartbeat') && c.status === 200 && c.at > refusedAt + 1000,
    );
    expect(heartbeats.length).toBeGreaterThanOrEqual(4 * 4);
    // …and each report waited the second the server asked for: 4 outcomes, ≤ 8 tries each in 8 s.
    const refusedTries = http.calls.filter((c) => c.path === '/api/tasks/complete-batch' && c.status === 503);
    expect(refusedTries.length).toBeLessThanOrEqual(4 * 10);
    expect(refusedTries.length).toBeGreaterThanOrEqual(2);
  });

  it('a 409 for the held report ends its retries: the outcome is dropped with a warning and nothing more is sent', async () => {
    const { p, s, registered } = await setUp(30);
    const http = recordingFetch();
    const log = recordingLogger();
    const agent = await startAgent(p, s, registered, () => ({ result: 'late' }), {
      fetch: http.fetch,
      logger: log.logger,
    });
    // Everything about this task is refused while it is taken from the agent behind its back.
    s.refuse(/complete-batch|heartbeat/, '0');
    const [id] = await p.createTasks(1, { capability: 'work' });
    await p.waitFor('the outcome held', async () => agent.pendingReports === 1);
    await p.db.query(
      `UPDATE tasks SET status = 'CANCELLED', agent_id = NULL, lease_expires_at = NULL WHERE id = $1`,
      [id],
    );
    s.refuse(undefined);
    await p.waitFor('the report given up', async () => agent.pendingReports === 0);
    const settledAt = Date.now();
    const last = http.calls.filter((c) => c.path === '/api/tasks/complete-batch').at(-1);
    expect(last?.status).toBe(200);
    expect(log.lines.filter((l) => l.level === 'warn' && /no longer this agent/.test(l.msg))).toHaveLength(1);
    await sleep(1500);
    expect(http.calls.filter((c) => c.path === '/api/tasks/complete-batch' && c.at > settledAt)).toEqual([]);
    expect((await tasksOf(p, [id!]))[0]).toMatchObject({ status: 'CANCELLED' });
    expect(agent.inFlight).toBe(0);
  });

  it('a heartbeat answered 409 while the outcome is held drops it: the task is someone else’s', async () => {
    const { p, s, registered } = await setUp(3);
    const log = recordingLogger();
    const agent = await startAgent(p, s, registered, () => ({ result: 'late' }), { logger: log.logger });
    s.refuse(/complete-batch/, '0');
    const [id] = await p.createTasks(1, { capability: 'work' });
    await p.waitFor('the outcome held', async () => agent.pendingReports === 1);
    await p.db.query(`UPDATE tasks SET status = 'CANCELLED', lease_expires_at = NULL WHERE id = $1`, [id]);
    await p.waitFor('the outcome dropped', async () => agent.pendingReports === 0, 5000);
    expect(log.lines.some((l) => l.level === 'warn' && /held outcome is dropped/.test(l.msg))).toBe(true);
    await p.waitFor('its slot free', async () => agent.inFlight === 0, 2000);
  });

  it('stop() waits for a held report until the platform confirms it, and gives up after reportGraceMs', async () => {
    const { p, s, registered } = await setUp(30);
    const patient = await startAgent(p, s, registered, () => ({ result: 'kept' }));
    s.refuse(/complete-batch/, '0');
    const [id] = await p.createTasks(1, { capability: 'work' });
    await p.waitFor('the outcome held', async () => patient.pendingReports === 1);
    let stopped = false;
    const stopping = patient.stop().then(() => {
      stopped = true;
    });
    await sleep(1500);
    expect(stopped).toBe(false);
    s.refuse(undefined);
    await stopping;
    expect((await tasksOf(p, [id!]))[0]).toMatchObject({ status: 'DONE', attempt: 1 });

    // A platform that never answers holds the agent for reportGraceMs only.
    const other = await p.registerAgent(['work'], 'impatient');
    const log = recordingLogger();
    const impatient = await startAgent(p, s, other, () => ({ result: 'lost' }), {
      reportGraceMs: 500,
      logger: log.logger,
    });
    s.refuse(/complete-batch/, '0');
    const [second] = await p.createTasks(1, { capability: 'work' });
    await p.waitFor('the outcome held', async () => impatient.pendingReports === 1);
    const before = Date.now();
    await impatient.stop();
    expect(Date.now() - before).toBeLessThan(3000);
    expect(log.lines.some((l) => l.level === 'error' && /never confirmed/.test(l.msg))).toBe(true);
    expect((await tasksOf(p, [second!]))[0]).toMatchObject({ status: 'IN_PROGRESS', attempt: 1 });
  });

  it('a result the platform refuses (400) is reported as a non-retryable failure with the server’s detail; the other tasks of its batch end DONE', async () => {
    const { p, s, registered } = await setUp(30);
    const log = recordingLogger();
    await startAgent(
      p,
      s,
      registered,
      (task) => (task.title === 'task 0' ? { result: 'x', cost: 'not a cost' } : { result: task.title }),
      { concurrency: 4, logger: log.logger },
    );
    const ids = await p.createTasks(4, { capability: 'work' });
    await p.waitFor('every task ended', async () =>
      (await tasksOf(p, ids)).every((t) => t.status === 'DONE' || t.status === 'QUARANTINED'),
    );
    const [bad, ...good] = await tasksOf(p, ids);
    expect(bad).toMatchObject({ status: 'QUARANTINED', attempt: 1 });
    expect(bad!.last_error).toMatch(/the platform refused the result: .*cost/i);
    expect(good.map((t) => [t.status, t.attempt])).toEqual(good.map(() => ['DONE', 1]));
    expect(log.lines.some((l) => l.level === 'error' && /refused the task's result/.test(l.msg))).toBe(true);
  });

  it('a revoked agent stops retrying its held outcomes and stops taking tasks', async () => {
    const { p, s, registered } = await setUp(30);
    const log = recordingLogger();
    const http = recordingFetch();
    let runs = 0;
    const agent = await startAgent(
      p,
      s,
      registered,
      () => {
        runs += 1;
        return { result: 'never recorded' };
      },
      { logger: log.logger, fetch: http.fetch },
    );
    s.refuse(/complete-batch/, '0');
    await p.createTasks(1, { capability: 'work' });
    await p.waitFor('the outcome held', async () => agent.pendingReports === 1);
    await p.call('DELETE', `/api/agents/${registered.id}`, { auth: await p.token('admin') });
    s.refuse(undefined);
    await p.waitFor('the report given up', async () => agent.pendingReports === 0);
    expect(log.lines.some((l) => l.level === 'error' && /refused this agent's key/.test(l.msg))).toBe(true);
    const settledAt = Date.now();
    await sleep(1000);
    expect(http.calls.filter((c) => c.path === '/api/tasks/complete-batch' && c.at > settledAt)).toEqual([]);
    // It took no more work: a new task waits for another agent.
    const [next] = await p.createTasks(1, { capability: 'work' });
    await sleep(1000);
    expect(runs).toBe(1);
    expect((await tasksOf(p, [next!]))[0]).toMatchObject({ status: 'TODO' });
  });
});
