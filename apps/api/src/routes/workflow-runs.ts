import {
  RunIdParams,
  TriggeredRun,
  TriggerWorkflowBody,
  WorkflowIdParams,
  WorkflowRunDetail,
  WorkflowRunListQuery,
  WorkflowRunPage,
  WorkflowStats,
  WorkflowStatsQuery,
} from '@devart/contracts';
import type { Db } from '@devart/db';
import type { Logger } from 'pino';
import { currentUser } from '../middleware/auth';
import { fieldProblem } from '../problem';
import { cancelRun, listRuns, runView, statsOf, triggerRun } from '../services/workflow-runs';
import { createRouter, protectedRoute } from './route-kit';

export function workflowRunRoutes({ db, logger }: { db: Db; logger?: Logger }) {
  const router = createRouter();
  const runJson = { 'application/json': { schema: WorkflowRunDetail } };

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/workflows/{workflowId}/trigger',
      tags: ['workflows'],
      summary:
        'Start a run: one task per step, the roots queued at once, the rest when their dependencies are done',
      description:
        'Optional `Idempotency-Key` header: the same key for the same workflow returns the same run ' +
        '(with `Idempotent-Replayed: true`). `warnings` names each step whose capability no registered agent ' +
        'serves: the run starts anyway, and that step waits in TODO until such an agent is registered.',
      action: 'workflows.trigger',
      request: {
        params: WorkflowIdParams,
        body: { required: false, content: { 'application/json': { schema: TriggerWorkflowBody } } },
      },
      responses: {
        201: { description: 'The run', content: { 'application/json': { schema: TriggeredRun } } },
      },
      problems: [404],
    }),
    async (c) => {
      const key = c.req.header('idempotency-key');
      if (key !== undefined && (key.length === 0 || key.length > 200)) {
        throw fieldProblem([
          { location: 'header', field: 'Idempotency-Key', message: 'must be 1 to 200 characters' },
        ]);
      }
      const body = (c.req.valid('json') ?? {}) as { variables?: Record<string, unknown> };
      const run = await triggerRun(db, {
        workflowId: c.req.valid('param').workflowId,
        variables: body.variables ?? {},
        idempotencyKey: key,
        createdBy: currentUser(c.get('auth')).sub,
      });
      if (!run.created) c.header('idempotent-replayed', 'true');
      if (run.created && run.warnings.length > 0) {
        logger?.warn(
          { workflow_run_id: run.run_id, warnings: run.warnings },
          'workflow run started with warnings',
        );
      }
      return c.json({ run_id: run.run_id, status: run.status as 'RUNNING', warnings: run.warnings }, 201);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/workflows/{workflowId}/runs',
      tags: ['workflows'],
      summary: 'Runs of a workflow, newest first, filtered by status, with cursor pagination',
      action: 'workflows.read',
      request: { params: WorkflowIdParams, query: WorkflowRunListQuery },
      responses: {
        200: { description: 'A page of runs', content: { 'application/json': { schema: WorkflowRunPage } } },
      },
      problems: [404],
    }),
    async (c) =>
      c.json(
        await listRuns(db, {
          workflowId: c.req.valid('param').workflowId,
          ...c.req.valid('query'),
        }),
        200,
      ),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/workflows/{workflowId}/stats',
      tags: ['workflows'],
      summary:
        'Runs, success rate, p50/p95 duration, mean and total cost, and per step p50 duration, failure rate, mean retries',
      description:
        'Computed in SQL with percentile_cont. Durations are over COMPLETED runs (steps: over DONE tasks); ' +
        'success rate = completed / finished runs; a step’s failure rate = quarantined / finished tasks. ' +
        'over_time groups the same runs by the UTC minute, hour or day they started (`bucket`).',
      action: 'workflows.read',
      request: { params: WorkflowIdParams, query: WorkflowStatsQuery },
      responses: {
        200: { description: 'Statistics', content: { 'application/json': { schema: WorkflowStats } } },
      },
      problems: [404],
    }),
    async (c) => {
      const { since, bucket } = c.req.valid('query');
      return c.json(
        await statsOf(db, c.req.valid('param').workflowId, since ? new Date(since) : new Date(0), bucket),
        200,
      );
    },
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/workflow-runs/{runId}',
      tags: ['workflows'],
      summary: 'A run with each step’s status, attempts, start, end, duration and cost',
      action: 'workflows.read',
      request: { params: RunIdParams },
      responses: { 200: { description: 'The run', content: runJson } },
      problems: [404],
    }),
    async (c) => c.json(await runView(db, c.req.valid('param').runId), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/workflow-runs/{runId}/cancel',
      tags: ['workflows'],
      summary: 'Cancel a RUNNING run: its steps that have not finished are cancelled',
      action: 'workflows.cancel',
      request: { params: RunIdParams },
      responses: {
        200: { description: 'Cancelled', content: runJson },
      },
      problems: [404, 409],
    }),
    async (c) => c.json(await cancelRun(db, c.req.valid('param').runId), 200),
  );

  return router;
}
