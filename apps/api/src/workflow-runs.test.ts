import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

const diamond = {
  name: 'diamond',
  variables: { branch: { type: 'string', required: true } },
  steps: [
    { key: 'a', title: 'A', capability: 'wf', payload: { branch: '{{vars.branch}}', cost: '0.1' } },
    {
      key: 'b',
      title: 'B',
      capability: 'wf',
      depends_on: ['a'],
      payload: { from_a: '{{steps.a.result.n}}', cost: '0.2' },
    },
    { key: 'c', title: 'C', capability: 'wf', depends_on: ['a'], payload: { cost: '0.3' } },
    {
      key: 'd',
      title: 'D',
      capability: 'wf',
      depends_on: ['b', 'c'],
      payload: {
        b: '{{steps.b.result.n}}',
        summary: 'b={{steps.b.result.n}} c={{steps.c.result.n}} on {{vars.branch}}',
      },
    },
  ],
};

async function defineWorkflow(p: TestPlatform, body: unknown): Promise<string> {
  const res = await p.call('POST', '/api/workflows', { auth: await p.token('supervisor'), body });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function trigger(
  p: TestPlatform,
  workflowId: string,
  variables: Record<string, unknown>,
  key?: string,
) {
  return p.call('POST', `/api/workflows/${workflowId}/trigger`, {
    auth: await p.token('supervisor'),
    body: { variables },
    headers: key ? { 'idempotency-key': key } : {},
  });
}

interface RunView {
  status: string;
  total_cost: string | null;
  end_time: string | null;
  duration_ms: number | null;
  steps: {
    step_key: string;
    status: string;
    attempts: number;
    cost: string | null;
    duration_ms: number | null;
  }[];
}

describe(`workflow runs on ${backend} + ${brokerKind}`, () => {
  it('runs a diamond: D starts only after B and C, results flow through templates, cost adds up exactly', async () => {
    platform = await createTestPlatform();
    const agent = await platform.registerAgent(['wf']);
    const seen: Record<string, Record<string, unknown>> = {};
    await platform.startAgent(
      agent,
      (task) => {
        seen[task.title] = task.payload;
        return {
          result: { n: task.title.toLowerCase() === 'a' ? 7 : task.title },
          cost: task.payload.cost as string,
        };
      },
      { capabilities: ['wf'], concurrency: 4 },
    );
    const workflowId = await defineWorkflow(platform, diamond);
    const res = await trigger(platform, workflowId, { branch: 'main' });
    expect(res.status).toBe(201);
    const { run_id } = (await res.json()) as { run_id: string; status: string };
    const viewer = await platform.token('viewer');
    const run = await platform.waitFor('run COMPLETED', async () => {
      const body = (await (
        await platform!.call('GET', `/api/workflow-runs/${run_id}`, { auth: viewer })
      ).json()) as RunView;
      return body.status === 'COMPLETED' ? body : undefined;
    });
    expect(run.total_cost).toBe('0.6');
    expect(run.end_time).toEqual(expect.any(String));
    expect(run.steps.map((s) => [s.step_key, s.status, s.attempts])).toEqual([
      ['a', 'DONE', 1],
      ['b', 'DONE', 1],
      ['c', 'DONE', 1],
      ['d', 'DONE', 1],
    ]);
    expect(seen.A).toMatchObject({ branch: 'main' });
    expect(seen.B).toMatchObject({ from_a: 7 });
    expect(seen.D).toMatchObject({ b: 'B', summary: 'b=B c=C on main' });
    const { rows } = await platform.db.query<{ key: string; started: Date; completed: Date }>(
      'SELECT step_key AS key, started_at AS started, completed_at AS completed FROM tasks WHERE workflow_run_id = $1',
      [run_id],
    );
    const at = Object.fromEntries(rows.map((r) => [r.key, r]));
    expect(at.d!.started.getTime()).toBeGreaterThanOrEqual(
      Math.max(at.b!.completed.getTime(), at.c!.completed.getTime()),
    );
    const list = (await (
      await platform.call('GET', `/api/workflows/${workflowId}/runs?status=COMPLETED`, { auth: viewer })
    ).json()) as {
      items: { id: string }[];
    };
    expect(list.items.map((r) => r.id)).toEqual([run_id]);
  });

  it('B and C completing at the same moment release D exactly once and complete the run once (50 times)', async () => {
    platform = await createTestPlatform();
    const first = await platform.registerAgent(['wf'], 'first');
    const second = await platform.registerAgent(['wf'], 'second');
    const workflowId = await defineWorkflow(platform, diamond);
    const ids = async (runId: string) => {
      const { rows } = await platform!.db.query<{ step_key: string; id: string }>(
        'SELECT step_key, id FROM tasks WHERE workflow_run_id = $1',
        [runId],
      );
      return Object.fromEntries(rows.map((r) => [r.step_key, r.id]));
    };
    const work = async (key: string, taskId: string, cost: string) => {
      const started = await platform!.call('POST', `/api/tasks/${taskId}/start`, {
        auth: key,
        body: { attempt: 1 },
      });
      expect(started.status).toBe(200);
      return () =>
        platform!.call('POST', `/api/tasks/${taskId}/complete`, {
          auth: key,
          body: { result: { n: 1 }, cost, attempt: 1 },
        });
    };
    for (let i = 0; i < 50; i++) {
      const { run_id } = (await (await trigger(platform, workflowId, { branch: `b${i}` })).json()) as {
        run_id: string;
      };
      const t = await ids(run_id);
      await (await work(first.apiKey, t.a!, '0.1'))();
      const completeB = await work(first.apiKey, t.b!, '0.2');
      const completeC = await work(second.apiKey, t.c!, '0.3');
      const [b, c] = await Promise.all([completeB(), completeC()]);
      expect([b.status, c.status]).toEqual([200, 200]);
      const released = await platform.db.query<{ status: string; attempt: number; queued: number }>(
        `SELECT status, attempt, (SELECT count(*)::int FROM outbox WHERE payload ->> 'task_id' = $1::text) AS queued
         FROM tasks WHERE id = $1::uuid`,
        [t.d],
      );
      expect(released.rows[0]).toEqual({ status: 'TODO', attempt: 1, queued: 1 });
      await (await work(second.apiKey, t.d!, '0'))();
      const run = await platform.db.query<{ status: string; total_cost: string; ended: number }>(
        `SELECT status, total_cost::text, (end_time IS NOT NULL)::int AS ended FROM workflow_runs WHERE id = $1`,
        [run_id],
      );
      expect(run.rows[0]).toEqual({ status: 'COMPLETED', total_cost: '0.6', ended: 1 });
    }
  }, 180_000);

  it('a quarantined step fails the run and cancels what had not run', async () => {
    platform = await createTestPlatform();
    const agent = await platform.registerAgent(['wf']);
    const workflowId = await defineWorkflow(platform, {
      name: 'doomed',
      steps: [
        { key: 'a', title: 'A', capability: 'wf', max_retries: 0 },
        { key: 'b', title: 'B', capability: 'wf', depends_on: ['a'] },
        { key: 'c', title: 'C', capability: 'wf', depends_on: ['b'] },
      ],
    });
    await platform.startAgent(
      agent,
      () => {
        throw new Error('cannot');
      },
      { capabilities: ['wf'] },
    );
    const { run_id } = (await (await trigger(platform, workflowId, {})).json()) as { run_id: string };
    const viewer = await platform.token('viewer');
    const run = await platform.waitFor('run FAILED', async () => {
      const body = (await (
        await platform!.call('GET', `/api/workflow-runs/${run_id}`, { auth: viewer })
      ).json()) as RunView;
      return body.status === 'FAILED' ? body : undefined;
    });
    expect(run.steps.map((s) => [s.step_key, s.status])).toEqual([
      ['a', 'QUARANTINED'],
      ['b', 'CANCELLED'],
      ['c', 'CANCELLED'],
    ]);
    expect(run.end_time).toEqual(expect.any(String));
  });

  it('an Idempotency-Key returns the same run; missing variables and unknown workflows are refused', async () => {
    platform = await createTestPlatform();
    const workflowId = await defineWorkflow(platform, diamond);
    const one = await trigger(platform, workflowId, { branch: 'x' }, 'deploy-42');
    const two = await trigger(platform, workflowId, { branch: 'x' }, 'deploy-42');
    expect(one.status).toBe(201);
    expect(two.headers.get('idempotent-replayed')).toBe('true');
    expect(((await one.json()) as { run_id: string }).run_id).toBe(
      ((await two.json()) as { run_id: string }).run_id,
    );
    const runs = await platform.db.query<{ n: number }>('SELECT count(*)::int AS n FROM workflow_runs');
    expect(runs.rows[0]!.n).toBe(1);

    const missing = await trigger(platform, workflowId, {});
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain(
      'variables.branch',
    );
    const unknown = await trigger(platform, '00000000-0000-4000-8000-000000000000', {});
    expect(unknown.status).toBe(404);
    expect((await platform.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks')).rows[0]!.n).toBe(
      4,
    );
  });

  it('a supervisor cancels a running run: its steps that had not finished are cancelled, and a second cancel is 409', async () => {
    platform = await createTestPlatform();
    const workflowId = await defineWorkflow(platform, diamond);
    const { run_id } = (await (await trigger(platform, workflowId, { branch: 'x' })).json()) as {
      run_id: string;
    };
    const supervisor = await platform.token('supervisor');
    expect(
      (
        await platform.call('POST', `/api/workflow-runs/${run_id}/cancel`, {
          auth: await platform.token('viewer'),
        })
      ).status,
    ).toBe(403);
    const cancelled = await platform.call('POST', `/api/workflow-runs/${run_id}/cancel`, {
      auth: supervisor,
    });
    expect(cancelled.status).toBe(200);
    const body = (await cancelled.json()) as RunView;
    expect(body.status).toBe('CANCELLED');
    expect(body.steps.every((s) => s.status === 'CANCELLED')).toBe(true);
    expect(
      (await platform.call('POST', `/api/workflow-runs/${run_id}/cancel`, { auth: supervisor })).status,
    ).toBe(409);
  });

  it('cancelling one step of a run cancels the run and its other unfinished steps', async () => {
    platform = await createTestPlatform();
    const workflowId = await defineWorkflow(platform, diamond);
    const { run_id } = (await (await trigger(platform, workflowId, { branch: 'x' })).json()) as {
      run_id: string;
    };
    const { rows } = await platform.db.query<{ id: string }>(
      "SELECT id FROM tasks WHERE workflow_run_id = $1 AND step_key = 'a'",
      [run_id],
    );
    const res = await platform.call('POST', `/api/tasks/${rows[0]!.id}/cancel`, {
      auth: await platform.token('supervisor'),
    });
    expect(res.status).toBe(200);
    const run = (await (
      await platform.call('GET', `/api/workflow-runs/${run_id}`, { auth: await platform.token('viewer') })
    ).json()) as RunView;
    expect(run.status).toBe('CANCELLED');
    expect(run.steps.map((s) => s.status)).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED', 'CANCELLED']);
  });
});
