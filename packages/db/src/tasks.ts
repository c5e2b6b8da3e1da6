import type { TaskStatus } from '@devart/contracts';
import type { Queryable } from './client';
import { flushEvents, taskEventsCtes } from './events';
import { keysetPage, keysetQuery, newestFirst } from './keyset';

export interface TaskRow {
  id: string;
  title: string;
  description: string | null;
  capability: string | null;
  payload: unknown;
  priority: number;
  status: TaskStatus;
  agent_id: string | null;
  result: unknown;
  cost: string | null;
  retry_count: number;
  max_retries: number;
  last_error: string | null;
  workflow_run_id: string | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  attempt: number;
  lease_expires_at: Date | null;
  next_attempt_at: Date | null;
  step_key: string | null;
  retry_backoff: { base_ms?: number; cap_ms?: number } | null;
}

export const taskColumns =
  'id, title, description, capability, payload, priority, status, agent_id, result, cost, retry_count, ' +
  'max_retries, last_error, workflow_run_id, created_by, created_at, updated_at, started_at, completed_at, ' +
  'attempt, lease_expires_at, next_attempt_at, step_key, retry_backoff';

/** The same columns qualified with the alias `t`, for statements that join or update `tasks t`. */
export const qualifiedTaskColumns = taskColumns.replace(/(^|, )/g, '$1t.');

export interface NewTask {
  title: string;
  description?: string | null;
  capability?: string | null;
  payload?: unknown;
  priority?: number;
  max_retries?: number;
  retry_backoff?: { base_ms?: number; cap_ms?: number };
  created_by: string | null;
  /** PENDING waits for its workflow dependencies and is not queued; default TODO. */
  status?: 'TODO' | 'PENDING';
  workflow_run_id?: string;
  step_key?: string;
}

/**
 * Inserts TODO tasks and queues their first attempt in the outbox, in one statement (one round
 * trip however many): a task is never stored without its message, nor published without its row.
 */
export async function insertTasks(db: Queryable, tasks: NewTask[]): Promise<TaskRow[]> {
  return insertTaskRows(db, tasks, false);
}

/**
 * insertTasks that also appends task.created for each task in the same statement (see
 * taskEventsCtes), in the order given. The caller's transaction must take no lock after it.
 */
export async function insertTasksRecorded(db: Queryable, tasks: NewTask[]): Promise<TaskRow[]> {
  return insertTaskRows(db, tasks, true);
}

async function insertTaskRows(db: Queryable, tasks: NewTask[], recorded: boolean): Promise<TaskRow[]> {
  if (tasks.length === 0) return [];
  if (recorded) await flushEvents(db);
  const { rows } = await db.query<TaskRow>(
    `WITH inserted AS (
       INSERT INTO tasks (title, description, capability, payload, priority, max_retries, retry_backoff, created_by,
         status, attempt, workflow_run_id, step_key)
       SELECT t.title, t.description, t.capability, coalesce(t.payload, '{}'::jsonb), coalesce(t.priority, 0),
              coalesce(t.max_retries, 3), t.retry_backoff, t.created_by, coalesce(t.status, 'TODO'),
              CASE WHEN coalesce(t.status, 'TODO') = 'TODO' THEN 1 ELSE 0 END, t.workflow_run_id, t.step_key
       FROM jsonb_to_recordset($1::jsonb)
         AS t(title text, description text, capability text, payload jsonb, priority int, max_retries int,
              retry_backoff jsonb, created_by uuid, status text, workflow_run_id uuid, step_key text, ord bigint)
       ORDER BY ord
       RETURNING ${taskColumns}
     ), queued AS (
       INSERT INTO outbox (topic, payload)
       SELECT devart_task_topic(capability),
              devart_task_message(id, attempt, capability, title, payload, workflow_run_id)
       FROM inserted WHERE status = 'TODO'
       RETURNING 1
     )${
       recorded
         ? `, ${taskEventsCtes({ type: 'task.created', source: 'inserted', after: ['inserted', 'queued'] })}
     SELECT inserted.* FROM inserted LEFT JOIN events_notified ON true`
         : `
     SELECT * FROM inserted`
     }`,
    [JSON.stringify(tasks.map((task, ord) => ({ ...task, ord })))],
  );
  return rows;
}

