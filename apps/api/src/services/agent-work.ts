import type { CompleteTaskBatchItem, CompleteTaskBody, StartTaskBatchItem } from '@devart/contracts';
import {
  type AgentTaskOutcome,
  type BatchItemOutcome,
  completeTask,
  completeTasks,
  type Db,
  heartbeatTask,
  startTask,
  startTasks,
  type TaskRow,
} from '@devart/db';
import { ProblemError } from '../problem';
import { advanceRuns } from './workflow-runs';

/** What the metrics observe of agents' work (see metrics.ts); optional so services run without it. */
export interface WorkObserver {
  tasksStarted(rows: TaskRow[]): void;
  tasksCompleted(rows: TaskRow[]): void;
  runsCompleted(runs: { duration_seconds: number; total_cost: string | null }[]): void;
}

export interface LeaseSettings {
  /** How long a start or heartbeat keeps the task for its agent. */
  leaseSeconds: number;
}

function unwrap(taskId: string, result: AgentTaskOutcome): TaskRow {
  switch (result.outcome) {
    case 'ok':
      return result.task;
    case 'not_found':
      throw new ProblemError('not_found', `No task ${taskId}.`);
    case 'forbidden':
      throw new ProblemError('forbidden', `Task ${taskId} is not for this agent: ${result.reason}.`);
    case 'conflict':
      throw new ProblemError('conflict', `Task ${taskId} cannot be taken or reported on: ${result.reason}.`);
  }
}

/** The fenced claim an agent makes when a message reaches it (DESIGN §4). */
export async function startAgentTask(
  db: Db,
  settings: LeaseSettings,
  input: { taskId: string; agent: { id: string; capabilities: readonly string[] }; attempt?: number },
  observer?: WorkObserver,
): Promise<TaskRow> {
  const task = unwrap(
    input.taskId,
    await startTask(db, {
      taskId: input.taskId,
      agentId: input.agent.id,
      agentCapabilities: input.agent.capabilities,
      attempt: input.attempt,
      leaseSeconds: settings.leaseSeconds,
    }),
  );
  observer?.tasksStarted([task]);
  return task;
}

export async function heartbeatAgentTask(
  db: Db,
  settings: LeaseSettings,
  input: { taskId: string; agentId: string },
): Promise<TaskRow> {
  return unwrap(input.taskId, await heartbeatTask(db, { ...input, leaseSeconds: settings.leaseSeconds }));
}

export async function completeAgentTask(
  db: Db,
  input: { taskId: string; agentId: string; body: CompleteTaskBody },
  observer?: WorkObserver,
): Promise<TaskRow> {
  const { result, cost, attempt } = input.body;
  const outcome = await db.transaction(async (tx) => {
    const completed = await completeTask(tx, {
      taskId: input.taskId,
      agentId: input.agentId,
      attempt,
      result: result ?? null,
      // A JSON number's shortest decimal form is exactly what the agent wrote (0.1 stays 0.1).
      cost: cost === undefined ? null : String(cost),
    });
    const runs = completed.outcome === 'ok' ? await advanceRuns(tx, [completed.task]) : [];
    return { completed, runs };
  });
  const task = unwrap(input.taskId, outcome.completed);
  observer?.tasksCompleted([task]);
  observer?.runsCompleted(outcome.runs);
  return task;
}

export interface BatchItemAnswer {
  task_id: string;
  status: number;
  attempt?: number;
  lease_expires_at?: string | null;
  detail?: string;
}

const refusalStatus = { not_found: 404, conflict: 409, forbidden: 403 } as const;

function answer(item: BatchItemOutcome): BatchItemAnswer {
  switch (item.outcome) {
    case 'ok':
      return {
        task_id: item.task_id,
        status: 200,
        attempt: item.task.attempt,
        lease_expires_at: item.task.lease_expires_at?.toISOString() ?? null,
      };
    case 'not_found':
      return { task_id: item.task_id, status: 404, detail: `No task ${item.task_id}.` };
    default:
      return {
        task_id: item.task_id,
        status: refusalStatus[item.outcome as 'conflict' | 'forbidden'],
        detail: item.reason,
      };
  }
}

/** Many fenced claims in one statement: how the SDK starts tasks under load (one commit per batch). */
export async function startAgentTasks(
  db: Db,
  settings: LeaseSettings,
  agent: { id: string; capabilities: readonly string[] },
  items: StartTaskBatchItem[],
  observer?: WorkObserver,
): Promise<BatchItemAnswer[]> {
  if (items.length === 0) return [];
  const outcomes = await startTasks(db, {
    agentId: agent.id,
    agentCapabilities: agent.capabilities,
    items,
    leaseSeconds: settings.leaseSeconds,
  });
  observer?.tasksStarted(outcomes.flatMap((o) => (o.outcome === 'ok' ? [o.task] : [])));
  return outcomes.map(answer);
}

export async function completeAgentTasks(
  db: Db,
  agentId: string,
  items: CompleteTaskBatchItem[],
  observer?: WorkObserver,
): Promise<BatchItemAnswer[]> {
  if (items.length === 0) return [];
  // Completion and workflow progress commit together: a step is never DONE without its dependents released.
  const outcomes = await db.transaction(async (tx) => {
    const completed = await completeTasks(tx, {
      agentId,
      items: items.map((i) => ({
        task_id: i.task_id,
        attempt: i.attempt,
        result: i.result ?? null,
        cost: i.cost === undefined ? null : String(i.cost),
      })),
    });
    const done = completed.flatMap((o) => (o.outcome === 'ok' ? [o.task] : []));
    const runs = await advanceRuns(tx, done);
    return { completed, done, runs };
  });
  observer?.tasksCompleted(outcomes.done);
  observer?.runsCompleted(outcomes.runs);
  return outcomes.completed.map(answer);
}
