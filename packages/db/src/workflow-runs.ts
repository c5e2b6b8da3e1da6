import type { StatsBucket, WorkflowRunStatus } from '@devart/contracts';
import type { Queryable } from './client';
import { keysetPage, keysetQuery, newestFirst } from './keyset';
import { type TaskRow, taskColumns } from './tasks';

export interface WorkflowRunRow {
  id: string;
  workflow_id: string;
  status: WorkflowRunStatus;
  trigger_context: Record<string, unknown> | null;
  start_time: Date;
  end_time: Date | null;
  total_cost: string | null;
  definition: unknown;
  idempotency_key: string | null;
  created_by: string | null;
}

const runColumns =
  'id, workflow_id, status, trigger_context, start_time, end_time, total_cost, definition, idempotency_key, created_by';

/** Inserts a RUNNING run; undefined when a run with the same idempotency key exists already. */
export async function insertWorkflowRun(
  db: Queryable,
  input: {
    workflowId: string;
    variables: Record<string, unknown>;
    definition: unknown;
    idempotencyKey: string | null;
    /** Null for a run a delivery started (a GitHub webhook). */
    createdBy: string | null;
  },
): Promise<WorkflowRunRow | undefined> {
  const { rows } = await db.query<WorkflowRunRow>(
    `INSERT INTO workflow_runs (workflow_id, status, trigger_context, definition, idempotency_key, created_by)
     VALUES ($1, 'RUNNING', $2::jsonb, $3::jsonb, $4, $5)
     ON CONFLICT (workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING ${runColumns}`,
    [
      input.workflowId,
      JSON.stringify(input.variables),
      JSON.stringify(input.definition),
      input.idempotencyKey,
      input.createdBy,
    ],
  );
  return rows[0];
}

export async function findRunByIdempotencyKey(
  db: Queryable,
  workflowId: string,
  key: string,
): Promise<WorkflowRunRow | undefined> {
  const { rows } = await db.query<WorkflowRunRow>(
    `SELECT ${runColumns} FROM workflow_runs WHERE workflow_id = $1 AND idempotency_key = $2`,
    [workflowId, key],
  );
  return rows[0];
}

export async function getWorkflowRun(db: Queryable, runId: string): Promise<WorkflowRunRow | undefined> {
  const { rows } = await db.query<WorkflowRunRow>(`SELECT ${runColumns} FROM workflow_runs WHERE id = $1`, [
    runId,
  ]);
  return rows[0];
}

/** Locks a run for the rest of the transaction: progress of one run is decided one completion at a time. */
export async function lockWorkflowRun(db: Queryable, runId: string): Promise<WorkflowRunRow | undefined> {
  const { rows } = await db.query<WorkflowRunRow>(
    `SELECT ${runColumns} FROM workflow_runs WHERE id = $1 FOR UPDATE`,
    [runId],
  );
  return rows[0];
}

export interface RunStepRow {
  id: string;
  step_key: string;
  status: string;
  result: unknown;
  payload: unknown;
}

export async function runSteps(db: Queryable, runId: string): Promise<RunStepRow[]> {
  const { rows } = await db.query<RunStepRow>(
    'SELECT id, step_key, status, result, payload FROM tasks WHERE workflow_run_id = $1',
    [runId],
  );
  return rows;
}

/** A step released by releaseSteps. */
export interface ReleasedStep {
  id: string;
  attempt: number;
  capability: string | null;
  title: string;
  step_key: string;
  workflow_run_id: string;
}

/** PENDING → TODO with their rendered payloads, queued in the outbox; only rows still PENDING change. */
export async function releaseSteps(
  db: Queryable,
  released: { id: string; payload: unknown }[],
): Promise<ReleasedStep[]> {
  if (released.length === 0) return [];
  const { rows } = await db.query<ReleasedStep>(
    `WITH r AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, payload jsonb)
     ), todo AS (
       UPDATE tasks t SET status = 'TODO', payload = r.payload, attempt = 1, updated_at = now()
       FROM r WHERE t.id = r.id AND t.status = 'PENDING'
       RETURNING t.id, t.attempt, t.capability, t.title, t.payload, t.workflow_run_id, t.step_key
     ), queued AS (
       INSERT INTO outbox (topic, payload)
       SELECT devart_task_topic(capability), devart_task_message(id, attempt, capability, title, payload, workflow_run_id)
       FROM todo
     )
     SELECT id, attempt, capability, title, step_key, workflow_run_id FROM todo`,
    [JSON.stringify(released)],
  );
  return rows;
}

/** Runs the completion check (PL/pgSQL, under the run's lock); returns the run's status after it. */
export async function completeWorkflowRunIfDone(db: Queryable, runId: string): Promise<string> {
  const { rows } = await db.query<{ status: string }>('SELECT devart_complete_workflow_run($1) AS status', [
    runId,
  ]);
  return rows[0]!.status;
}

