import { randomUUID } from 'node:crypto';
import { defaultBackoff } from '@devart/core';
import { getTask, insertAgent } from '@devart/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import {
  completeAgentTask,
  completeAgentTasks,
  startAgentTask,
  startAgentTasks,
} from './services/agent-work';
import {
  quarantinePoisonMessage,
  reapExpiredLeases,
  reportFailure,
  requeueQuarantined,
} from './services/failures';
import { taskEvent } from './services/lifecycle-events';
import { cancelTaskById, createTask, createTasks } from './services/tasks';
import { cancelRun, triggerRun } from './services/workflow-runs';
import { createWorkflow } from './services/workflows';

// Each task.* and workflow_run.* event, recorded by the service call that makes the change, in
// commit order. The services are called directly: the events are the database's, not the HTTP layer's.
let current: TestDatabase;
let agent: { id: string; capabilities: string[] };
const user = randomUUID();
const lease = { leaseSeconds: 30 };
const failures = { backoff: defaultBackoff, random: () => 0.5 };

beforeAll(async () => {
  current = await createTestDatabase();
  const row = await current.db.transaction((tx) =>
    insertAgent(tx, { name: 'events', capabilities: ['ev'], apiKeyHash: randomUUID(), createdBy: null }),
  );
  agent = { id: row.id, capabilities: ['ev'] };
});
afterAll(() => current?.drop());

interface EventRow {
  id: number;
  type: string;
  task_id: string | null;
  workflow_run_id: string | null;
  agent_id: string | null;
  data: Record<string, unknown>;
  cmin: string;
}

/** The task and run events committed while `action` ran, in id order (agent.* are another suite's). */
async function recorded(action: () => Promise<unknown>): Promise<EventRow[]> {
  const { rows: before } = await current.db.query<{ id: number }>(
    'SELECT coalesce(max(id), 0) AS id FROM events',
  );
  await action();
  const { rows } = await current.db.query<EventRow>(
    `SELECT id, type, task_id, workflow_run_id, agent_id, data, cmin::text AS cmin FROM events WHERE id > $1 AND (type LIKE 'task.%' OR type LIKE 'workflow_run.%') ORDER BY id`,
    [before[0]!.id],
  );
  return rows;
}

const typesAndTasks = (rows: EventRow[]) => rows.map((r) => [r.type, r.task_id]);

async function startOne(taskId: string, leaseSeconds = 30) {
  return startAgentTask(current.db, { leaseSeconds }, { taskId, agent });
}

