import type { Queryable } from './client';
import { getTask, type TaskRow, type TaskStatus, taskColumns } from './tasks';

/** Why an agent's operation on a task was refused; the API maps each to a status. */
export type Refusal =
  | { outcome: 'not_found' }
  | { outcome: 'conflict'; status: TaskStatus; reason: string }
  | { outcome: 'forbidden'; reason: string };

export type AgentTaskOutcome = { outcome: 'ok'; task: TaskRow } | Refusal;

const prefixed = taskColumns.replace(/(^|, )/g, '$1t.');

// Whether the agent still holds another task once this one is released (the statement's snapshot
// still shows this task IN_PROGRESS, hence the id filter).
const agentStatusAfterRelease = (agentParam: string, taskParam: string) => `
  CASE WHEN EXISTS (
    SELECT 1 FROM tasks WHERE agent_id = ${agentParam} AND status = 'IN_PROGRESS' AND id <> ${taskParam}
  ) THEN 'BUSY' ELSE 'IDLE' END`;

/**
 * The fenced claim: TODO → IN_PROGRESS for this agent, only for the attempt its message carried,
 * only if the agent has the capability. One statement; a duplicate or stale message loses cleanly.
 */
export async function startTask(
  db: Queryable,
  input: { taskId: string; agentId: string; attempt?: number; leaseSeconds: number },
): Promise<AgentTaskOutcome> {
  const { rows } = await db.query<TaskRow>(
    `WITH agent AS (
       SELECT id, capabilities FROM agents WHERE id = $2 AND revoked_at IS NULL
     ), started AS (
       UPDATE tasks t SET status = 'IN_PROGRESS', agent_id = agent.id, started_at = now(), updated_at = now(),
         lease_expires_at = now() + make_interval(secs => $4::float8)
       FROM agent
       WHERE t.id = $1 AND t.status = 'TODO' AND ($3::int IS NULL OR t.attempt = $3::int)
         AND (t.capability IS NULL OR t.capability = ANY (agent.capabilities))
       RETURNING ${prefixed}
     ), opened AS (
       INSERT INTO task_attempts (task_id, attempt, agent_id)
       SELECT id, attempt, agent_id FROM started
       ON CONFLICT (task_id, attempt) DO NOTHING
     ), busy AS (
       -- Only a change takes the agent's row lock: concurrent starts of one agent must not queue on it.
       UPDATE agents SET status = 'BUSY'
       WHERE id = $2 AND status <> 'BUSY' AND EXISTS (SELECT 1 FROM started)
     )
     SELECT * FROM started`,
    [input.taskId, input.agentId, input.attempt ?? null, input.leaseSeconds],
  );
  if (rows[0]) return { outcome: 'ok', task: rows[0] };
  return explainStartRefusal(db, input);
}

async function explainStartRefusal(
  db: Queryable,
  input: { taskId: string; agentId: string; attempt?: number },
): Promise<Refusal> {
  const task = await getTask(db, input.taskId);
  if (!task) return { outcome: 'not_found' };
  if (task.status !== 'TODO') {
    return { outcome: 'conflict', status: task.status, reason: `the task is ${task.status}, not TODO` };
  }
  if (input.attempt !== undefined && task.attempt !== input.attempt) {
    return {
      outcome: 'conflict',
      status: task.status,
      reason: `the message is for attempt ${input.attempt}; the task is at attempt ${task.attempt}`,
    };
  }
  return { outcome: 'forbidden', reason: `the agent lacks the capability "${task.capability}"` };
}

/** Extends the lease of a task the agent holds. */
export async function heartbeatTask(
  db: Queryable,
  input: { taskId: string; agentId: string; leaseSeconds: number },
): Promise<AgentTaskOutcome> {
  const { rows } = await db.query<TaskRow>(
    `WITH held AS (
       UPDATE tasks t SET lease_expires_at = now() + make_interval(secs => $3::float8)
       WHERE t.id = $1 AND t.status = 'IN_PROGRESS' AND t.agent_id = $2
       RETURNING ${prefixed}
     ), seen AS (
       UPDATE agents SET last_heartbeat_at = now()
       WHERE id = $2 AND EXISTS (SELECT 1 FROM held)
         AND (last_heartbeat_at IS NULL OR last_heartbeat_at < now() - interval '1 second')
     )
     SELECT * FROM held`,
    [input.taskId, input.agentId, input.leaseSeconds],
  );
  if (rows[0]) return { outcome: 'ok', task: rows[0] };
  return explainHolderRefusal(db, input);
}

/** IN_PROGRESS → DONE with the result and exact cost; refused unless this agent still holds the task. */
export async function completeTask(
  db: Queryable,
  input: { taskId: string; agentId: string; attempt?: number; result: unknown; cost: string | null },
): Promise<AgentTaskOutcome> {
  const { rows } = await db.query<TaskRow>(
    `WITH done AS (
       UPDATE tasks t SET status = 'DONE', result = $4::jsonb, cost = $5::numeric, completed_at = now(),
         updated_at = now(), lease_expires_at = NULL
       WHERE t.id = $1 AND t.status = 'IN_PROGRESS' AND t.agent_id = $2 AND ($3::int IS NULL OR t.attempt = $3::int)
       RETURNING ${prefixed}
     ), closed AS (
       UPDATE task_attempts a SET ended_at = now(), outcome = 'DONE'
       FROM done WHERE a.task_id = done.id AND a.attempt = done.attempt
     ), freed AS (
       UPDATE agents SET status = ${agentStatusAfterRelease('$2', '$1')}
       WHERE id = $2 AND EXISTS (SELECT 1 FROM done) AND status <> ${agentStatusAfterRelease('$2', '$1')}
     )
     SELECT * FROM done`,
    [input.taskId, input.agentId, input.attempt ?? null, JSON.stringify(input.result ?? null), input.cost],
  );
  if (rows[0]) return { outcome: 'ok', task: rows[0] };
  return explainHolderRefusal(db, input);
}

async function explainHolderRefusal(
  db: Queryable,
  input: { taskId: string; agentId: string; attempt?: number },
): Promise<Refusal> {
  const task = await getTask(db, input.taskId);
  if (!task) return { outcome: 'not_found' };
  if (task.status !== 'IN_PROGRESS') {
    return { outcome: 'conflict', status: task.status, reason: `the task is ${task.status}` };
  }
  if (task.agent_id !== input.agentId) {
    return { outcome: 'conflict', status: task.status, reason: 'another agent holds the task now' };
  }
  return {
    outcome: 'conflict',
    status: task.status,
    reason: `this is attempt ${task.attempt}; the agent reported on attempt ${input.attempt}`,
  };
}
