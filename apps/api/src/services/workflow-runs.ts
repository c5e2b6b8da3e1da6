import type { StatsBucket } from '@devart/contracts';
import {
  dependentsReady,
  renderPayload,
  resolveVariables,
  type WorkflowDefinitionInput,
  type WorkflowStepInput,
} from '@devart/core';
import {
  appendEvents,
  completeWorkflowRunIfDone,
  type Db,
  endWorkflowRun,
  findRunByIdempotencyKey,
  getWorkflow,
  getWorkflowRun,
  insertTasks,
  insertWorkflowRun,
  listWorkflowRuns,
  lockWorkflowRun,
  type Queryable,
  releaseSteps,
  runSteps,
  runStepViews,
  type TaskRow,
  workflowRunListOrder,
  workflowStats,
} from '@devart/db';
import { decodeCursor, encodeCursor } from './cursor';
import { ConflictError, NotFoundError, ValidationError } from './domain-errors';
import { runEndEvents, runEvent, runTotals, taskEvent } from './lifecycle-events';
import { capabilityWarnings } from './workflows';

/** What `workflows.definition` holds: the body that created the workflow, less name and description. */
interface StoredDefinition {
  variables?: WorkflowDefinitionInput['variables'];
  steps: (WorkflowStepInput & {
    title: string;
    capability?: string;
    max_retries?: number;
    retry_backoff?: { base_ms?: number; cap_ms?: number };
  })[];
}

/** What starts a run: a person's trigger (POST /api/workflows/{id}/trigger) or a delivery (a GitHub webhook). */
export interface RunStart {
  workflowId: string;
  variables: Record<string, unknown>;
  /**
   * Values the platform sets beside the resolved variables, read by templates the same way
   * (`{ github: … }` for a GitHub-started run: `{{vars.github.head_sha}}`); never the caller's.
   */
  context?: Record<string, unknown>;
  idempotencyKey?: string;
  /** The user who triggered it; null when a delivery did. */
  createdBy: string | null;
}

/** A run started (or found again by its Idempotency-Key), with what may not go as expected in it. */
export interface StartedRun {
  run_id: string;
  status: string;
  created: boolean;
  /** Steps whose capability no registered agent serves (the run starts anyway). */
  warnings: string[];
}

/**
 * Starts a run in one transaction: the run (RUNNING, trigger_context = the resolved variables and the context),
 * one task per step linked by workflow_run_id and step_key — the roots TODO and queued, the rest
 * PENDING. The same Idempotency-Key returns the same run.
 */
export async function triggerRun(db: Db, input: RunStart): Promise<StartedRun> {
  return db.transaction((tx) => startRun(tx, input));
}

/** triggerRun inside the caller's transaction, for a caller that records more in it (a webhook delivery). */
export async function startRun(tx: Queryable, input: RunStart): Promise<StartedRun> {
  const workflow = await getWorkflow(tx, input.workflowId);
  if (!workflow) throw new NotFoundError(`No workflow ${input.workflowId}.`);
  const definition = workflow.definition as StoredDefinition;
  const warnings = await capabilityWarnings(tx, definition.steps);
  if (input.idempotencyKey) {
    const existing = await findRunByIdempotencyKey(tx, input.workflowId, input.idempotencyKey);
    if (existing) return { run_id: existing.id, status: existing.status, created: false, warnings };
  }
  const resolved = resolveVariables(definition.variables ?? {}, input.variables);
  if (!resolved.ok) {
    const errors = resolved.problems.map((p) => ({ location: 'body', field: p.path, message: p.message }));
    throw new ValidationError(errors);
  }
  const vars = { ...resolved.values, ...input.context };
  const run = await insertWorkflowRun(tx, {
    workflowId: input.workflowId,
    variables: vars,
    definition,
    idempotencyKey: input.idempotencyKey ?? null,
    createdBy: input.createdBy,
  });
  if (!run) {
    // A concurrent trigger with the same key won the insert; answer with its run.
    const existing = await findRunByIdempotencyKey(tx, input.workflowId, input.idempotencyKey!);
    return { run_id: existing!.id, status: existing!.status, created: false, warnings };
  }
  const steps = await insertTasks(
    tx,
    definition.steps.map((step) => {
      const root = (step.depends_on ?? []).length === 0;
      return {
        title: step.title,
        capability: step.capability ?? null,
        // Roots can only read variables; the others are rendered when their dependencies are done.
        payload: root ? renderPayload(step.payload ?? {}, { vars, steps: {} }) : (step.payload ?? {}),
        max_retries: step.max_retries,
        retry_backoff: step.retry_backoff,
        created_by: input.createdBy,
        status: root ? 'TODO' : 'PENDING',
        workflow_run_id: run.id,
        step_key: step.key,
      };
    }),
  );
  appendEvents(tx, [
    runEvent('workflow_run.started', run, { steps: steps.length }),
    ...steps.map((step) => taskEvent('task.created', step)),
  ]);
  return { run_id: run.id, status: run.status, created: true, warnings };
}