describe(`the event log on ${backend}`, () => {
  it('records a task from creation to done, single and batched, one INSERT per batch', async () => {
    let one = '';
    const created = await recorded(async () => {
      one = (await createTask(current.db, { title: 'one', capability: 'ev' }, user)).id;
    });
    expect(typesAndTasks(created)).toEqual([['task.created', one]]);
    expect(created[0]!.data).toMatchObject({ status: 'TODO', attempt: 1, retry_count: 0, title: 'one' });
    const createdRow = (await getTask(current.db, one))!;
    expect(created[0]!.data).toEqual(JSON.parse(JSON.stringify(taskEvent('task.created', createdRow).data)));

    let batch: string[] = [];
    const createdBatch = await recorded(async () => {
      const rows = await createTasks(
        current.db,
        Array.from({ length: 20 }, (_, i) => ({ title: `b${i}`, capability: 'ev' })),
        user,
      );
      batch = rows.map((t) => t.id);
    });
    expect(typesAndTasks(createdBatch)).toEqual(batch.map((id) => ['task.created', id]));
    // One statement wrote them all: rows of one INSERT share their command id.
    expect(new Set(createdBatch.map((r) => r.cmin)).size).toBe(1);

    const startedOne = await recorded(() => startOne(one));
    expect(typesAndTasks(startedOne)).toEqual([['task.started', one]]);
    expect(startedOne[0]!.agent_id).toBe(agent.id);
    expect(startedOne[0]!.data).toMatchObject({ status: 'IN_PROGRESS', attempt: 1 });

    const startedBatch = await recorded(() =>
      startAgentTasks(
        current.db,
        lease,
        agent,
        [...batch, one].map((task_id) => ({ task_id })),
      ),
    );
    // In the order of the request; the refused item (already started) records nothing.
    expect(typesAndTasks(startedBatch)).toEqual(batch.map((id) => ['task.started', id]));
    expect(new Set(startedBatch.map((r) => r.cmin)).size).toBe(1);

    const doneOne = await recorded(() =>
      completeAgentTask(current.db, {
        taskId: one,
        agentId: agent.id,
        body: { result: { ok: true }, cost: 0.25 },
      }),
    );
    expect(typesAndTasks(doneOne)).toEqual([['task.done', one]]);
    expect(doneOne[0]!.data).toMatchObject({ status: 'DONE', cost: '0.25', duration_ms: expect.any(Number) });
    // The statement builds the snapshot in SQL; it is exactly the one taskEvent builds everywhere else.
    const doneRow = (await getTask(current.db, one))!;
    expect(doneOne[0]!.data).toEqual(JSON.parse(JSON.stringify(taskEvent('task.done', doneRow).data)));

    const doneBatch = await recorded(() =>
      completeAgentTasks(
        current.db,
        agent.id,
        batch.map((task_id) => ({ task_id, result: null })),
      ),
    );
    expect(doneBatch.map((r) => r.type)).toEqual(batch.map(() => 'task.done'));
    expect(new Set(doneBatch.map((r) => r.task_id))).toEqual(new Set(batch));
    expect(new Set(doneBatch.map((r) => r.cmin)).size).toBe(1);
  });

  it('records failures, retries, lapsed leases, quarantine, requeue and cancel', async () => {
    const task = await createTask(current.db, { title: 'flaky', capability: 'ev', max_retries: 1 }, user);
    await startOne(task.id);
    const failed = await recorded(() =>
      reportFailure(current.db, failures, {
        taskId: task.id,
        agentId: agent.id,
        error: 'boom',
        retryable: true,
      }),
    );
    expect(typesAndTasks(failed)).toEqual([
      ['task.failed', task.id],
      ['task.retry_scheduled', task.id],
    ]);
    expect(failed[0]!).toMatchObject({
      agent_id: agent.id,
      data: { error: 'boom', attempt: 1, retry_count: 1 },
    });
    expect(failed[1]!.data).toMatchObject({
      status: 'TODO',
      attempt: 2,
      next_attempt_at: expect.any(String),
    });

    // The second attempt's lease lapses: retries are used up, so the reaper quarantines it.
    // Its backoff first runs out (a start before next_attempt_at is refused).
    await current.db.query('UPDATE tasks SET next_attempt_at = now() WHERE id = $1', [task.id]);
    await startAgentTask(current.db, { leaseSeconds: 0.05 }, { taskId: task.id, agent, attempt: 2 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const reaped = await recorded(() => reapExpiredLeases(current.db, failures));
    expect(typesAndTasks(reaped)).toEqual([
      ['task.lease_expired', task.id],
      ['task.quarantined', task.id],
    ]);
    expect(reaped[0]!).toMatchObject({ agent_id: agent.id, data: { attempt: 2, error: 'lease expired' } });

    const requeued = await recorded(() => requeueQuarantined(current.db, task.id));
    expect(typesAndTasks(requeued)).toEqual([['task.requeued', task.id]]);
    expect(requeued[0]!.data).toMatchObject({ status: 'TODO', retry_count: 0 });

    // A lapsed lease with retries left is retried.
    const { attempt } = await startOne(task.id, 0.05);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const retried = await recorded(() => reapExpiredLeases(current.db, failures));
    expect(typesAndTasks(retried)).toEqual([
      ['task.lease_expired', task.id],
      ['task.retry_scheduled', task.id],
    ]);

    const poisoned = await recorded(() =>
      quarantinePoisonMessage(current.db, { taskId: task.id, attempt: attempt + 1, deliveries: 5 }),
    );
    expect(typesAndTasks(poisoned)).toEqual([['task.quarantined', task.id]]);
    expect(poisoned[0]!.data).toMatchObject({ outcome: 'DEAD_LETTERED' });

    const last = await createTask(current.db, { title: 'held', capability: 'ev', max_retries: 0 }, user);
    await startOne(last.id);
    const quarantined = await recorded(() =>
      reportFailure(current.db, failures, {
        taskId: last.id,
        agentId: agent.id,
        error: 'fatal',
        retryable: false,
      }),
    );
    expect(typesAndTasks(quarantined)).toEqual([['task.quarantined', last.id]]);

    const other = await createTask(current.db, { title: 'cancel me', capability: 'ev' }, user);
    await startOne(other.id);
    const cancelled = await recorded(() => cancelTaskById(current.db, other.id));
    expect(typesAndTasks(cancelled)).toEqual([['task.cancelled', other.id]]);
    // The agent that held it hears of it.
    expect(cancelled[0]!.agent_id).toBe(agent.id);
  });

  it('records a workflow run: started, steps released, completed', async () => {
    const workflow = await createWorkflow(
      current.db,
      {
        name: `ev-${randomUUID()}`,
        steps: [
          { key: 'a', title: 'A', capability: 'ev', payload: {}, depends_on: [] },
          { key: 'b', title: 'B', capability: 'ev', payload: {}, depends_on: ['a'] },
        ],
      },
      user,
    );
    let runId = '';
    const started = await recorded(async () => {
      runId = (await triggerRun(current.db, { workflowId: workflow.id, variables: {}, createdBy: user }))
        .run_id;
    });
    expect(started.map((r) => [r.type, r.workflow_run_id, r.data.step_key ?? null])).toEqual([
      ['workflow_run.started', runId, null],
      ['task.created', runId, 'a'],
      ['task.created', runId, 'b'],
    ]);
    const [a, b] = [started[1]!.task_id!, started[2]!.task_id!];
    expect(started[2]!.data.status).toBe('PENDING');

    await startOne(a);
    const released = await recorded(() =>
      completeAgentTasks(current.db, agent.id, [{ task_id: a, result: { n: 1 } }]),
    );
    expect(released.map((r) => [r.type, r.task_id])).toEqual([
      ['task.done', a],
      ['workflow_run.step_released', b],
    ]);
    expect(released[1]!).toMatchObject({ workflow_run_id: runId, data: { step_key: 'b', status: 'TODO' } });

    await startOne(b);
    const completed = await recorded(() =>
      completeAgentTask(current.db, { taskId: b, agentId: agent.id, body: { cost: 1 } }),
    );
    expect(completed.map((r) => [r.type, r.task_id, r.workflow_run_id])).toEqual([
      ['task.done', b, runId],
      ['workflow_run.completed', null, runId],
    ]);
    expect(completed[1]!.data).toMatchObject({
      status: 'COMPLETED',
      total_cost: '1',
      duration_ms: expect.any(Number),
    });
  });

  it('records a run cancelled, a run failed by a quarantined step, and a run cancelled through its step', async () => {
    const workflow = await createWorkflow(
      current.db,
      {
        name: `ev-${randomUUID()}`,
        steps: [
          { key: 'a', title: 'A', capability: 'ev', max_retries: 0, payload: {}, depends_on: [] },
          { key: 'b', title: 'B', capability: 'ev', payload: {}, depends_on: ['a'] },
        ],
      },
      user,
    );
    const trigger = async () => {
      const { run_id } = await triggerRun(current.db, {
        workflowId: workflow.id,
        variables: {},
        createdBy: user,
      });
      const { rows } = await current.db.query<{ id: string; step_key: string }>(
        'SELECT id, step_key FROM tasks WHERE workflow_run_id = $1 ORDER BY step_key',
        [run_id],
      );
      return { runId: run_id, a: rows[0]!.id, b: rows[1]!.id };
    };

    const first = await trigger();
    await startOne(first.a);
    const cancelled = await recorded(() => cancelRun(current.db, first.runId));
    expect(new Set(cancelled.slice(0, 2).map((r) => [r.type, r.task_id].join()))).toEqual(
      new Set([`task.cancelled,${first.a}`, `task.cancelled,${first.b}`]),
    );
    expect(cancelled.find((r) => r.task_id === first.a)!.agent_id).toBe(agent.id);
    expect(cancelled.slice(2).map((r) => [r.type, r.workflow_run_id])).toEqual([
      ['workflow_run.cancelled', first.runId],
    ]);

    const second = await trigger();
    await startOne(second.a);
    const failed = await recorded(() =>
      reportFailure(current.db, failures, {
        taskId: second.a,
        agentId: agent.id,
        error: 'x',
        retryable: false,
      }),
    );
    expect(failed.map((r) => [r.type, r.task_id ?? r.workflow_run_id])).toEqual([
      ['task.quarantined', second.a],
      ['task.cancelled', second.b],
      ['workflow_run.failed', second.runId],
    ]);
    expect(failed[2]!.data).toMatchObject({ status: 'FAILED', failed_step_key: 'a', cancelled_steps: 1 });

    const third = await trigger();
    const throughStep = await recorded(() => cancelTaskById(current.db, third.a));
    expect(throughStep.map((r) => [r.type, r.task_id ?? r.workflow_run_id])).toEqual([
      ['task.cancelled', third.a],
      ['task.cancelled', third.b],
      ['workflow_run.cancelled', third.runId],
    ]);
  });

  it('records nothing for a change that is refused or rolled back', async () => {
    const task = await createTask(current.db, { title: 'refused', capability: 'ev' }, user);
    const none = await recorded(async () => {
      await expect(
        completeAgentTask(current.db, { taskId: task.id, agentId: agent.id, body: {} }),
      ).rejects.toThrow();
      await expect(
        createTasks(current.db, [{ title: 'ok' }, { title: 'bad', priority: 1e12 } as never], user),
      ).rejects.toThrow();
    });
    expect(none).toEqual([]);
  });
});