/** What endWorkflowRun did: nothing (the run was no longer RUNNING), or the run ended and the steps it cancelled. */
export type EndedRun =
  | { outcome: 'not_running'; status: string | undefined }
  | {
      outcome: 'ended';
      run: WorkflowRunRow;
      /** The steps it cancelled, each with the agent that held it if it was IN_PROGRESS. */
      cancelled: (TaskRow & { previous_agent_id: string | null })[];
    };

/**
 * Ends a RUNNING run as FAILED or CANCELLED, cancelling the steps that had not finished
 * (devart_end_workflow_run, migration 0009), and reports what changed so the caller can record it.
 */
export async function endWorkflowRun(
  db: Queryable,
  runId: string,
  status: 'FAILED' | 'CANCELLED',
): Promise<EndedRun> {
  const locked = await lockWorkflowRun(db, runId);
  if (locked?.status !== 'RUNNING') return { outcome: 'not_running', status: locked?.status };
  // Under the run's lock the function cancels exactly these (a step that finishes meanwhile is
  // left out below by its status).
  const { rows: unfinished } = await db.query<{ id: string; agent_id: string | null }>(
    `SELECT id, agent_id FROM tasks WHERE workflow_run_id = $1 AND status IN ('PENDING', 'TODO', 'IN_PROGRESS')`,
    [runId],
  );
  await db.query('SELECT devart_end_workflow_run($1, $2)', [runId, status]);
  const holders = new Map(unfinished.map((t) => [t.id, t.agent_id]));
  const { rows: cancelled } = await db.query<TaskRow>(
    `SELECT ${taskColumns} FROM tasks WHERE id = ANY ($1::uuid[]) AND status = 'CANCELLED' ORDER BY id`,
    [[...holders.keys()]],
  );
  const run = (await getWorkflowRun(db, runId))!;
  return {
    outcome: 'ended',
    run,
    cancelled: cancelled.map((t) => ({ ...t, previous_agent_id: holders.get(t.id) ?? null })),
  };
}

export interface RunStepView {
  task_id: string;
  step_key: string;
  title: string;
  status: string;
  attempts: number;
  retry_count: number;
  started_at: Date | null;
  completed_at: Date | null;
  duration_ms: number | null;
  cost: string | null;
  last_error: string | null;
}

/** Each step of a run with its timing and cost, in the order the definition lists them. */
export async function runStepViews(db: Queryable, runId: string): Promise<RunStepView[]> {
  const { rows } = await db.query<RunStepView>(
    `SELECT t.id AS task_id, t.step_key, t.title, t.status,
            (SELECT count(*)::int FROM task_attempts a WHERE a.task_id = t.id) AS attempts,
            t.retry_count, t.started_at, t.completed_at,
            CASE WHEN t.completed_at IS NOT NULL AND t.started_at IS NOT NULL
                 THEN (extract(epoch FROM t.completed_at - t.started_at) * 1000)::float8 END AS duration_ms,
            t.cost::text AS cost, t.last_error
     FROM tasks t JOIN workflow_runs r ON r.id = t.workflow_run_id
     WHERE t.workflow_run_id = $1
     ORDER BY (SELECT ord FROM jsonb_array_elements(r.definition -> 'steps') WITH ORDINALITY AS s(step, ord)
               WHERE s.step ->> 'key' = t.step_key)`,
    [runId],
  );
  return rows;
}

/** The order of a workflow's run list (by start time); a cursor carries a position in it. */
export const workflowRunListOrder = newestFirst('start_time');

export async function listWorkflowRuns(
  db: Queryable,
  input: { workflowId: string; status?: string; after?: string[]; limit: number },
): Promise<{ items: WorkflowRunRow[]; next?: string[] }> {
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const where = [`workflow_id = ${param(input.workflowId)}`];
  if (input.status) where.push(`status = ${param(input.status)}`);
  const page = keysetQuery(workflowRunListOrder, input.after, param);
  const { rows } = await db.query<WorkflowRunRow & { keyset_position: string[] }>(
    `SELECT ${runColumns}, ${page.position} FROM workflow_runs WHERE ${[...where, page.after].join(' AND ')}
     ORDER BY ${page.orderBy} LIMIT ${param(input.limit + 1)}`,
    params,
  );
  return keysetPage(rows, input.limit);
}

export interface WorkflowStats {
  runs: number;
  completed: number;
  failed: number;
  cancelled: number;
  running: number;
  /** completed / (completed + failed + cancelled); null before any run finished. */
  success_rate: number | null;
  /** Over COMPLETED runs. */
  duration_ms: { p50: number | null; p95: number | null };
  /** mean over COMPLETED runs; total over every run (exact decimals, as strings). */
  cost: { mean: string | null; total: string | null };
  steps: {
    key: string;
    p50_duration_ms: number | null;
    failure_rate: number | null;
    mean_retries: number | null;
  }[];
  /** The same runs by start time (UTC buckets), oldest first; only buckets with runs, the newest 500. */
  over_time: { bucket: StatsBucket; points: WorkflowStatsPoint[] };
}

