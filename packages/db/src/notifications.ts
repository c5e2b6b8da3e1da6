import type { Queryable } from './client';

/** A workflow's `notify` settings, as its definition (copied into each run) holds them. */
export interface WorkflowNotifySettings {
  on_complete?: boolean;
  on_failure?: boolean;
}

/** What a task's notification says, read when it is sent. */
export interface TaskNotice {
  id: string;
  title: string;
  capability: string | null;
  status: string;
  attempt: number;
  last_error: string | null;
  workflow_run_id: string | null;
  step_key: string | null;
  run_status: string | null;
  workflow_name: string | null;
  notify: WorkflowNotifySettings | null;
}

/** The task with its run's status and its workflow's name and `notify`; undefined if it is gone. */
export async function readTaskNotice(db: Queryable, taskId: string): Promise<TaskNotice | undefined> {
  const { rows } = await db.query<TaskNotice>(
    `SELECT t.id, t.title, t.capability, t.status, t.attempt, t.last_error, t.workflow_run_id, t.step_key,
            r.status AS run_status, w.name AS workflow_name, r.definition -> 'notify' AS notify
     FROM tasks t
     LEFT JOIN workflow_runs r ON r.id = t.workflow_run_id
     LEFT JOIN workflows w ON w.id = r.workflow_id
     WHERE t.id = $1`,
    [taskId],
  );
  return rows[0];
}

/** What a run's notification says: the run, its workflow, and the step that failed it. */
export interface RunNotice {
  id: string;
  status: string;
  workflow_id: string;
  workflow_name: string;
  notify: WorkflowNotifySettings | null;
  total_cost: string | null;
  duration_ms: number | null;
  steps: number;
  failed_step: {
    task_id: string;
    step_key: string | null;
    title: string;
    capability: string | null;
    attempt: number;
    last_error: string | null;
  } | null;
}

/**
 * The run with its workflow's name and `notify`, and the step that failed it: `failedTaskId` when
 * the event names it, else its first QUARANTINED step. Undefined if the run is gone.
 */
export async function readRunNotice(
  db: Queryable,
  runId: string,
  failedTaskId?: string | null,
): Promise<RunNotice | undefined> {
  const { rows } = await db.query<RunNotice>(
    `SELECT r.id, r.status, r.workflow_id, w.name AS workflow_name, r.definition -> 'notify' AS notify,
            r.total_cost::text AS total_cost,
            (floor(extract(epoch FROM r.end_time) * 1000) - floor(extract(epoch FROM r.start_time) * 1000))::float8 AS duration_ms,
            (SELECT count(*)::int FROM tasks s WHERE s.workflow_run_id = r.id) AS steps,
            (SELECT jsonb_build_object('task_id', f.id, 'step_key', f.step_key, 'title', f.title,
                      'capability', f.capability, 'attempt', f.attempt, 'last_error', f.last_error)
             FROM tasks f
             WHERE f.workflow_run_id = r.id AND (f.id = $2::uuid OR ($2::uuid IS NULL AND f.status = 'QUARANTINED'))
             ORDER BY f.updated_at LIMIT 1) AS failed_step
     FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id
     WHERE r.id = $1`,
    [runId, failedTaskId ?? null],
  );
  return rows[0];
}

/** What an agent's notification says. */
export interface AgentNotice {
  id: string;
  name: string;
  capabilities: string[];
  status: string;
  last_heartbeat_at: Date | null;
}

export async function readAgentNotice(db: Queryable, agentId: string): Promise<AgentNotice | undefined> {
  const { rows } = await db.query<AgentNotice>(
    'SELECT id, name, capabilities, status, last_heartbeat_at FROM agents WHERE id = $1',
    [agentId],
  );
  return rows[0];
}

/** A day at a glance: what happened in [since, until), and what stands now. */
export interface DailySummary {
  since: string;
  until: string;
  tasks_created: number;
  tasks_done: number;
  tasks_failed: number;
  tasks_quarantined: number;
  runs_completed: number;
  runs_failed: number;
  /** Now: tasks in quarantine, agents OFFLINE (not revoked), tasks waiting (TODO). */
  quarantined_now: number;
  agents_offline_now: number;
  todo_now: number;
}

/** Counts the events of [since, until) and the current quarantine, offline agents and queue, in one statement. */
export async function readDailySummary(
  db: Queryable,
  { since, until }: { since: Date; until: Date },
): Promise<DailySummary> {
  const { rows } = await db.query<DailySummary>(
    `SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since,
            to_char($2::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS until,
            count(*) FILTER (WHERE type = 'task.created')::int AS tasks_created,
            count(*) FILTER (WHERE type = 'task.done')::int AS tasks_done,
            count(*) FILTER (WHERE type = 'task.failed')::int AS tasks_failed,
            count(*) FILTER (WHERE type = 'task.quarantined')::int AS tasks_quarantined,
            count(*) FILTER (WHERE type = 'workflow_run.completed')::int AS runs_completed,
            count(*) FILTER (WHERE type = 'workflow_run.failed')::int AS runs_failed,
            (SELECT count(*)::int FROM tasks WHERE status = 'QUARANTINED') AS quarantined_now,
            (SELECT count(*)::int FROM agents WHERE status = 'OFFLINE' AND revoked_at IS NULL) AS agents_offline_now,
            (SELECT count(*)::int FROM tasks WHERE status = 'TODO') AS todo_now
     FROM events WHERE at >= $1 AND at < $2`,
    [since, until],
  );
  return rows[0]!;
}