export async function getTask(db: Queryable, id: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>(`SELECT ${taskColumns} FROM tasks WHERE id = $1`, [id]);
  return rows[0];
}

export interface TaskFilter {
  status?: TaskStatus;
  capability?: string;
  workflow_run_id?: string;
  /** Exclusive position from a previous page (`next`): created_at as text at full precision, and the id. */
  after?: string[];
  limit: number;
}

export interface TaskPage {
  items: TaskRow[];
  /** Position of the last row when more rows may follow. */
  next?: string[];
}

/** The order of the task list; a cursor carries a position in it. */
export const taskListOrder = newestFirst('created_at');

/** Newest first; keyset pagination so pages neither skip nor repeat rows. */
export async function listTasks(db: Queryable, filter: TaskFilter): Promise<TaskPage> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.status) where.push(`status = ${param(filter.status)}`);
  if (filter.capability) where.push(`capability = ${param(filter.capability)}`);
  if (filter.workflow_run_id) where.push(`workflow_run_id = ${param(filter.workflow_run_id)}`);
  const page = keysetQuery(taskListOrder, filter.after, param);
  const { rows } = await db.query<TaskRow & { keyset_position: string[] }>(
    `SELECT ${taskColumns}, ${page.position} FROM tasks
     WHERE ${[...where, page.after].join(' AND ')}
     ORDER BY ${page.orderBy} LIMIT ${param(filter.limit + 1)}`,
    params,
  );
  return keysetPage(rows, filter.limit);
}

export type CancelOutcome =
  | {
      outcome: 'cancelled';
      task: TaskRow /** The agent that held it, if it was IN_PROGRESS. */;
      previous_agent_id: string | null;
    }
  | { outcome: 'not_found' }
  | { outcome: 'conflict'; status: TaskStatus };

/**
 * Cancels a task that has not finished. One guarded statement decides races with agents: a task
 * that became DONE a moment earlier is reported as a conflict, never overwritten. The agent that
 * held an IN_PROGRESS task is set IDLE in the same statement.
 */
export async function cancelTask(db: Queryable, id: string): Promise<CancelOutcome> {
  const { rows } = await db.query<TaskRow & { previous_agent_id: string | null }>(
    `WITH previous AS (
       SELECT id, agent_id FROM tasks WHERE id = $1 FOR UPDATE
     ), cancelled AS (
       UPDATE tasks t SET status = 'CANCELLED', agent_id = NULL, lease_expires_at = NULL, completed_at = now(),
         updated_at = now()
       FROM previous
       WHERE t.id = previous.id AND t.status IN ('PENDING', 'TODO', 'IN_PROGRESS')
       RETURNING ${qualifiedTaskColumns}, previous.agent_id AS previous_agent_id
     ), closed AS (
       UPDATE task_attempts a SET ended_at = now(), outcome = 'CANCELLED'
       FROM cancelled WHERE a.task_id = cancelled.id AND a.attempt = cancelled.attempt AND a.ended_at IS NULL
     ), freed AS (
       UPDATE agents SET status = CASE WHEN EXISTS (
           SELECT 1 FROM tasks WHERE agent_id = agents.id AND status = 'IN_PROGRESS' AND id <> $1
         ) THEN 'BUSY' ELSE 'IDLE' END
       WHERE id = (SELECT previous_agent_id FROM cancelled) AND status = 'BUSY'
     )
     SELECT ${taskColumns}, previous_agent_id FROM cancelled`,
    [id],
  );
  if (rows[0]) {
    const { previous_agent_id, ...task } = rows[0];
    return { outcome: 'cancelled', task, previous_agent_id };
  }
  const existing = await getTask(db, id);
  return existing ? { outcome: 'conflict', status: existing.status } : { outcome: 'not_found' };
}

/** Tasks counted by status and capability (the metrics read it at scrape time). */
export async function countTasksByStatus(
  db: Queryable,
): Promise<{ status: TaskStatus; capability: string | null; n: number }[]> {
  const { rows } = await db.query<{ status: TaskStatus; capability: string | null; n: number }>(
    'SELECT status, capability, count(*)::int AS n FROM tasks GROUP BY status, capability',
  );
  return rows;
}
