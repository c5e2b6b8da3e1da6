import type { TaskStatus } from '@devart/contracts';
import { type BatchItemOutcome, completeTasks, startTasks } from './agent-work-batch';
import type { Queryable } from './client';
import { getTask, qualifiedTaskColumns, type TaskRow } from './tasks';

/** Why an agent's operation on a task was refused; the API maps each to a status. */
export type Refusal =
  | { outcome: 'not_found' }
  | { outcome: 'conflict'; status: TaskStatus; reason: string }
  | { outcome: 'forbidden'; reason: string };

export type AgentTaskOutcome = { outcome: 'ok'; task: TaskRow } | Refusal;

function single(outcomes: BatchItemOutcome[]): AgentTaskOutcome {
  const { task_id: _taskId, ...outcome } = outcomes[0]!;
  return outcome;
}

/**
 * The fenced claim: TODO → IN_PROGRESS for this agent, only for the attempt its message carried,
 * only if the agent has the capability. The batch statement with one item: a duplicate or stale
 * message loses cleanly.
 */
export async function startTask(
  db: Queryable,
  input: {
    taskId: string;
    agentId: string;
    agentCapabilities: readonly string[];
    attempt?: number;
    leaseSeconds: number;
  },
): Promise<AgentTaskOutcome> {
  return single(
    await startTasks(db, {
      agentId: input.agentId,
      agentCapabilities: input.agentCapabilities,
      items: [{ task_id: input.taskId, attempt: input.attempt }],
      leaseSeconds: input.leaseSeconds,
    }),
  );
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
       RETURNING ${qualifiedTaskColumns}
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
  return single(
    await completeTasks(db, {
      agentId: input.agentId,
      items: [{ task_id: input.taskId, attempt: input.attempt, result: input.result, cost: input.cost }],
    }),
  );
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
