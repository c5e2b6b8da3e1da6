import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

interface BatchAnswer {
  items: {
    task_id: string;
    status: number;
    attempt?: number;
    lease_expires_at?: string | null;
    detail?: string;
  }[];
}

describe(`batched agent reports on ${backend} + ${brokerKind}`, () => {
  it('start-batch and complete-batch answer each item as the single calls would, in one statement each', async () => {
    platform = await createTestPlatform();
    const echo = await platform.registerAgent(['echo'], 'echo-agent');
    const other = await platform.registerAgent(['other'], 'other-agent');
    const supervisor = await platform.token('supervisor');
    const created = await platform.call('POST', '/api/tasks/batch', {
      auth: supervisor,
      body: {
        tasks: [
          { title: 'a', capability: 'echo' },
          { title: 'b', capability: 'echo' },
          { title: 'c', capability: 'shell' },
        ],
      },
    });
    const [a, b, c] = ((await created.json()) as { items: { id: string }[] }).items.map((t) => t.id);
    const unknown = '00000000-0000-4000-8000-000000000000';

    const start = await platform.call('POST', '/api/tasks/start-batch', {
      auth: echo.apiKey,
      body: {
        items: [
          { task_id: a, attempt: 1 },
          { task_id: b, attempt: 2 },
          { task_id: c, attempt: 1 },
          { task_id: unknown, attempt: 1 },
        ],
      },
    });
    expect(start.status).toBe(200);
    const started = ((await start.json()) as BatchAnswer).items;
    expect(started.map((i) => [i.task_id, i.status])).toEqual([
      [a, 200],
      [b, 409],
      [c, 403],
      [unknown, 404],
    ]);
    expect(started[0]!.lease_expires_at).toEqual(expect.any(String));
    expect(started[1]!.detail).toMatch(/attempt 2.*attempt 1/);

    // The same claim again (a duplicate message) loses cleanly.
    const again = await platform.call('POST', '/api/tasks/start-batch', {
      auth: echo.apiKey,
      body: { items: [{ task_id: a, attempt: 1 }] },
    });
    expect(((await again.json()) as BatchAnswer).items[0]!.status).toBe(409);

    const foreign = await platform.call('POST', '/api/tasks/complete-batch', {
      auth: other.apiKey,
      body: { items: [{ task_id: a, attempt: 1, result: 'stolen' }] },
    });
    expect(((await foreign.json()) as BatchAnswer).items[0]).toMatchObject({
      status: 409,
      detail: /another agent/,
    });

    const complete = await platform.call('POST', '/api/tasks/complete-batch', {
      auth: echo.apiKey,
      body: {
        items: [
          { task_id: a, attempt: 1, result: { ok: true }, cost: '0.10' },
          { task_id: b, attempt: 1, result: null },
        ],
      },
    });
    expect(((await complete.json()) as BatchAnswer).items.map((i) => i.status)).toEqual([200, 409]);
    const { rows } = await platform.db.query<{
      id: string;
      status: string;
      cost: string | null;
      result: unknown;
    }>('SELECT id, status, cost::text, result FROM tasks WHERE id = ANY ($1::uuid[]) ORDER BY title', [
      [a, b, c],
    ]);
    expect(rows).toEqual([
      { id: a, status: 'DONE', cost: '0.10', result: { ok: true } },
      { id: b, status: 'TODO', cost: null, result: null },
      { id: c, status: 'TODO', cost: null, result: null },
    ]);
    const agentRow = await platform.db.query<{ status: string }>('SELECT status FROM agents WHERE id = $1', [
      echo.id,
    ]);
    expect(agentRow.rows[0]!.status).toBe('IDLE');
  });

  it('a batch is refused whole for a revoked agent and for a user token', async () => {
    platform = await createTestPlatform();
    const agent = await platform.registerAgent(['echo']);
    const [id] = await platform.createTasks(1, { capability: 'echo' });
    const admin = await platform.token('admin');
    expect(
      (
        await platform.call('POST', '/api/tasks/start-batch', {
          auth: admin,
          body: { items: [{ task_id: id }] },
        })
      ).status,
    ).toBe(403);
    await platform.call('DELETE', `/api/agents/${agent.id}`, { auth: admin });
    const res = await platform.call('POST', '/api/tasks/start-batch', {
      auth: agent.apiKey,
      body: { items: [{ task_id: id }] },
    });
    expect(res.status).toBe(401);
    expect(
      (await platform.db.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [id])).rows[0]!
        .status,
    ).toBe('TODO');
  });

  it('2,000 tasks over 4 agents reporting in batches are each done exactly once', async () => {
    platform = await createTestPlatform();
    const agents = [];
    for (let i = 0; i < 4; i++) agents.push(await platform.registerAgent(['echo'], `batcher-${i}`));
    for (const agent of agents) {
      await platform.startAgent(agent, (task) => ({ result: task.title, cost: 0.001 }), {
        capabilities: ['echo'],
        concurrency: 16,
        batchReports: true,
      });
    }
    const supervisor = await platform.token('supervisor');
    for (let offset = 0; offset < 2000; offset += 1000) {
      const res = await platform.call('POST', '/api/tasks/batch', {
        auth: supervisor,
        body: {
          tasks: Array.from({ length: 1000 }, (_, i) => ({ title: `t${offset + i}`, capability: 'echo' })),
        },
      });
      expect(res.status).toBe(201);
    }
    await platform.waitFor(
      '2,000 tasks DONE',
      async () => {
        const { rows } = await platform!.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM tasks WHERE status = 'DONE'",
        );
        return rows[0]!.n === 2000;
      },
      120_000,
    );
    const { rows } = await platform.db.query<{
      tasks: number;
      attempts: number;
      done: number;
      agents: number;
      cost: string;
    }>(
      `SELECT (SELECT count(*)::int FROM tasks) AS tasks,
              (SELECT count(*)::int FROM task_attempts) AS attempts,
              (SELECT count(*)::int FROM task_attempts WHERE outcome = 'DONE') AS done,
              (SELECT count(DISTINCT agent_id)::int FROM task_attempts) AS agents,
              (SELECT sum(cost)::text FROM tasks) AS cost`,
    );
    expect(rows[0]).toEqual({ tasks: 2000, attempts: 2000, done: 2000, agents: 4, cost: '2.000' });
  }, 180_000);
});
