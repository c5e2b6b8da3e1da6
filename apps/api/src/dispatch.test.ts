import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One number from SQL (a count, a sum). */
async function count(p: TestPlatform, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await p.db.query<{ n: number }>(sql, params);
  return Number(rows[0]!.n);
}

/** Waits (polling gently, so the database keeps serving the agents) until `n` tasks are in `status`. */
function waitForStatus(p: TestPlatform, status: string, n: number, timeoutMs = 60_000): Promise<true> {
  return p.waitFor(
    `${n} tasks ${status}`,
    async () => {
      const reached = (await count(p, 'SELECT count(*) AS n FROM tasks WHERE status = $1', [status])) >= n;
      if (!reached) await sleep(100);
      return reached;
    },
    timeoutMs,
  );
}

describe(`dispatch on ${backend} + ${brokerKind}`, () => {
  it('a created task reaches an agent through the outbox and the broker, and ends DONE with its result and cost', async () => {
    platform = await createTestPlatform();
    const agent = await platform.registerAgent(['echo']);
    await platform.startAgent(agent, (task) => ({ result: { echoed: task.payload }, cost: 0.25 }), {
      capabilities: ['echo'],
    });
    const [id] = await platform.createTasks(1, { capability: 'echo', payload: { hello: 'world' } });
    const viewer = await platform.token('viewer');
    const task = await platform.waitFor('task DONE', async () => {
      const body = (await (await platform!.call('GET', `/api/tasks/${id}`, { auth: viewer })).json()) as {
        status: string;
      };
      return body.status === 'DONE' ? body : undefined;
    });
    expect(task).toMatchObject({
      status: 'DONE',
      result: { echoed: { hello: 'world' } },
      cost: '0.25',
      attempt: 1,
    });
    const attempts = await (await platform.call('GET', `/api/tasks/${id}/attempts`, { auth: viewer })).json();
    expect(attempts.items).toMatchObject([{ attempt: 1, agent_id: agent.id, outcome: 'DONE' }]);
    const { rows } = await platform.db.query<{ status: string }>('SELECT status FROM agents WHERE id = $1', [
      agent.id,
    ]);
    expect(rows[0]!.status).toBe('IDLE');
  });

  it('2,000 tasks over 4 agents (concurrency 8 each) are each done exactly once, and every agent does some', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const agents = await Promise.all([0, 1, 2, 3].map((i) => p.registerAgent(['bulk'], `bulk-${i}`)));
    const runs = new Map<string, number>();
    const byAgent = new Map<string, number>();
    for (const agent of agents) {
      byAgent.set(agent.id, 0);
      await p.startAgent(
        agent,
        (task) => {
          runs.set(task.task_id, (runs.get(task.task_id) ?? 0) + 1);
          byAgent.set(agent.id, byAgent.get(agent.id)! + 1);
          return { result: { n: (task.payload as { n: number }).n, by: agent.id } };
        },
        { capabilities: ['bulk'], concurrency: 8 },
      );
    }
    const ids = await p.createTasks(2000, (n) => ({ capability: 'bulk', payload: { n } }));
    expect(new Set(ids).size).toBe(2000);
    await waitForStatus(p, 'DONE', 2000, 100_000);

    expect(await count(p, 'SELECT count(*) AS n FROM tasks')).toBe(2000);
    expect(await count(p, `SELECT count(*) AS n FROM tasks WHERE status = 'DONE'`)).toBe(2000);
    expect(await count(p, 'SELECT count(*) AS n FROM tasks WHERE attempt <> 1 OR retry_count <> 0')).toBe(0);
    // The stored result is the one the callback computed for that very task.
    expect(
      await count(
        p,
        `SELECT count(*) AS n FROM tasks
         WHERE (result->>'n')::int = (payload->>'n')::int AND result->>'by' = agent_id::text`,
      ),
    ).toBe(2000);
    // Exactly one attempt per task, and it is the DONE one: no task was started twice.
    expect(await count(p, 'SELECT count(*) AS n FROM task_attempts')).toBe(2000);
    expect(await count(p, 'SELECT count(DISTINCT task_id) AS n FROM task_attempts')).toBe(2000);
    expect(
      await count(
        p,
        `SELECT count(*) AS n FROM task_attempts WHERE outcome = 'DONE' AND attempt = 1 AND ended_at IS NOT NULL`,
      ),
    ).toBe(2000);
    expect(
      await count(
        p,
        'SELECT count(*) AS n FROM (SELECT task_id FROM task_attempts GROUP BY task_id HAVING count(*) > 1) d',
      ),
    ).toBe(0);
    // The callbacks agree: 2,000 runs, one per task.
    expect(runs.size).toBe(2000);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    // Every agent did some, and the database credits each agent with what its callback ran.
    const { rows: perAgent } = await p.db.query<{ agent_id: string; n: number }>(
      `SELECT agent_id, count(*)::int AS n FROM task_attempts GROUP BY agent_id`,
    );
    expect(perAgent).toHaveLength(4);
    for (const { agent_id, n } of perAgent) {
      expect(n).toBeGreaterThan(0);
      expect(byAgent.get(agent_id)).toBe(n);
    }
    expect(await count(p, 'SELECT count(*) AS n FROM outbox')).toBe(2000);
    expect(await count(p, 'SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL')).toBe(0);
    await p.waitFor('agents IDLE', async () =>
      (await count(p, `SELECT count(*) AS n FROM agents WHERE status = 'IDLE'`)) === 4 ? true : undefined,
    );
  }, 120_000);

  it('a message whose agent dies before start is redelivered to another agent, and the task ends DONE', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const doomed = await p.registerAgent(['work'], 'doomed');
    const survivor = await p.registerAgent(['work'], 'survivor');
    const startsSeen: string[] = [];
    let doomedRan = 0;
    // The doomed agent's call to start (a batch of one) never answers: it dies holding the message unacked.
    const hangingStart = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith('/start-batch')) {
        startsSeen.push(String(init?.body));
        return new Promise<Response>(() => {});
      }
      return p.app.request(url, init);
    }) as typeof fetch;
    const doomedAgent = await p.startAgent(
      doomed,
      () => {
        doomedRan += 1;
      },
      { capabilities: ['work'], fetch: hangingStart },
    );
    const [id] = await p.createTasks(1, { capability: 'work', payload: { x: 1 } });
    await p.waitFor('the doomed agent to receive the message', async () => startsSeen.length === 1);
    expect(JSON.parse(startsSeen[0]!)).toMatchObject({ items: [{ task_id: id }] });
    // It dies: its consumers go away with the message unacked.
    await doomedAgent.stop();

    const ran: string[] = [];
    await p.startAgent(
      survivor,
      (task) => {
        ran.push(task.task_id);
        return { result: { by: 'survivor' } };
      },
      { capabilities: ['work'] },
    );
    await waitForStatus(p, 'DONE', 1);
    expect(ran).toEqual([id]);
    expect(doomedRan).toBe(0);
    expect(startsSeen).toHaveLength(1);
    const { rows: tasks } = await p.db.query<{
      status: string;
      agent_id: string;
      attempt: number;
      result: unknown;
    }>('SELECT status, agent_id, attempt, result FROM tasks');
    expect(tasks).toEqual([
      { status: 'DONE', agent_id: survivor.id, attempt: 1, result: { by: 'survivor' } },
    ]);
    const { rows: attempts } = await p.db.query('SELECT attempt, agent_id, outcome FROM task_attempts');
    expect(attempts).toEqual([{ attempt: 1, agent_id: survivor.id, outcome: 'DONE' }]);
    expect(await count(p, 'SELECT count(*) AS n FROM outbox')).toBe(1);
  });

  it('a task whose agent dies after start is reaped when its lease lapses, done by another agent as attempt 2, and the late complete of the first is refused', async () => {
    platform = await createTestPlatform({ leaseSeconds: 1, reaperIntervalMs: 100 });
    const p = platform;
    const first = await p.registerAgent(['work'], 'first');
    const second = await p.registerAgent(['work'], 'second');
    let releaseFirst!: () => void;
    const firstMayFinish = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    const firstCompletes: number[] = [];
    // The first agent goes silent after start: its heartbeats never arrive.
    const silentAfterStart = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith('/heartbeat')) return new Promise<Response>(() => {});
      const res = await p.app.request(url, init);
      if (url.endsWith('/complete')) firstCompletes.push(res.status);
      return res;
    }) as typeof fetch;
    const firstRuns: number[] = [];
    const firstAgent = await p.startAgent(
      first,
      async (task) => {
        firstRuns.push(task.attempt);
        await firstMayFinish;
        return { result: { by: 'first' } };
      },
      // The per-task path (batchReports: false), so the late complete is one call with its own 409.
      { capabilities: ['work'], fetch: silentAfterStart, shutdownGraceMs: 30_000, batchReports: false },
    );
    const [id] = await p.createTasks(1, { capability: 'work' });
    await p.waitFor('the first agent to start the task', async () => firstRuns.length === 1);
    expect(
      await count(p, `SELECT count(*) AS n FROM tasks WHERE status = 'IN_PROGRESS' AND agent_id = $1`, [
        first.id,
      ]),
    ).toBe(1);
    // It dies: it stops consuming (and, silent, never heartbeats again).
    const firstStopped = firstAgent.stop();

    const reaped = await p.waitFor('the lease to lapse and the task to be retried', async () => {
      const { rows } = await p.db.query<{
        status: string;
        attempt: number;
        last_error: string | null;
        retry_count: number;
      }>('SELECT status, attempt, last_error, retry_count FROM tasks WHERE id = $1', [id]);
      return rows[0]!.attempt === 2 ? rows[0] : undefined;
    });
    expect(reaped).toMatchObject({ attempt: 2, last_error: 'lease expired', retry_count: 1 });

    const secondRuns: number[] = [];
    await p.startAgent(
      second,
      (task) => {
        secondRuns.push(task.attempt);
        return { result: { by: 'second' } };
      },
      { capabilities: ['work'] },
    );
    await waitForStatus(p, 'DONE', 1);
    expect(secondRuns).toEqual([2]);

    // The first agent comes back and reports on attempt 1: refused, the task keeps the second's result.
    const late = await p.call('POST', `/api/tasks/${id}/complete`, {
      auth: first.apiKey,
      body: { result: { by: 'first' }, attempt: 1 },
    });
    expect(late.status).toBe(409);
    expect(late.headers.get('content-type')).toContain('application/problem+json');
    releaseFirst();
    await firstStopped;
    expect(firstCompletes).toEqual([409]);
    expect(firstRuns).toEqual([1]);

    const { rows: tasks } = await p.db.query(
      'SELECT status, agent_id, attempt, retry_count, result FROM tasks',
    );
    expect(tasks).toEqual([
      { status: 'DONE', agent_id: second.id, attempt: 2, retry_count: 1, result: { by: 'second' } },
    ]);
    const { rows: attempts } = await p.db.query(
      'SELECT attempt, agent_id, outcome, error FROM task_attempts ORDER BY attempt',
    );
    expect(attempts).toEqual([
      { attempt: 1, agent_id: first.id, outcome: 'LEASE_EXPIRED', error: 'lease expired' },
      { attempt: 2, agent_id: second.id, outcome: 'DONE', error: null },
    ]);
    // One message per attempt.
    expect(await count(p, 'SELECT count(*) AS n FROM outbox')).toBe(2);
  });

  it('a relay killed between publish and mark-sent publishes the batch again, and the fence drops every duplicate', async () => {
    let publishes = 0;
    platform = await createTestPlatform({
      relay: {
        afterPublish: () => {
          publishes += 1;
          if (publishes === 1) throw new Error('relay killed before it marked the batch sent');
        },
      },
    });
    const p = platform;
    const agents = await Promise.all([0, 1].map((i) => p.registerAgent(['work'], `relay-${i}`)));
    const starts = new Map<number, number>();
    const runs = new Map<string, number>();
    for (const agent of agents) {
      const countingStarts = (async (input: string | URL | Request, init?: RequestInit) => {
        const url = String(input instanceof Request ? input.url : input);
        const res = await p.app.request(url, init);
        if (url.endsWith('/start')) starts.set(res.status, (starts.get(res.status) ?? 0) + 1);
        return res;
      }) as typeof fetch;
      await p.startAgent(
        agent,
        (task) => {
          runs.set(task.task_id, (runs.get(task.task_id) ?? 0) + 1);
        },
        // The per-task path (batchReports: false): each start is one call answered 200 or 409.
        { capabilities: ['work'], concurrency: 4, fetch: countingStarts, batchReports: false },
      );
    }
    const n = 50;
    await p.createTasks(n, { capability: 'work' });
    await waitForStatus(p, 'DONE', n);
    // Every message arrived twice; the second start of each task lost at the fence.
    await p.waitFor('every duplicate to be refused', async () => (starts.get(409) ?? 0) >= n);
    expect(Object.fromEntries(starts)).toEqual({ 200: n, 409: n });
    expect(publishes).toBeGreaterThanOrEqual(2);
    expect(runs.size).toBe(n);
    expect([...runs.values()].every((r) => r === 1)).toBe(true);
    expect(await count(p, `SELECT count(*) AS n FROM tasks WHERE status = 'DONE' AND attempt = 1`)).toBe(n);
    expect(await count(p, 'SELECT count(*) AS n FROM task_attempts')).toBe(n);
    expect(await count(p, `SELECT count(*) AS n FROM task_attempts WHERE outcome = 'DONE'`)).toBe(n);
    expect(await count(p, 'SELECT count(*) AS n FROM outbox')).toBe(n);
    expect(await count(p, 'SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL')).toBe(0);
  });

  describe.runIf(brokerKind === 'rabbitmq')('on RabbitMQ', () => {
    it('relay and agents reconnect by themselves when the broker closes their connections mid-run, and all 1,000 tasks end DONE', async () => {
      platform = await createTestPlatform();
      const p = platform;
      const management = p.management!;
      const agents = await Promise.all([0, 1].map((i) => p.registerAgent(['work'], `cut-${i}`)));
      const agentUsers = new Set(agents.map((a) => `agent-${a.id}`));
      const ours = (c: { user: string; connectionName: string | undefined }) =>
        agentUsers.has(c.user) || c.connectionName?.startsWith(`devart-test-${p.prefix}`) === true;
      const runs = new Map<string, number>();
      for (const agent of agents) {
        await p.startAgent(
          agent,
          async (task) => {
            runs.set(task.task_id, (runs.get(task.task_id) ?? 0) + 1);
            await sleep(2);
          },
          { capabilities: ['work'], concurrency: 8 },
        );
      }
      // The platform's publishing and consuming connections and one per agent.
      await p.waitFor(
        'the connections to be listed',
        async () => (await management.listConnections()).filter(ours).length >= 4,
      );
      await p.createTasks(1000, { capability: 'work' });
      await waitForStatus(p, 'DONE', 100);
      const cut = await management.closeConnections(ours, 'test: cut the connections');
      expect(cut).toBeGreaterThanOrEqual(4);
      await waitForStatus(p, 'DONE', 1000, 90_000);
      // They came back by themselves: both agents' users and the platform are connected again.
      await p.waitFor('the connections to come back', async () => {
        const open = (await management.listConnections()).filter(ours);
        return [...agentUsers].every((u) => open.some((c) => c.user === u)) && open.length >= 4;
      });
      expect(await count(p, `SELECT count(*) AS n FROM tasks WHERE status = 'DONE'`)).toBe(1000);
      expect(await count(p, 'SELECT count(*) AS n FROM tasks')).toBe(1000);
      expect(await count(p, 'SELECT count(*) AS n FROM task_attempts')).toBe(1000);
      expect(await count(p, `SELECT count(*) AS n FROM task_attempts WHERE outcome = 'DONE'`)).toBe(1000);
      expect(runs.size).toBe(1000);
      expect([...runs.values()].every((r) => r === 1)).toBe(true);
      expect(await count(p, 'SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL')).toBe(0);
    }, 120_000);
  });

  it('a revoked agent can no longer call the API, nor consume on RabbitMQ, and the work goes to the others', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const revoked = await p.registerAgent(['work'], 'revoked');
    const live = await p.registerAgent(['work'], 'live');
    const revokedRan: string[] = [];
    const revokedStarts: number[] = [];
    const recordingStarts = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      const res = await p.app.request(url, init);
      if (url.endsWith('/start-batch')) revokedStarts.push(res.status);
      return res;
    }) as typeof fetch;
    await p.startAgent(
      revoked,
      (task) => {
        revokedRan.push(task.task_id);
      },
      { capabilities: ['work'], fetch: recordingStarts },
    );
    const [before] = await p.createTasks(1, { capability: 'work' });
    await waitForStatus(p, 'DONE', 1);
    expect(revokedRan).toEqual([before]);

    const admin = await p.token('admin');
    const revoke = await p.call('DELETE', `/api/agents/${revoked.id}`, { auth: admin });
    expect(revoke.status, await revoke.clone().text()).toBe(204);
    for (const [method, path] of [
      ['POST', `/api/tasks/${before}/start`],
      ['POST', `/api/tasks/${before}/heartbeat`],
      ['POST', `/api/tasks/${before}/complete`],
      ['POST', `/api/tasks/${before}/report-failure`],
      ['GET', `/api/tasks/${before}`],
    ] as const) {
      const res = await p.call(method, path, {
        auth: revoked.apiKey,
        body: method === 'POST' ? (path.endsWith('failure') ? { error: 'x' } : {}) : undefined,
      });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    const { rows: agentRows } = await p.db.query<{ status: string; revoked: boolean }>(
      'SELECT status, revoked_at IS NOT NULL AS revoked FROM agents WHERE id = $1',
      [revoked.id],
    );
    expect(agentRows).toEqual([{ status: 'OFFLINE', revoked: true }]);

    if (brokerKind === 'rabbitmq') {
      const management = p.management!;
      await p.waitFor(
        "the revoked agent's connection to be closed",
        async () => !(await management.listConnections()).some((c) => c.user === `agent-${revoked.id}`),
      );
      const { createRabbitBroker } = await import('@devart/queue');
      const again = createRabbitBroker({
        url: revoked.amqpUrl!,
        prefix: p.prefix,
        consumeOnly: true,
        timeoutMs: 3000,
        reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
      });
      try {
        const refused = await (async () => {
          await again.setup();
          await again.consume(`${p.prefix}tasks.todo.work`, { prefetch: 1 }, (d) => d.ack());
        })().then(
          () => undefined,
          (error: Error) => error,
        );
        expect(refused).toBeInstanceOf(Error);
        expect(String(refused?.message)).toMatch(/ACCESS_REFUSED|access refused|403/i);
      } finally {
        await again.close();
      }
    }

    // Tasks created from now on are all done by the live agent, none lost to the revoked one.
    const liveRan: string[] = [];
    await p.startAgent(
      live,
      (task) => {
        liveRan.push(task.task_id);
      },
      { capabilities: ['work'] },
    );
    const after = await p.createTasks(10, { capability: 'work' });
    await waitForStatus(p, 'DONE', 11);
    expect(liveRan.sort()).toEqual([...after].sort());
    expect(revokedRan).toEqual([before]);
    // In-process, the revoked agent still had its consumer and got a message: its start was refused
    // (401), it gave the message back and stopped. On RabbitMQ its connection was gone already.
    expect(revokedStarts).toEqual(brokerKind === 'rabbitmq' ? [200] : [200, 401]);
    expect(
      await count(
        p,
        'SELECT count(*) AS n FROM task_attempts WHERE agent_id = $1 AND task_id = ANY ($2::uuid[])',
        [live.id, after],
      ),
    ).toBe(10);
  });

  it('claim-task is gone: an agent gets 410 problem+json pointing at the queue', async () => {
    platform = await createTestPlatform();
    const agent = await platform.registerAgent(['work']);
    const res = await platform.call('POST', `/api/agents/${agent.id}/claim-task`, { auth: agent.apiKey });
    expect(res.status).toBe(410);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as { type: string; status: number; detail: string };
    expect(problem).toMatchObject({ type: 'urn:devart:problem:gone', status: 410 });
    expect(problem.detail).toMatch(/start/);
  });

  it('a batch of 1,001 tasks is refused naming tasks, and a batch with one bad task is refused naming it, writing nothing', async () => {
    platform = await createTestPlatform();
    const p = platform;
    const auth = await p.token('supervisor');
    const tooMany = await p.call('POST', '/api/tasks/batch', {
      auth,
      body: { tasks: Array.from({ length: 1001 }, (_, i) => ({ title: `t${i}` })) },
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.headers.get('content-type')).toContain('application/problem+json');
    const tooManyProblem = (await tooMany.json()) as { errors: { field: string }[] };
    expect(tooManyProblem.errors.map((e) => e.field)).toEqual(['tasks']);

    const tasks: Record<string, unknown>[] = Array.from({ length: 10 }, (_, i) => ({ title: `t${i}` }));
    tasks[7] = { title: 't7', priority: 'high' };
    const oneBad = await p.call('POST', '/api/tasks/batch', { auth, body: { tasks } });
    expect(oneBad.status).toBe(400);
    const oneBadProblem = (await oneBad.json()) as {
      errors: { location: string; field: string }[];
      detail: string;
    };
    expect(oneBadProblem.errors).toEqual([
      { location: 'body', field: 'tasks[7].priority', message: expect.any(String) },
    ]);
    expect(oneBadProblem.detail).toContain('tasks[7].priority');

    expect(await count(p, 'SELECT count(*) AS n FROM tasks')).toBe(0);
    expect(await count(p, 'SELECT count(*) AS n FROM outbox')).toBe(0);
  });
});