export interface WorkflowStatsPoint {
  start: Date;
  runs: number;
  completed: number;
  failed: number;
  cancelled: number;
  duration_ms: { p50: number | null; p95: number | null };
  /** p50/p95 over COMPLETED runs, total over every run (exact decimals). */
  cost: { p50: string | null; p95: string | null; total: string | null };
}

/** How many points over_time keeps: a year of days, three weeks of hours, eight hours of minutes. */
const maxStatsPoints = 500;

/** Run and step statistics of a workflow since a time, computed in SQL (percentile_cont). */
export async function workflowStats(
  db: Queryable,
  workflowId: string,
  since: Date,
  bucket: StatsBucket = 'day',
): Promise<WorkflowStats> {
  const { rows } = await db.query<
    Omit<WorkflowStats, 'steps' | 'duration_ms' | 'cost'> & {
      p50: number | null;
      p95: number | null;
      mean_cost: string | null;
      total_cost: string | null;
    }
  >(
    `SELECT count(*)::int AS runs,
            count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
            count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
            count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled,
            count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
            (count(*) FILTER (WHERE status = 'COMPLETED'))::float8
              / nullif(count(*) FILTER (WHERE status <> 'RUNNING'), 0) AS success_rate,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM end_time - start_time) * 1000)
              FILTER (WHERE status = 'COMPLETED') AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM end_time - start_time) * 1000)
              FILTER (WHERE status = 'COMPLETED') AS p95,
            (avg(total_cost) FILTER (WHERE status = 'COMPLETED'))::text AS mean_cost,
            sum(total_cost)::text AS total_cost
     FROM workflow_runs WHERE workflow_id = $1 AND start_time >= $2`,
    [workflowId, since],
  );
  const { rows: steps } = await db.query<WorkflowStats['steps'][number]>(
    `SELECT t.step_key AS key,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.completed_at - t.started_at) * 1000)
              FILTER (WHERE t.status = 'DONE') AS p50_duration_ms,
            (count(*) FILTER (WHERE t.status = 'QUARANTINED'))::float8
              / nullif(count(*) FILTER (WHERE t.status IN ('DONE', 'QUARANTINED')), 0) AS failure_rate,
            avg(t.retry_count)::float8 AS mean_retries
     FROM tasks t JOIN workflow_runs r ON r.id = t.workflow_run_id
     WHERE r.workflow_id = $1 AND r.start_time >= $2
     GROUP BY t.step_key ORDER BY t.step_key`,
    [workflowId, since],
  );
  const r = rows[0]!;
  return {
    runs: r.runs,
    completed: r.completed,
    failed: r.failed,
    cancelled: r.cancelled,
    running: r.running,
    success_rate: r.success_rate,
    duration_ms: { p50: r.p50, p95: r.p95 },
    cost: { mean: r.mean_cost, total: r.total_cost },
    steps,
    over_time: { bucket, points: await workflowStatsOverTime(db, workflowId, since, bucket) },
  };
}

/**
 * The runs of a workflow grouped by the UTC minute, hour or day they started, oldest first. Cost
 * percentiles are percentile_disc, so each is one run's exact cost rather than a float between two.
 */
export async function workflowStatsOverTime(
  db: Queryable,
  workflowId: string,
  since: Date,
  bucket: StatsBucket,
): Promise<WorkflowStatsPoint[]> {
  const { rows } = await db.query<{
    start: Date;
    runs: number;
    completed: number;
    failed: number;
    cancelled: number;
    p50: number | null;
    p95: number | null;
    cost_p50: string | null;
    cost_p95: string | null;
    cost_total: string | null;
  }>(
    `SELECT date_trunc($3::text, start_time, 'UTC') AS start,
            count(*)::int AS runs,
            count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
            count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
            count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM end_time - start_time) * 1000)
              FILTER (WHERE status = 'COMPLETED') AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM end_time - start_time) * 1000)
              FILTER (WHERE status = 'COMPLETED') AS p95,
            (percentile_disc(0.5) WITHIN GROUP (ORDER BY total_cost) FILTER (WHERE status = 'COMPLETED'))::text
              AS cost_p50,
            (percentile_disc(0.95) WITHIN GROUP (ORDER BY total_cost) FILTER (WHERE status = 'COMPLETED'))::text
              AS cost_p95,
            sum(total_cost)::text AS cost_total
     FROM workflow_runs WHERE workflow_id = $1 AND start_time >= $2
     GROUP BY 1 ORDER BY 1 DESC LIMIT ${maxStatsPoints}`,
    [workflowId, since, bucket],
  );
  return rows.reverse().map((r) => ({
    start: r.start,
    runs: r.runs,
    completed: r.completed,
    failed: r.failed,
    cancelled: r.cancelled,
    duration_ms: { p50: r.p50, p95: r.p95 },
    cost: { p50: r.cost_p50, p95: r.cost_p95, total: r.cost_total },
  }));
}
