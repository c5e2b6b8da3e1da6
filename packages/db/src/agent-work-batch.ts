import type { TaskStatus } from '@devart/contracts';
import type { Queryable } from './client';
import { flushEvents, taskEventsCtes } from './events';
import { qualifiedTaskColumns, type TaskRow } from './tasks';

/** Per-item answer of a batched agent report, as the single-task calls would have answered. */
export type BatchItemOutcome =
  | { task_id: string; outcome: 'ok'; task: TaskRow }
  | { task_id: string; outcome: 'not_found' }
  | { task_id: string; outcome: 'conflict'; status: TaskStatus; reason: string }
  | { task_id: string; outcome: 'forbidden'; reason: string };

interface Snapshot {
  id: string;
  status: TaskStatus;
  attempt: number;
  agent_id: string | null;
  capability: string | null;
  /** Set while a retry's backoff runs (next_attempt_at still ahead, by the database's clock). */
  not_due_until: Date | null;
}

async function snapshots(db: Queryable, ids: string[]): Promise<Map<string, Snapshot>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<Snapshot>(
    `SELECT id, status, attempt, agent_id, capability,
            CASE WHEN next_attempt_at > now() THEN next_attempt_at END AS not_due_until
     FROM tasks WHERE id = ANY ($1::uuid[])`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * Many fenced claims of one agent in one statement (one commit for the whole batch). A task locked
 * by a concurrent claim is skipped rather than waited for: that claim is taking it anyway. The
 * same statement appends task.started for each task it started (taskEventsCtes). A retry is not
 * claimable before its next_attempt_at: its message is published only then, so a start before it
 * comes from a caller skipping the backoff, and is refused naming the time.
 */
export async function startTasks(
  db: Queryable,
  input: {
    agentId: string;
    agentCapabilities: readonly string[];
    items: { task_id: string; attempt?: number }[];
    leaseSeconds: number;
  },
): Promise<BatchItemOutcome[]> {
  await flushEvents(db);
  const { rows } = await db.query<TaskRow>(
    `WITH req AS (
       SELECT DISTINCT ON (r.task_id) r.task_id, r.attempt, e.ord
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(item, ord),
         LATERAL jsonb_to_record(e.item) AS r(task_id uuid, attempt int)
       ORDER BY r.task_id, e.ord
     ), agent AS (
       SELECT id, capabilities FROM agents WHERE id = $2 AND revoked_at IS NULL
     ), claimable AS (
       SELECT t.id FROM tasks t JOIN req ON req.task_id = t.id CROSS JOIN agent
       WHERE t.status = 'TODO' AND (req.attempt IS NULL OR t.attempt = req.attempt)
         AND (t.capability IS NULL OR t.capability = ANY (agent.capabilities))
         AND (t.next_attempt_at IS NULL OR t.next_attempt_at <= now())
       ORDER BY t.id
       FOR UPDATE OF t SKIP LOCKED
     ), started AS (
       UPDATE tasks t SET status = 'IN_PROGRESS', agent_id = $2, started_at = now(), updated_at = now(),
         lease_expires_at = now() + make_interval(secs => $3::float8)
       FROM claimable WHERE t.id = claimable.id
       RETURNING ${qualifiedTaskColumns}
     ), opened AS (
       INSERT INTO task_attempts (task_id, attempt, agent_id)
       SELECT id, attempt, agent_id FROM started
       ON CONFLICT (task_id, attempt) DO NOTHING
       RETURNING 1
     ), busy AS (
       UPDATE agents SET status = 'BUSY'
       WHERE id = $2 AND status <> 'BUSY' AND EXISTS (SELECT 1 FROM started)
       RETURNING 1
     ), ${taskEventsCtes({ type: 'task.started', source: 'started', request: 'req', after: ['started', 'opened', 'busy'] })}
     SELECT started.* FROM started LEFT JOIN events_notified ON true`,
    [JSON.stringify(input.items), input.agentId, input.leaseSeconds],
  );
  const started = new Map(rows.map((r) => [r.id, r]));
  const missing = input.items.filter((i) => !started.has(i.task_id)).map((i) => i.task_id);
  const current = await snapshots(db, missing);
  return input.items.map((item): BatchItemOutcome => {
    const task = started.get(item.task_id);
    if (task) return { task_id: item.task_id, outcome: 'ok', task };
    const now = current.get(item.task_id);
    if (!now) return { task_id: item.task_id, outcome: 'not_found' };
    if (now.status !== 'TODO') {
      return {
        task_id: item.task_id,
        outcome: 'conflict',
        status: now.status,
        reason: `the task is ${now.status}, not TODO`,
      };
    }
    if (item.attempt !== undefined && now.attempt !== item.attempt) {
      return {
        task_id: item.task_id,
        outcome: 'conflict',
        status: now.status,
        reason: `the message is for attempt ${item.attempt}; the task is at attempt ${now.attempt}`,
      };
    }
    if (now.capability !== null && !input.agentCapabilities.includes(now.capability)) {
      return {
        task_id: item.task_id,
        outcome: 'forbidden',
        reason: `the agent lacks the capability "${now.capability}"`,
      };
    }
    if (now.not_due_until !== null) {
      return {
        task_id: item.task_id,
        outcome: 'conflict',
        status: now.status,
        reason: `the task is not due until ${now.not_due_until.toISOString()} (next_attempt_at): a retry waits out its backoff`,
      };
    }
    // Still TODO at that attempt: another claim held its row a moment ago.
    return {
      task_id: item.task_id,
      outcome: 'conflict',
      status: now.status,
      reason: 'another claim was taking it',
    };
  });
}

/** Whether completeTasks appended task.done for these rows it completed (no workflow step among them). */
export function doneEventsRecorded(done: readonly TaskRow[]): boolean {
  return done.every((task) => task.workflow_run_id === null);
}

/**
 * Many completions of one agent in one statement: each refused unless this agent still holds that
 * attempt. The same statement appends task.done for each task it completed (taskEventsCtes),
 * unless one of them is a workflow step (see doneEventsRecorded): the caller then appends them
 * itself, since advancing the run locks it and the events lock must come last.
 */
export async function completeTasks(
  db: Queryable,
  input: {
    agentId: string;
    items: { task_id: string; attempt?: number; result: unknown; cost: string | null }[];
  },
): Promise<BatchItemOutcome[]> {
  await flushEvents(db);
  const { rows } = await db.query<TaskRow>(
    `WITH req AS (
       SELECT DISTINCT ON (r.task_id) r.task_id, r.attempt, r.result, r.cost, e.ord
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(item, ord),
         LATERAL jsonb_to_record(e.item) AS r(task_id uuid, attempt int, result jsonb, cost numeric)
       ORDER BY r.task_id, e.ord
     ), done AS (
       UPDATE tasks t SET status = 'DONE', result = req.result, cost = req.cost, completed_at = now(),
         updated_at = now(), lease_expires_at = NULL
       FROM req
       WHERE t.id = req.task_id AND t.status = 'IN_PROGRESS' AND t.agent_id = $2
         AND (req.attempt IS NULL OR t.attempt = req.attempt)
       RETURNING ${qualifiedTaskColumns}
     ), closed AS (
       UPDATE task_attempts a SET ended_at = now(), outcome = 'DONE'
       FROM done WHERE a.task_id = done.id AND a.attempt = done.attempt
       RETURNING 1
     ), freed AS (
       UPDATE agents SET status = 'IDLE'
       WHERE id = $2 AND status <> 'IDLE' AND EXISTS (SELECT 1 FROM done)
         AND NOT EXISTS (
           SELECT 1 FROM tasks WHERE agent_id = $2 AND status = 'IN_PROGRESS' AND id NOT IN (SELECT id FROM done)
         )
       RETURNING 1
     ), ${taskEventsCtes({
       type: 'task.done',
       source: 'done',
       request: 'req',
       after: ['done', 'closed', 'freed'],
       only: 'NOT EXISTS (SELECT 1 FROM done WHERE workflow_run_id IS NOT NULL)',
     })}
     SELECT done.* FROM done LEFT JOIN events_notified ON true`,
    [JSON.stringify(input.items.map((i) => ({ ...i, result: i.result ?? null }))), input.agentId],
  );
  const done = new Map(rows.map((r) => [r.id, r]));
  const missing = input.items.filter((i) => !done.has(i.task_id)).map((i) => i.task_id);
  const current = await snapshots(db, missing);
  return input.items.map((item): BatchItemOutcome => {
    const task = done.get(item.task_id);
    if (task) return { task_id: item.task_id, outcome: 'ok', task };
    const now = current.get(item.task_id);
    if (!now) return { task_id: item.task_id, outcome: 'not_found' };
    if (now.status !== 'IN_PROGRESS') {
      return {
        task_id: item.task_id,
        outcome: 'conflict',
        status: now.status,
        reason: `the task is ${now.status}`,
      };
    }
    if (now.agent_id !== input.agentId) {
      return {
        task_id: item.task_id,
        outcome: 'conflict',
        status: now.status,
        reason: 'another agent holds the task now',
      };
    }
    return {
      task_id: item.task_id,
      outcome: 'conflict',
      status: now.status,
      reason: `this is attempt ${now.attempt}; the agent reported on attempt ${item.attempt}`,
    };
  });
}
