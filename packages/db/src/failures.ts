import type { Queryable } from './client';
import { qualifiedTaskColumns, type TaskRow, taskColumns } from './tasks';

/** A task row locked for a failure decision. */
export interface LockedTask {
  id: string;
  status: TaskRow['status'];
  agent_id: string | null;
  attempt: number;
  retry_count: number;
  max_retries: number;
  retry_backoff: { base_ms?: number; cap_ms?: number } | null;
}

const lockedColumns = 'id, status, agent_id, attempt, retry_count, max_retries, retry_backoff';

/** Locks one task until the transaction ends, so concurrent reports on it queue up and see its new state. */
export async function lockTask(tx: Queryable, taskId: string): Promise<LockedTask | undefined> {
  const { rows } = await tx.query<LockedTask>(`SELECT ${lockedColumns} FROM tasks WHERE id = $1 FOR UPDATE`, [
    taskId,
  ]);
  return rows[0];
}

/**
 * IN_PROGRESS tasks whose lease lapsed, locked; other reapers skip them. Nothing is reaped until the
 * database server has been up for `graceSeconds`: while it was restarting no agent could heartbeat,
 * so a lease that lapsed meanwhile says nothing about its agent, which gets that long to report.
 */
export async function lockExpiredLeases(
  tx: Queryable,
  limit: number,
  { graceSeconds = 0 }: { graceSeconds?: number } = {},
): Promise<LockedTask[]> {
  const { rows } = await tx.query<LockedTask>(
    `SELECT ${lockedColumns} FROM tasks
     WHERE status = 'IN_PROGRESS' AND lease_expires_at < now()
       AND now() >= pg_postmaster_start_time() + make_interval(secs => $2)
     ORDER BY lease_expires_at LIMIT $1
     FOR UPDATE SKIP LOCKED`,
    [limit, graceSeconds],
  );
  return rows;
}

export interface FailureToApply {
  task_id: string;
  /** The attempt that failed (the one to close in task_attempts). */
  attempt: number;
  /** The agent that held it, to set IDLE unless it holds others. */
  agent_id: string | null;
  retry_count: number;
  /** TODO to retry after delay_ms; QUARANTINED to stop. */
  status: 'TODO' | 'QUARANTINED';
  delay_ms: number;
  error: string;
  outcome: 'FAILED' | 'LEASE_EXPIRED';
  /** What the agent added (e.g. a trimmed stack). */
  details?: Record<string, unknown> | null;
}

/**
 * Applies decided failures to locked tasks in one statement: counters and last_error, the attempt
 * closed, the agent released, and the next message queued in the outbox — a retry to its task queue,
 * due after its backoff, or a quarantined task to the dead-letter queue.
 */
export async function applyFailures(tx: Queryable, failures: FailureToApply[]): Promise<TaskRow[]> {
  if (failures.length === 0) return [];
  const { rows } = await tx.query<TaskRow>(
    `WITH f AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS f(task_id uuid, attempt int, agent_id uuid, retry_count int,
         status text, delay_ms float8, error text, outcome text, details jsonb)
     ), failed AS (
       UPDATE tasks t SET
         status = f.status,
         retry_count = f.retry_count,
         last_error = f.error,
         agent_id = NULL,
         lease_expires_at = NULL,
         attempt = CASE WHEN f.status = 'TODO' THEN t.attempt + 1 ELSE t.attempt END,
         next_attempt_at = CASE WHEN f.status = 'TODO' THEN now() + make_interval(secs => f.delay_ms / 1000) END,
         completed_at = CASE WHEN f.status = 'QUARANTINED' THEN now() END,
         updated_at = now()
       FROM f WHERE t.id = f.task_id AND t.status = 'IN_PROGRESS' AND t.attempt = f.attempt
       RETURNING ${qualifiedTaskColumns}
     ), closed AS (
       UPDATE task_attempts a SET ended_at = now(), outcome = f.outcome, error = f.error, details = f.details
       FROM f WHERE a.task_id = f.task_id AND a.attempt = f.attempt AND f.task_id IN (SELECT id FROM failed)
     ), queued AS (
       INSERT INTO outbox (topic, payload, available_at)
       SELECT CASE WHEN status = 'QUARANTINED' THEN 'tasks.dead' ELSE devart_task_topic(capability) END,
              CASE WHEN status = 'QUARANTINED'
                THEN devart_task_message(id, attempt, capability, title, payload, workflow_run_id)
                  || jsonb_build_object('last_error', last_error, 'retry_count', retry_count)
                ELSE devart_task_message(id, attempt, capability, title, payload, workflow_run_id) END,
              coalesce(next_attempt_at, now())
       FROM failed
     ), freed AS (
       UPDATE agents SET status = CASE WHEN EXISTS (
           SELECT 1 FROM tasks WHERE tasks.agent_id = agents.id AND tasks.status = 'IN_PROGRESS'
             AND tasks.id NOT IN (SELECT id FROM failed)
         ) THEN 'BUSY' ELSE 'IDLE' END
       WHERE id IN (SELECT agent_id FROM f WHERE task_id IN (SELECT id FROM failed))
     )
     SELECT * FROM failed`,
    [JSON.stringify(failures)],
  );
  return rows;
}

export interface TaskAttemptRow {
  task_id: string;
  attempt: number;
  agent_id: string | null;
  started_at: Date;
  ended_at: Date | null;
  outcome: 'DONE' | 'FAILED' | 'LEASE_EXPIRED' | 'CANCELLED' | null;
  error: string | null;
  details: unknown;
}

export async function listTaskAttempts(db: Queryable, taskId: string): Promise<TaskAttemptRow[]> {
  const { rows } = await db.query<TaskAttemptRow>(
    `SELECT task_id, attempt, agent_id, started_at, ended_at, outcome, error, details
     FROM task_attempts WHERE task_id = $1 ORDER BY attempt`,
    [taskId],
  );
  return rows;
}

/**
 * QUARANTINED → TODO as a fresh attempt: counters reset, history kept, optionally a new payload.
 * Undefined when the task is not quarantined (or does not exist).
 */
export async function requeueTask(
  db: Queryable,
  taskId: string,
  payload?: unknown,
): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>(
    `WITH requeued AS (
       UPDATE tasks SET status = 'TODO', retry_count = 0, last_error = NULL, next_attempt_at = NULL,
         completed_at = NULL, agent_id = NULL, attempt = attempt + 1,
         payload = coalesce($2::jsonb, payload), updated_at = now()
       WHERE id = $1 AND status = 'QUARANTINED'
       RETURNING ${taskColumns}
     ), queued AS (
       INSERT INTO outbox (topic, payload)
       SELECT devart_task_topic(capability), devart_task_message(id, attempt, capability, title, payload, workflow_run_id)
       FROM requeued
     )
     SELECT * FROM requeued`,
    [taskId, payload === undefined ? null : JSON.stringify(payload)],
  );
  return rows[0];
}

/**
 * Quarantines a TODO task whose message the broker dead-lettered (its deliveries kept killing
 * agents). Only the attempt the message carried, so a message from an older attempt changes nothing.
 */
export async function quarantineDeadLettered(
  db: Queryable,
  input: { taskId: string; attempt: number; error: string },
): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>(
    `UPDATE tasks SET status = 'QUARANTINED', last_error = $3, retry_count = retry_count + 1,
       completed_at = now(), updated_at = now()
     WHERE id = $1 AND attempt = $2 AND status = 'TODO'
     RETURNING ${taskColumns}`,
    [input.taskId, input.attempt, input.error],
  );
  return rows[0];
}
