import {
  BatchResult,
  CompleteTaskBatchBody,
  CompleteTaskBatchItem,
  CompleteTaskBody,
  FailureOutcome,
  Lease,
  ReportFailureBody,
  StartTaskBatchBody,
  StartTaskBatchItem,
  StartTaskBody,
  Task,
  TaskIdParams,
} from '@devart/contracts';
import type { Db, TaskRow } from '@devart/db';
import { z } from '@hono/zod-openapi';
import { currentAgent } from '../middleware/auth';
import { ProblemError } from '../problem';
import {
  completeAgentTask,
  completeAgentTasks,
  heartbeatAgentTask,
  type LeaseSettings,
  startAgentTask,
  startAgentTasks,
  type WorkObserver,
} from '../services/agent-work';
import { type FailureSettings, reportFailure } from '../services/failures';
import { eachItemOnItsOwn } from './batch-items';
import { createRouter, protectedRoute } from './route-kit';

const lease = (task: TaskRow) => ({
  task_id: task.id,
  status: task.status,
  attempt: task.attempt,
  lease_expires_at: task.lease_expires_at?.toISOString() ?? null,
});

/** What agents call while they work a task; each operation is one guarded SQL statement. */
export function agentWorkRoutes({
  db,
  settings,
  failures,
  observer,
}: {
  db: Db;
  settings: LeaseSettings;
  failures: FailureSettings;
  observer?: WorkObserver;
}) {
  const router = createRouter();
  // The batch bodies refer to their items' schemas, which the routes validate one item at a time.
  for (const [name, item] of Object.entries({ StartTaskBatchItem, CompleteTaskBatchItem })) {
    // The item's id makes zod answer a $ref into its own $defs; the component is the definition itself.
    const json = z.toJSONSchema(item, { target: 'draft-2020-12', io: 'input' });
    // OpenAPI 3.1 schema objects are JSON Schema 2020-12, which is what zod wrote.
    const schema = (json.$defs?.[name] ?? json) as Parameters<
      typeof router.openAPIRegistry.registerComponent<'schemas'>
    >[2];
    router.openAPIRegistry.registerComponent('schemas', name, schema);
  }

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/{taskId}/start',
      tags: ['agent work'],
      summary: 'Take a TODO task (the fenced claim); 409 means drop the message',
      action: 'tasks.agent',
      request: {
        params: TaskIdParams,
        body: { required: false, content: { 'application/json': { schema: StartTaskBody } } },
      },
      responses: {
        200: {
          description: 'The task is this agent’s until its lease lapses',
          content: { 'application/json': { schema: Task } },
        },
      },
      problems: [404, 409],
    }),
    async (c) => {
      const body = (c.req.valid('json') ?? {}) as StartTaskBody;
      const task = await startAgentTask(
        db,
        settings,
        { taskId: c.req.valid('param').taskId, agent: currentAgent(c.get('auth')), attempt: body.attempt },
        observer,
      );
      return c.json(task, 200);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/start-batch',
      tags: ['agent work'],
      summary:
        'Many fenced claims in one transaction; each item answers as /start would (200, 400, 403, 404, 409)',
      action: 'tasks.agent',
      'x-devart-batch-items': true,
      request: { body: { required: true, content: { 'application/json': { schema: StartTaskBatchBody } } } },
      responses: {
        200: {
          description: 'One result per item, in order',
          content: { 'application/json': { schema: BatchResult } },
        },
      },
    }),
    async (c) => {
      const agent = currentAgent(c.get('auth'));
      const items = await eachItemOnItsOwn(c, c.req.valid('json').items, StartTaskBatchItem, (valid) =>
        startAgentTasks(db, settings, agent, valid, observer),
      );
      return c.json({ items }, 200);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/complete-batch',
      tags: ['agent work'],
      summary:
        'Many completions in one transaction; each item answers as /complete would (200, 400, 404, 409)',
      action: 'tasks.agent',
      'x-devart-batch-items': true,
      'x-devart-stored-escaped': ['items.*.result'],
      request: {
        body: { required: true, content: { 'application/json': { schema: CompleteTaskBatchBody } } },
      },
      responses: {
        200: {
          description: 'One result per item, in order',
          content: { 'application/json': { schema: BatchResult } },
        },
      },
    }),
    async (c) => {
      const agentId = currentAgent(c.get('auth')).id;
      const items = await eachItemOnItsOwn(c, c.req.valid('json').items, CompleteTaskBatchItem, (valid) =>
        completeAgentTasks(db, agentId, valid, observer),
      );
      return c.json({ items }, 200);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/{taskId}/heartbeat',
      tags: ['agent work'],
      summary: 'Extend the lease of a task this agent holds',
      action: 'tasks.agent',
      request: { params: TaskIdParams },
      responses: {
        200: { description: 'The new lease', content: { 'application/json': { schema: Lease } } },
      },
      problems: [404, 409],
    }),
    async (c) => {
      const task = await heartbeatAgentTask(db, settings, {
        taskId: c.req.valid('param').taskId,
        agentId: currentAgent(c.get('auth')).id,
      });
      return c.json(lease(task), 200);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/{taskId}/complete',
      tags: ['agent work'],
      summary: 'Finish a task this agent holds: DONE with its result and cost',
      action: 'tasks.agent',
      'x-devart-stored-escaped': ['result'],
      request: {
        params: TaskIdParams,
        body: { required: true, content: { 'application/json': { schema: CompleteTaskBody } } },
      },
      responses: {
        200: { description: 'Done', content: { 'application/json': { schema: Task } } },
      },
      problems: [404, 409],
    }),
    async (c) => {
      const task = await completeAgentTask(
        db,
        {
          taskId: c.req.valid('param').taskId,
          agentId: currentAgent(c.get('auth')).id,
          body: c.req.valid('json'),
        },
        observer,
      );
      return c.json(task, 200);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/tasks/{taskId}/report-failure',
      tags: ['agent work'],
      summary: 'Report that this agent’s attempt failed: retried after a backoff, or quarantined',
      action: 'tasks.agent',
      'x-devart-stored-escaped': ['error', 'details'],
      request: {
        params: TaskIdParams,
        body: { required: true, content: { 'application/json': { schema: ReportFailureBody } } },
      },
      responses: {
        200: {
          description: 'What happened to the task',
          content: { 'application/json': { schema: FailureOutcome } },
        },
      },
      problems: [404, 409],
    }),
    async (c) => {
      const body = c.req.valid('json');
      const task = await reportFailure(db, failures, {
        taskId: c.req.valid('param').taskId,
        agentId: currentAgent(c.get('auth')).id,
        attempt: body.attempt,
        error: body.error,
        retryable: body.retryable ?? true,
        details: body.details,
      });
      return c.json(
        {
          task_id: task.id,
          status: task.status as 'TODO' | 'QUARANTINED',
          retry_count: task.retry_count,
          next_attempt_at: task.next_attempt_at?.toISOString() ?? null,
        },
        200,
      );
    },
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/agents/{agentId}/claim-task',
      tags: ['agent work'],
      summary: 'Removed: agents consume tasks from the queue now',
      deprecated: true,
      action: 'tasks.agent',
      request: { params: z.object({ agentId: z.string() }) },
      responses: { 410: { description: 'Gone' } },
    }),
    () => {
      throw new ProblemError(
        'gone',
        'Polling for tasks was removed: agents consume them from the broker (queue tasks.todo.<capability>) ' +
          'with the agent SDK, then call POST /api/tasks/{taskId}/start. See docs/agents.md.',
      );
    },
  );

  return router;
}
