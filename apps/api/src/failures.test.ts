import { randomUUID } from 'node:crypto';
import { NonRetryableError } from '@devart/sdk';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import {
  brokerKind,
  createTestPlatform,
  type RegisteredTestAgent,
  type TestPlatform,
} from '../../../test/platform';
import { reapExpiredLeases } from './services/failures';
import { startLeaseReaper } from './services/lease-reaper';

const silent = pino({ level: 'silent' });

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface TaskState {
  status: string;
  attempt: number;
  retry_count: number;
  max_retries: number;
  last_error: string | null;
  agent_id: string | null;
  next_attempt_at: Date | null;
  lease_expires_at: Date | null;
  payload: unknown;
  /** next_attempt_at − updated_at, in ms (both set by the same statement). */
  delay_ms: number | null;
}

async function taskState(p: TestPlatform, id: string): Promise<TaskState> {
  const { rows } = await p.db.query<TaskState>(
    `SELECT status, attempt, retry_count, max_retries, last_error, agent_id, next_attempt_at, lease_expires_at,
            payload, round(extract(epoch FROM next_attempt_at - updated_at) * 1000)::int AS delay_ms
     FROM tasks WHERE id = $1`,
    [id],
  );
  return rows[0]!;
}

async function agentStatus(p: TestPlatform, id: string): Promise<string> {
  const { rows } = await p.db.query<{ status: string }>('SELECT status FROM agents WHERE id = $1', [id]);
  return rows[0]!.status;
}

async function count(p: TestPlatform, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await p.db.query<{ n: number }>(sql, params);
  return Number(rows[0]!.n);
}

/** Creates one task through the API (as a supervisor) and returns its id. */
async function createTask(p: TestPlatform, body: Record<string, unknown>): Promise<string> {
  const res = await p.call('POST', '/api/tasks', { auth: await p.token('supervisor'), body });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Starts a task as `agent` directly through the API (the fenced claim an SDK agent makes). */
async function start(p: TestPlatform, agent: RegisteredTestAgent, id: string, attempt: number) {
  const res = await p.call('POST', `/api/tasks/${id}/start`, { auth: agent.apiKey, body: { attempt } });
  expect(res.status, await res.clone().text()).toBe(200);
}

function reportFailure(
  p: TestPlatform,
  agent: RegisteredTestAgent,
  id: string,
  body: Record<string, unknown>,
) {
  return p.call('POST', `/api/tasks/${id}/report-failure`, { auth: agent.apiKey, body });
}

interface Attempt {
  attempt: number;
  agent_id: string | null;
  outcome: string | null;
  error: string | null;
  details: unknown;
  ended_at: string | null;
}

async function attemptsOf(p: TestPlatform, id: string): Promise<Attempt[]> {
  const res = await p.call('GET', `/api/tasks/${id}/attempts`, { auth: await p.token('viewer') });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Attempt[] }).items;
}

function waitForTask(
  p: TestPlatform,
  id: string,
  what: string,
  test: (t: TaskState) => boolean,
  timeoutMs = 20_000,
) {
  return p.waitFor(
    `task ${what}`,
    async () => {
      const task = await taskState(p, id);
      if (test(task)) return task;
      await sleep(50);
      return undefined;
    },
    timeoutMs,
  );
}

/** A fetch for an SDK agent whose heartbeats never arrive (a silent or dead agent). */
function withoutHeartbeats(p: TestPlatform): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith('/heartbeat')) return new Promise<Response>(() => {});
    return p.app.request(url, init);
  }) as typeof fetch;
}