/**
 * Progress after completions, inside their transaction: for each run (locked, in id order so two
 * transactions never wait on each other crosswise), steps whose dependencies are all DONE are
 * rendered from upstream results and queued, then the run completes if every step is DONE.
 */
export async function advanceRuns(
  tx: Queryable,
  completed: TaskRow[],
): Promise<{ duration_seconds: number; total_cost: string | null }[]> {
  const finished: { duration_seconds: number; total_cost: string | null }[] = [];
  const runIds = [
    ...new Set(completed.map((t) => t.workflow_run_id).filter((id): id is string => id !== null)),
  ].sort();
  for (const runId of runIds) {
    const run = await lockWorkflowRun(tx, runId);
    if (run?.status !== 'RUNNING') continue;
    const definition = run.definition as StoredDefinition;
    const steps = await runSteps(tx, runId);
    const byKey = new Map(steps.map((s) => [s.step_key, s]));
    const done = steps.filter((s) => s.status === 'DONE').map((s) => s.step_key);
    const results = Object.fromEntries(
      steps.filter((s) => s.status === 'DONE').map((s) => [s.step_key, { result: s.result }]),
    );
    const ready = dependentsReady(definition.steps, done)
      .map((key) => byKey.get(key))
      .filter((s) => s?.status === 'PENDING');
    const released = await releaseSteps(
      tx,
      ready.map((s) => ({
        id: s!.id,
        payload: renderPayload(s!.payload, { vars: run.trigger_context ?? {}, steps: results }),
      })),
    );
    appendEvents(
      tx,
      released.map((step) => ({
        type: 'workflow_run.step_released' as const,
        workflow_run_id: runId,
        task_id: step.id,
        data: { status: 'TODO', step_key: step.step_key, title: step.title, capability: step.capability },
      })),
    );
    if ((await completeWorkflowRunIfDone(tx, runId)) === 'COMPLETED') {
      const done = await getWorkflowRun(tx, runId);
      if (done) appendEvents(tx, [runEvent('workflow_run.completed', done, runTotals(done))]);
      if (done?.end_time) {
        finished.push({
          duration_seconds: (done.end_time.getTime() - done.start_time.getTime()) / 1000,
          total_cost: done.total_cost,
        });
      }
    }
  }
  return finished;
}

/** A quarantined step fails its run; what had not run is cancelled. */
export async function failRunsOf(tx: Queryable, tasks: TaskRow[]): Promise<void> {
  const runIds = [
    ...new Set(
      tasks.filter((t) => t.status === 'QUARANTINED' && t.workflow_run_id).map((t) => t.workflow_run_id!),
    ),
  ].sort();
  for (const runId of runIds) {
    const quarantined = tasks.find((t) => t.workflow_run_id === runId && t.status === 'QUARANTINED')!;
    appendEvents(
      tx,
      runEndEvents(await endWorkflowRun(tx, runId, 'FAILED'), {
        failed_task_id: quarantined.id,
        failed_step_key: quarantined.step_key,
      }),
    );
  }
}

export async function cancelRun(db: Db, runId: string) {
  return db.transaction(async (tx) => {
    const run = await lockWorkflowRun(tx, runId);
    if (!run) throw new NotFoundError(`No workflow run ${runId}.`);
    if (run.status !== 'RUNNING') {
      throw new ConflictError(`Workflow run ${runId} is ${run.status} and can no longer be cancelled.`);
    }
    appendEvents(tx, runEndEvents(await endWorkflowRun(tx, runId, 'CANCELLED')));
    return runView(tx, runId);
  });
}

/** A run with each step's status, attempts, start, end, duration and cost. */
export async function runView(db: Queryable, runId: string) {
  const run = await getWorkflowRun(db, runId);
  if (!run) throw new NotFoundError(`No workflow run ${runId}.`);
  const { definition: _definition, ...rest } = run;
  return {
    ...rest,
    duration_ms: run.end_time ? run.end_time.getTime() - run.start_time.getTime() : null,
    steps: await runStepViews(db, runId),
  };
}

export async function listRuns(
  db: Db,
  input: { workflowId: string; status?: string; cursor?: string; limit: number },
) {
  if (!(await getWorkflow(db, input.workflowId))) throw new NotFoundError(`No workflow ${input.workflowId}.`);
  const page = await listWorkflowRuns(db, {
    workflowId: input.workflowId,
    status: input.status,
    after: input.cursor ? decodeCursor(input.cursor, workflowRunListOrder) : undefined,
    limit: input.limit,
  });
  return {
    items: page.items.map(({ definition: _d, ...r }) => ({
      ...r,
      duration_ms: r.end_time ? r.end_time.getTime() - r.start_time.getTime() : null,
    })),
    next_cursor: page.next ? encodeCursor(page.next) : null,
  };
}

export async function statsOf(db: Db, workflowId: string, since: Date, bucket: StatsBucket = 'day') {
  if (!(await getWorkflow(db, workflowId))) throw new NotFoundError(`No workflow ${workflowId}.`);
  return workflowStats(db, workflowId, since, bucket);
}