describe(`failures on ${backend} + ${brokerKind}`, () => {
  it('with max_retries = 2, failures 1 and 2 send the task back to TODO after a backoff and failure 3 quarantines it', async () => {
    // Every retry waits exactly 500 ms: random 0.5 of a 1 s ceiling.
    platform = await createTestPlatform({
      failures: { backoff: { baseMs: 1000, capMs: 1000 }, random: () => 0.5 },
    });
    const p = platform;
    const agent = await p.registerAgent(['flaky']);
    const id = await createTask(p, { title: 'fails thrice', capability: 'flaky', max_retries: 2 });

    for (const attempt of [1, 2, 3]) {
      await start(p, agent, id, attempt);
      expect(await taskState(p, id)).toMatchObject({ status: 'IN_PROGRESS', attempt, agent_id: agent.id });
      expect(await agentStatus(p, agent.id)).toBe('BUSY');

      const res = await reportFailure(p, agent, id, {
        error: `boom ${attempt}`,
        details: { exit_code: attempt },
        attempt,
      });
      expect(res.status).toBe(200);
      const answer = (await res.json()) as {
        task_id: string;
        status: string;
        retry_count: number;
        next_attempt_at: string | null;
      };
      const task = await taskState(p, id);
      expect(task).toMatchObject({
        retry_count: attempt,
        last_error: `boom ${attempt}`,
        agent_id: null,
        lease_expires_at: null,
      });
      expect(await agentStatus(p, agent.id)).toBe('IDLE');
      if (attempt < 3) {
        expect(answer).toEqual({
          task_id: id,
          status: 'TODO',
          retry_count: attempt,
          next_attempt_at: expect.any(String),
        });
        expect(task).toMatchObject({ status: 'TODO', attempt: attempt + 1, delay_ms: 500 });
        expect(new Date(answer.next_attempt_at!).getTime()).toBe(task.next_attempt_at!.getTime());
        // The retry's message waits in the outbox until the backoff is over.
        const { rows } = await p.db.query<{ available_at: Date; attempt: number }>(
          `SELECT available_at, (payload->>'attempt')::int AS attempt FROM outbox ORDER BY id DESC LIMIT 1`,
        );
        expect(rows[0]!.attempt).toBe(attempt + 1);
        expect(rows[0]!.available_at.getTime()).toBe(task.next_attempt_at!.getTime());
        // A caller that skips the backoff is refused, told when the task is due; then it starts.
        const early = await p.call('POST', `/api/tasks/${id}/start`, {
          auth: agent.apiKey,
          body: { attempt: attempt + 1 },
        });
        expect(early.status).toBe(409);
        expect(((await early.json()) as { detail: string }).detail).toContain(
          `not due until ${task.next_attempt_at!.toISOString()} (next_attempt_at)`,
        );
        const batch = await p.call('POST', '/api/tasks/start-batch', {
          auth: agent.apiKey,
          body: { items: [{ task_id: id, attempt: attempt + 1 }] },
        });
        expect(((await batch.json()) as { items: unknown[] }).items).toEqual([
          expect.objectContaining({
            task_id: id,
            status: 409,
            detail: expect.stringContaining('not due until'),
          }),
        ]);
        expect(await taskState(p, id)).toMatchObject({ status: 'TODO', attempt: attempt + 1 });
        await sleep(task.next_attempt_at!.getTime() - Date.now() + 50);
      } else {
        expect(answer).toEqual({ task_id: id, status: 'QUARANTINED', retry_count: 3, next_attempt_at: null });
        expect(task).toMatchObject({ status: 'QUARANTINED', attempt: 3, next_attempt_at: null });
      }
    }

    const attempts = await attemptsOf(p, id);
    expect(attempts).toHaveLength(3);
    attempts.forEach((a, i) => {
      expect(a).toMatchObject({
        attempt: i + 1,
        agent_id: agent.id,
        outcome: 'FAILED',
        error: `boom ${i + 1}`,
        details: { exit_code: i + 1 },
        ended_at: expect.any(String),
      });
    });
    // The first message, two retries and the quarantined task on its way to tasks.dead.
    const { rows: outbox } = await p.db.query<{ topic: string }>('SELECT topic FROM outbox ORDER BY id');
    expect(outbox.map((r) => r.topic)).toEqual([
      'tasks.todo.flaky',
      'tasks.todo.flaky',
      'tasks.todo.flaky',
      'tasks.dead',
    ]);
  });

  it('a retry reaches an agent only once its backoff is over', async () => {
    const delayMs = 399; // floor(0.999 × min(400, 400 × 2^0))
    platform = await createTestPlatform({
      failures: { backoff: { baseMs: 400, capMs: 400 }, random: () => 0.999 },
      relay: { pollIntervalMs: 50 },
    });
    const p = platform;
    const agent = await p.registerAgent(['slow-retry']);
    const seen: { attempt: number; at: number }[] = [];
    let failedAt = 0;
    const timedFetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      const res = await p.app.request(url, init);
      // The failure took effect when the API answered it: that is where the backoff starts.
      if (url.endsWith('/report-failure')) failedAt = Date.now();
      return res;
    }) as typeof fetch;
    await p.startAgent(
      agent,
      (task) => {
        seen.push({ attempt: task.attempt, at: Date.now() });
        if (task.attempt === 1) throw new Error('first attempt fails');
        return { result: 'ok' };
      },
      { capabilities: ['slow-retry'], fetch: timedFetch },
    );
    const id = await createTask(p, { title: 'retried later', capability: 'slow-retry' });
    const done = await waitForTask(p, id, 'DONE', (t) => t.status === 'DONE');
    expect(done).toMatchObject({ attempt: 2, retry_count: 1, last_error: 'first attempt fails' });
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    const { rows } = await p.db.query<{ next_attempt_at: Date; failed_at: Date }>(
      `SELECT t.next_attempt_at, a.ended_at AS failed_at FROM tasks t
       JOIN task_attempts a ON a.task_id = t.id AND a.attempt = 1 WHERE t.id = $1`,
      [id],
    );
    const { next_attempt_at: due, failed_at: failedInDb } = rows[0]!;
    expect(due.getTime() - failedInDb.getTime()).toBe(delayMs);
    const secondAt = seen[1]!.at;
    // Clocks: the database's (PGlite in this process, or PostgreSQL on this host) and ours, 5 ms apart at most.
    expect(secondAt).toBeGreaterThanOrEqual(due.getTime() - 5);
    // The answer to the report can itself arrive late on a busy machine, so only the order is checked against it.
    expect(secondAt).toBeGreaterThan(failedAt);
  });

  it('of two concurrent reports on one attempt exactly one counts; a foreign agent, an unknown task and a task not in progress are refused', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const owner = await p.registerAgent(['race']);
    const stranger = await p.registerAgent(['race'], 'stranger');
    const id = await createTask(p, { title: 'raced', capability: 'race' });
    await start(p, owner, id, 1);

    // A foreign agent's report changes nothing, and is answered 409 as complete and heartbeat are.
    const foreign = await reportFailure(p, stranger, id, { error: 'not mine', attempt: 1 });
    expect(foreign.status).toBe(409);
    expect(foreign.headers.get('content-type')).toContain('application/problem+json');
    expect(await taskState(p, id)).toMatchObject({
      status: 'IN_PROGRESS',
      agent_id: owner.id,
      attempt: 1,
      retry_count: 0,
      last_error: null,
      next_attempt_at: null,
    });
    expect(await attemptsOf(p, id)).toMatchObject([
      { attempt: 1, outcome: null, error: null, ended_at: null },
    ]);
    expect(await agentStatus(p, owner.id)).toBe('BUSY');
    expect(await agentStatus(p, stranger.id)).toBe('IDLE');

    const answers = await Promise.all([
      reportFailure(p, owner, id, { error: 'first report', attempt: 1 }),
      reportFailure(p, owner, id, { error: 'second report', attempt: 1 }),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    const winner = answers.find((r) => r.status === 200)!;
    expect(await winner.json()).toMatchObject({ task_id: id, status: 'TODO', retry_count: 1 });
    const loser = answers.find((r) => r.status === 409)!;
    expect(loser.headers.get('content-type')).toContain('application/problem+json');
    const task = await taskState(p, id);
    expect(task).toMatchObject({ status: 'TODO', retry_count: 1, attempt: 2, agent_id: null });
    expect(['first report', 'second report']).toContain(task.last_error);
    const attempts = await attemptsOf(p, id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, outcome: 'FAILED', error: task.last_error });
    expect(await count(p, 'SELECT count(*) AS n FROM outbox WHERE payload->>$1 = $2', ['task_id', id])).toBe(
      2,
    );

    // Unknown task: 404. A task that is not IN_PROGRESS (TODO now, then DONE): 409.
    const unknown = await reportFailure(p, owner, randomUUID(), { error: 'who?' });
    expect(unknown.status).toBe(404);
    const todo = await reportFailure(p, owner, id, { error: 'too late' });
    expect(todo.status).toBe(409);
    await start(p, owner, id, 2);
    const complete = await p.call('POST', `/api/tasks/${id}/complete`, {
      auth: owner.apiKey,
      body: { attempt: 2 },
    });
    expect(complete.status).toBe(200);
    const afterDone = await reportFailure(p, owner, id, { error: 'after the fact', attempt: 2 });
    expect(afterDone.status).toBe(409);
    expect(await taskState(p, id)).toMatchObject({
      status: 'DONE',
      retry_count: 1,
      last_error: task.last_error,
    });
    expect(await attemptsOf(p, id)).toMatchObject([
      { attempt: 1, outcome: 'FAILED' },
      { attempt: 2, outcome: 'DONE', error: null },
    ]);
  });

  it('retryable: false quarantines at once, and an error over 8 KiB is stored cut at 8 KiB on a character boundary', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const agent = await p.registerAgent(['fatal']);
    const id = await createTask(p, { title: 'fatal', capability: 'fatal', max_retries: 5 });
    await start(p, agent, id, 1);
    // 1 + 2,100 × 4 bytes = 8,401 bytes: the 8,192nd byte falls inside an emoji.
    const error = `x${'😀'.repeat(2100)}`;
    const res = await reportFailure(p, agent, id, { error, retryable: false, attempt: 1 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      task_id: id,
      status: 'QUARANTINED',
      retry_count: 1,
      next_attempt_at: null,
    });
    const stored = `x${'😀'.repeat(2047)}`;
    expect(Buffer.byteLength(stored)).toBe(8189);
    const task = await taskState(p, id);
    expect(task).toMatchObject({
      status: 'QUARANTINED',
      retry_count: 1,
      max_retries: 5,
      next_attempt_at: null,
      agent_id: null,
    });
    expect(task.last_error).toBe(stored);
    expect(task.last_error).not.toContain('\uFFFD');
    const [attempt] = await attemptsOf(p, id);
    expect(attempt!.outcome).toBe('FAILED');
    expect(attempt!.error).toBe(stored);
    expect(await agentStatus(p, agent.id)).toBe('IDLE');
  });

  it('an agent killed mid-task loses the task when its lease lapses; another agent retries it to DONE', async () => {
    platform = await createTestPlatform({ leaseSeconds: 1, reaperIntervalMs: 100 });
    const p = platform;
    const killed = await p.registerAgent(['lease'], 'killed');
    const rescuer = await p.registerAgent(['lease'], 'rescuer');
    let release!: () => void;
    const never = new Promise<void>((resolve) => {
      release = resolve;
    });
    const killedRuns: number[] = [];
    const killedAgent = await p.startAgent(
      killed,
      async (task) => {
        killedRuns.push(task.attempt);
        await never;
      },
      // A long grace: stopping must not report the failure (a killed agent cannot).
      { capabilities: ['lease'], fetch: withoutHeartbeats(p), shutdownGraceMs: 60_000 },
    );
    const id = await createTask(p, { title: 'survives its agent', capability: 'lease' });
    await p.waitFor('the first agent to start', async () => killedRuns.length === 1);
    // Killed: no more consuming, no more heartbeats.
    const stopped = killedAgent.stop();
    const retried = await waitForTask(p, id, 'back to TODO', (t) => t.attempt === 2);
    expect(retried).toMatchObject({ retry_count: 1, last_error: 'lease expired', agent_id: null });
    expect(await agentStatus(p, killed.id)).toBe('IDLE');

    const rescued: number[] = [];
    await p.startAgent(
      rescuer,
      (task) => {
        rescued.push(task.attempt);
        return { result: 'rescued' };
      },
      { capabilities: ['lease'] },
    );
    const done = await waitForTask(p, id, 'DONE', (t) => t.status === 'DONE');
    expect(done).toMatchObject({
      attempt: 2,
      retry_count: 1,
      last_error: 'lease expired',
      agent_id: rescuer.id,
    });
    expect(rescued).toEqual([2]);
    expect(killedRuns).toEqual([1]);
    expect(await attemptsOf(p, id)).toMatchObject([
      { attempt: 1, agent_id: killed.id, outcome: 'LEASE_EXPIRED', error: 'lease expired' },
      { attempt: 2, agent_id: rescuer.id, outcome: 'DONE', error: null },
    ]);
    release();
    await stopped;
  });

  it('a lapsed lease is retried within 3 s of the reap, however long the retry backoff and the relay poll', async () => {
    // A 10 s backoff and a 30 s relay poll: only an immediate, NOTIFY-woken republish fits in 3 s.
    platform = await createTestPlatform({
      leaseSeconds: 1,
      reaperIntervalMs: 100,
      failures: { backoff: { baseMs: 10_000, capMs: 10_000 }, random: () => 0.99 },
      relay: { pollIntervalMs: 30_000 },
    });
    const p = platform;
    const [lost, rescuer] = await Promise.all([
      p.registerAgent(['lapse'], 'lost'),
      p.registerAgent(['lapse'], 'rescuer'),
    ]);
    let release!: () => void;
    const never = new Promise<void>((resolve) => {
      release = resolve;
    });
    const lostRuns: number[] = [];
    const lostAgent = await p.startAgent(
      lost,
      async (task) => {
        lostRuns.push(task.attempt);
        await never;
      },
      { capabilities: ['lapse'], fetch: withoutHeartbeats(p), shutdownGraceMs: 60_000 },
    );
    const id = await createTask(p, { title: 'lapses once', capability: 'lapse' });
    await p.waitFor('the first agent to start', async () => lostRuns.length === 1);
    const stopped = lostAgent.stop();
    await p.startAgent(rescuer, () => ({ result: 'rescued' }), { capabilities: ['lapse'] });
    await waitForTask(p, id, 'DONE', (t) => t.status === 'DONE', 15_000);
    const { rows } = await p.db.query<{ reaped_to_retry_ms: number }>(
      `SELECT extract(epoch FROM b.started_at - a.ended_at)::float8 * 1000 AS reaped_to_retry_ms
       FROM task_attempts a JOIN task_attempts b ON b.task_id = a.task_id AND b.attempt = 2
       WHERE a.task_id = $1 AND a.attempt = 1 AND a.outcome = 'LEASE_EXPIRED'`,
      [id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.reaped_to_retry_ms).toBeLessThan(3000);
    // The lapse still counts as a retry, so a task that keeps losing its agents ends quarantined.
    expect(await taskState(p, id)).toMatchObject({ attempt: 2, retry_count: 1, last_error: 'lease expired' });
    release();
    await stopped;
  });

  it('a lapsed lease is left alone while agents could not heartbeat: after the database started, and after the reaper starts', async () => {
    // The platform's own reaper stays quiet (an hour between ticks); the test drives its own.
    platform = await createTestPlatform({ leaseSeconds: 1, reaperIntervalMs: 3_600_000 });
    const p = platform;
    const agent = await p.registerAgent(['grace'], 'silent');
    const id = await createTask(p, { title: 'held through an outage', capability: 'grace' });
    await start(p, agent, id, 1);
    await sleep(1200);
    const failures = { backoff: { baseMs: 10, capMs: 10 } };

    // A database that started less than ten years ago is inside the grace: nothing is reaped.
    expect(await reapExpiredLeases(p.db, failures, { graceSeconds: 315_360_000 })).toEqual([]);
    expect((await taskState(p, id)).status).toBe('IN_PROGRESS');

    const reaper = startLeaseReaper({ db: p.db, logger: silent, intervalMs: 50, failures, graceMs: 1500 });
    try {
      await sleep(1000);
      expect((await taskState(p, id)).status, 'reaped inside the grace').toBe('IN_PROGRESS');
      // A heartbeat inside the grace keeps the task, however long ago the lease lapsed.
      const beat = await p.call('POST', `/api/tasks/${id}/heartbeat`, { auth: agent.apiKey });
      expect(beat.status).toBe(200);
      await p.waitFor('the lease to lapse again and be reaped', async () => {
        const state = await taskState(p, id);
        return state.attempt === 2 && state.last_error === 'lease expired';
      });
    } finally {
      reaper.stop();
    }
  });

  it('a task whose every attempt leases out is quarantined after max_retries + 1 attempts, all LEASE_EXPIRED', async () => {
    platform = await createTestPlatform({ leaseSeconds: 1, reaperIntervalMs: 100 });
    const p = platform;
    let release!: () => void;
    const never = new Promise<void>((resolve) => {
      release = resolve;
    });
    const runs: { agent: string; attempt: number }[] = [];
    const agents = await Promise.all([0, 1].map((i) => p.registerAgent(['hang'], `hang-${i}`)));
    for (const agent of agents) {
      await p.startAgent(
        agent,
        async (task) => {
          runs.push({ agent: agent.id, attempt: task.attempt });
          await never;
        },
        { capabilities: ['hang'], concurrency: 3, fetch: withoutHeartbeats(p), shutdownGraceMs: 100 },
      );
    }
    const id = await createTask(p, { title: 'kills every agent', capability: 'hang', max_retries: 2 });
    const quarantined = await waitForTask(p, id, 'QUARANTINED', (t) => t.status === 'QUARANTINED', 30_000);
    expect(quarantined).toMatchObject({
      attempt: 3,
      retry_count: 3,
      last_error: 'lease expired',
      agent_id: null,
      next_attempt_at: null,
    });
    const attempts = await attemptsOf(p, id);
    expect(attempts.map((a) => [a.attempt, a.outcome, a.error])).toEqual([
      [1, 'LEASE_EXPIRED', 'lease expired'],
      [2, 'LEASE_EXPIRED', 'lease expired'],
      [3, 'LEASE_EXPIRED', 'lease expired'],
    ]);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
    // Quarantined means no fourth message: 3 attempts queued, then the dead letter.
    const { rows: outbox } = await p.db.query<{ topic: string }>('SELECT topic FROM outbox ORDER BY id');
    expect(outbox.map((r) => r.topic)).toEqual([
      'tasks.todo.hang',
      'tasks.todo.hang',
      'tasks.todo.hang',
      'tasks.dead',
    ]);
    await sleep(300);
    expect(runs).toHaveLength(3);
    await p.waitFor('both agents IDLE', async () =>
      (await count(p, `SELECT count(*) AS n FROM agents WHERE status = 'IDLE'`)) === 2 ? true : undefined,
    );
    release();
  });

  it('a poison message that no agent ever starts is dead-lettered at the delivery limit and its task quarantined, without looping', async () => {
    const deliveryLimit = 2;
    platform = await createTestPlatform({ deliveryLimit });
    const p = platform;
    const queue = await p.broker.ensureTaskQueue('poison');
    const deliveries: { count: number; redelivered: boolean }[] = [];
    // Every consumer that gets it dies (gives it back) before calling start.
    const consumer = await p.broker.consume(queue, { prefetch: 1 }, (delivery) => {
      deliveries.push({ count: delivery.deliveryCount, redelivered: delivery.redelivered });
      delivery.nack({ requeue: true });
    });
    try {
      const id = await createTask(p, { title: 'poison', capability: 'poison' });
      const task = await waitForTask(p, id, 'QUARANTINED', (t) => t.status === 'QUARANTINED');
      expect(task.last_error).toMatch(/delivery limit/);
      expect(task).toMatchObject({ attempt: 1, retry_count: 1, agent_id: null });
      expect(deliveries).toHaveLength(deliveryLimit + 1);
      expect(deliveries[0]!.redelivered).toBe(false);
      expect(deliveries.slice(1).every((d) => d.redelivered)).toBe(true);
      // Not looping: nothing more arrives, nothing is republished, nobody ever started it.
      await sleep(500);
      expect(deliveries).toHaveLength(deliveryLimit + 1);
      expect(await taskState(p, id)).toMatchObject({ status: 'QUARANTINED', attempt: 1 });
      expect(await count(p, 'SELECT count(*) AS n FROM outbox')).toBe(1);
      expect(await count(p, 'SELECT count(*) AS n FROM task_attempts')).toBe(0);
    } finally {
      await consumer.cancel();
    }
  });

  it('1,000 tasks on flaky agents (30 % of calls throw, seeded) each end DONE or QUARANTINED with a history that adds up', async () => {
    platform = await createTestPlatform({ failures: { backoff: { baseMs: 5, capMs: 20 } } });
    const p = platform;
    const maxRetries = 3;
    // Whether call `attempt` of task `n` throws, from a seeded PRNG keyed by both, so which agent
    // runs it and in what order does not change the outcome.
    const throws = (n: number, attempt: number) => mulberry32(0x5eed + n * 7919 + attempt * 104_729)() < 0.3;
    const expected = Array.from({ length: 1000 }, (_, n) => {
      let attempt = 1;
      while (attempt <= maxRetries + 1 && throws(n, attempt)) attempt++;
      return attempt <= maxRetries + 1
        ? { status: 'DONE', failures: attempt - 1 }
        : { status: 'QUARANTINED', failures: maxRetries + 1 };
    });
    const quarantinedCount = expected.filter((e) => e.status === 'QUARANTINED').length;
    const failureCount = expected.reduce((sum, e) => sum + e.failures, 0);
    // The seed gives a mix of both endings (checked here, so a changed seed cannot hollow the test out).
    expect(quarantinedCount).toBeGreaterThan(0);
    expect(failureCount).toBeGreaterThan(300);

    const calls = { total: 0, thrown: 0 };
    const agents = await Promise.all([0, 1, 2].map((i) => p.registerAgent(['flaky'], `flaky-${i}`)));
    for (const agent of agents) {
      await p.startAgent(
        agent,
        (task) => {
          calls.total += 1;
          const n = (task.payload as { n: number }).n;
          if (throws(n, task.attempt)) {
            calls.thrown += 1;
            throw new Error(`flaky failure of task ${n} attempt ${task.attempt}`);
          }
          return { result: { n } };
        },
        { capabilities: ['flaky'], concurrency: 8 },
      );
    }
    const ids = await p.createTasks(1000, (n) => ({
      capability: 'flaky',
      payload: { n },
      max_retries: maxRetries,
    }));
    await p.waitFor(
      'every task to end',
      async () => {
        const ended = await count(
          p,
          `SELECT count(*) AS n FROM tasks WHERE status IN ('DONE', 'QUARANTINED')`,
        );
        if (ended < 1000) await sleep(200);
        return ended === 1000;
      },
      120_000,
    );

    expect(await count(p, 'SELECT count(*) AS n FROM tasks')).toBe(1000);
    const { rows } = await p.db.query<{
      id: string;
      n: number;
      status: string;
      retry_count: number;
      attempt: number;
      failed: number;
      done: number;
      open: number;
      attempts: number;
    }>(
      `SELECT t.id, (t.payload->>'n')::int AS n, t.status, t.retry_count, t.attempt,
              count(a.*) FILTER (WHERE a.outcome = 'FAILED')::int AS failed,
              count(a.*) FILTER (WHERE a.outcome = 'DONE')::int AS done,
              count(a.*) FILTER (WHERE a.outcome IS NULL OR a.outcome NOT IN ('FAILED', 'DONE'))::int AS open,
              count(a.*)::int AS attempts
       FROM tasks t LEFT JOIN task_attempts a ON a.task_id = t.id
       GROUP BY t.id`,
    );
    expect(rows).toHaveLength(1000);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(ids));
    for (const row of rows) {
      const want = expected[row.n]!;
      expect({ n: row.n, status: row.status, failed: row.failed }).toEqual({
        n: row.n,
        status: want.status,
        failed: want.failures,
      });
      expect(row.retry_count).toBe(row.failed);
      expect(row.open).toBe(0);
      expect(row.attempts).toBe(row.attempt);
      if (row.status === 'DONE') {
        expect(row.done).toBe(1);
        expect(row.attempts).toBe(row.failed + 1);
      } else {
        expect(row.done).toBe(0);
        expect(row.failed).toBe(maxRetries + 1);
      }
    }
    expect(rows.filter((r) => r.status === 'QUARANTINED')).toHaveLength(quarantinedCount);
    // The callbacks ran once per attempt, and threw once per FAILED attempt.
    expect(calls.total).toBe(await count(p, 'SELECT count(*) AS n FROM task_attempts'));
    expect(calls.thrown).toBe(failureCount);
    expect(await count(p, `SELECT count(*) AS n FROM task_attempts WHERE outcome = 'FAILED'`)).toBe(
      failureCount,
    );
    // Every DONE attempt is its task's last, and every failure's error came from the agent.
    expect(
      await count(
        p,
        `SELECT count(*) AS n FROM task_attempts a JOIN tasks t ON t.id = a.task_id
         WHERE a.outcome = 'DONE' AND a.attempt <> t.attempt`,
      ),
    ).toBe(0);
    expect(
      await count(
        p,
        `SELECT count(*) AS n FROM task_attempts WHERE outcome = 'FAILED' AND error NOT LIKE 'flaky failure of task %'`,
      ),
    ).toBe(0);
    await p.waitFor('agents IDLE', async () =>
      (await count(p, `SELECT count(*) AS n FROM agents WHERE status = 'IDLE'`)) === 3 ? true : undefined,
    );
  }, 150_000);

  it('a supervisor requeues a quarantined task with a new payload: counters reset, history kept, then DONE', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const agent = await p.registerAgent(['requeue']);
    const id = await createTask(p, { title: 'needs a fix', capability: 'requeue', payload: { version: 1 } });
    await start(p, agent, id, 1);
    expect(
      (await reportFailure(p, agent, id, { error: 'bad input', retryable: false, attempt: 1 })).status,
    ).toBe(200);
    expect(await taskState(p, id)).toMatchObject({ status: 'QUARANTINED', retry_count: 1 });

    const viewer = await p.call('POST', `/api/tasks/${id}/requeue`, {
      auth: await p.token('viewer'),
      body: {},
    });
    expect(viewer.status).toBe(403);
    expect(await taskState(p, id)).toMatchObject({ status: 'QUARANTINED', attempt: 1 });

    const supervisor = await p.token('supervisor');
    const res = await p.call('POST', `/api/tasks/${id}/requeue`, {
      auth: supervisor,
      body: { payload: { version: 2 } },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      id,
      status: 'TODO',
      retry_count: 0,
      last_error: null,
      next_attempt_at: null,
      agent_id: null,
      attempt: 2,
      payload: { version: 2 },
    });
    // Requeued twice? Only a quarantined task can be.
    const again = await p.call('POST', `/api/tasks/${id}/requeue`, { auth: supervisor, body: {} });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toContain('application/problem+json');

    const seen: { attempt: number; payload: unknown }[] = [];
    await p.startAgent(
      agent,
      (task) => {
        seen.push({ attempt: task.attempt, payload: task.payload });
        return { result: 'fixed' };
      },
      { capabilities: ['requeue'] },
    );
    const done = await waitForTask(p, id, 'DONE', (t) => t.status === 'DONE');
    expect(done).toMatchObject({ attempt: 2, retry_count: 0, last_error: null, payload: { version: 2 } });
    // The stale attempt-1 message was refused at the fence; only attempt 2 ran.
    expect(seen).toEqual([{ attempt: 2, payload: { version: 2 } }]);
    expect(await attemptsOf(p, id)).toMatchObject([
      { attempt: 1, outcome: 'FAILED', error: 'bad input' },
      { attempt: 2, outcome: 'DONE', error: null },
    ]);
    const doneAgain = await p.call('POST', `/api/tasks/${id}/requeue`, { auth: supervisor, body: {} });
    expect(doneAgain.status).toBe(409);
    const unknown = await p.call('POST', `/api/tasks/${randomUUID()}/requeue`, {
      auth: supervisor,
      body: {},
    });
    expect(unknown.status).toBe(404);
  });

  it('the SDK reports a NonRetryableError as final, a thrown Error with its message and trimmed stack, and a failed outcome as given', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const agent = await p.registerAgent(['sdk']);
    const thrownStacks = new Map<string, string>();
    await p.startAgent(
      agent,
      (task) => {
        const mode = (task.payload as { mode: string }).mode;
        if (mode === 'non-retryable') throw new NonRetryableError('the input can never work');
        if (mode === 'throw' && task.attempt === 1) {
          // Three lines of message and a deep stack: more than the twelve lines the SDK keeps.
          const deep = (depth: number): never => {
            if (depth > 0) return deep(depth - 1);
            const error = new Error('disk full\nwhile writing /tmp/out\nretry later');
            thrownStacks.set(task.task_id, error.stack!);
            throw error;
          };
          deep(20);
        }
        if (mode === 'failed-final') {
          return { status: 'failed', error: 'quota exhausted', retryable: false, details: { quota: 0 } };
        }
        if (mode === 'failed-retry' && task.attempt === 1) {
          return { status: 'failed', error: 'try again', retryable: true, details: { hint: 'transient' } };
        }
        return { result: { mode } };
      },
      { capabilities: ['sdk'], concurrency: 4 },
    );
    const ids = await p.createTasks(4, (i) => ({
      capability: 'sdk',
      payload: { mode: ['non-retryable', 'throw', 'failed-final', 'failed-retry'][i] },
    }));
    const [nonRetryable, thrown, failedFinal, failedRetry] = ids as [string, string, string, string];
    await p.waitFor(
      'all four tasks to end',
      async () =>
        (await count(p, `SELECT count(*) AS n FROM tasks WHERE status IN ('DONE', 'QUARANTINED')`)) === 4 ||
        undefined,
    );

    expect(await taskState(p, nonRetryable)).toMatchObject({
      status: 'QUARANTINED',
      retry_count: 1,
      max_retries: 3,
      last_error: 'the input can never work',
    });
    expect(await attemptsOf(p, nonRetryable)).toMatchObject([
      {
        attempt: 1,
        outcome: 'FAILED',
        error: 'the input can never work',
        details: { name: 'NonRetryableError' },
      },
    ]);

    expect(await taskState(p, thrown)).toMatchObject({
      status: 'DONE',
      retry_count: 1,
      last_error: 'disk full\nwhile writing /tmp/out\nretry later',
    });
    const thrownAttempts = await attemptsOf(p, thrown);
    expect(thrownAttempts).toMatchObject([
      { attempt: 1, outcome: 'FAILED', error: 'disk full\nwhile writing /tmp/out\nretry later' },
      { attempt: 2, outcome: 'DONE' },
    ]);
    const details = thrownAttempts[0]!.details as { name: string; stack: string };
    const fullStack = thrownStacks.get(thrown)!;
    expect(details.name).toBe('Error');
    expect(fullStack.split('\n').length).toBeGreaterThan(12);
    expect(details.stack).toBe(fullStack.split('\n').slice(0, 12).join('\n'));
    expect(details.stack).toMatch(/^Error: disk full/);
    expect(details.stack).toContain('failures.test.ts');

    expect(await taskState(p, failedFinal)).toMatchObject({
      status: 'QUARANTINED',
      retry_count: 1,
      last_error: 'quota exhausted',
    });
    expect(await attemptsOf(p, failedFinal)).toMatchObject([
      { attempt: 1, outcome: 'FAILED', error: 'quota exhausted', details: { quota: 0 } },
    ]);

    expect(await taskState(p, failedRetry)).toMatchObject({
      status: 'DONE',
      retry_count: 1,
      last_error: 'try again',
    });
    expect(await attemptsOf(p, failedRetry)).toMatchObject([
      { attempt: 1, outcome: 'FAILED', error: 'try again', details: { hint: 'transient' } },
      { attempt: 2, outcome: 'DONE' },
    ]);
  });
});
