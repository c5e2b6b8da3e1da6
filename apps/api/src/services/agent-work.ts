import type { CompleteTaskBatchItem, CompleteTaskBody, StartTaskBatchItem } from '@devart/contracts';
import {
  type AgentTaskOutcome,
  appendEvents,
  type BatchItemOutcome,
  completeTask,
  completeTasks,
  type Db,
  doneEventsRecorded,
  heartbeatTask,
  startTask,
  startTasks,
  type TaskRow,
} from '@devart/db';
import { agentSeen } from './agents';
import { ConflictError, type DomainError, ForbiddenError, NotFoundError } from './domain-errors';
import { taskEvent } from './lifecycle-events';
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

/**
 * Why the database refused an agent's call on one task, as a domain error. A single call names
 * the task in its detail; a batch item carries the task id beside it, so its detail is the reason.
 */
function refusal(
  taskId: string,
  refused: Exclude<AgentTaskOutcome, { outcome: 'ok' }>,
  single: boolean,
): DomainError {
  switch (refused.outcome) {
    case 'not_found':
      return new NotFoundError(`No task ${taskId}.`);
    case 'forbidden':
      return new ForbiddenError(
        single ? `Task ${taskId} is not for this agent: ${refused.reason}.` : refused.reason,
      );
    case 'conflict':
      return new ConflictError(
        single ? `Task ${taskId} cannot be taken or reported on: ${refused.reason}.` : refused.reason,
      );
  }
}

function unwrap(taskId: string, result: AgentTaskOutcome): TaskRow {
  if (result.outcome === 'ok') return result.task;
  throw refusal(taskId, result, true);
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
    await db.transaction(async (tx) => {
      // Before the claim, which would set an OFFLINE agent BUSY without a word.
      await agentSeen(tx, input.agent.id);
      const started = await startTask(tx, {
        taskId: input.taskId,
        agentId: input.agent.id,
        agentCapabilities: input.agent.capabilities,
        attempt: input.attempt,
        leaseSeconds: settings.leaseSeconds,
      });
      return started;
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
    await agentSeen(tx, input.agentId);
    const completed = await completeTask(tx, {
      taskId: input.taskId,
      agentId: input.agentId,
      attempt,
      result: result ?? null,
      // A JSON number's shortest decimal form is exactly what the agent wrote (0.1 stays 0.1).
      cost: cost === undefined ? null : String(cost),
    });
    if (completed.outcome !== 'ok') return { completed, runs: [] };
    if (!doneEventsRecorded([completed.task])) appendEvents(tx, [taskEvent('task.done', completed.task)]);
    const runs = await advanceRuns(tx, [completed.task]);
    return { completed, runs };
  });
  const task = unwrap(input.taskId, outcome.completed);
  observer?.tasksCompleted([task]);
  observer?.runsCompleted(outcome.runs);
  return task;
}

/** One item of a batch: the task as the call left it, or why it was refused (the HTTP layer answers both). */
export type BatchItemResult = { task_id: string; task: TaskRow } | { task_id: string; refused: DomainError };

function itemResult(item: BatchItemOutcome): BatchItemResult {
  if (item.outcome === 'ok') return { task_id: item.task_id, task: item.task };
  return { task_id: item.task_id, refused: refusal(item.task_id, item, false) };
}

/** Many fenced claims in one statement: how the SDK starts tasks under load (one commit per batch). */
export async function startAgentTasks(
  db: Db,
  settings: LeaseSettings,
  agent: { id: string; capabilities: readonly string[] },
  items: StartTaskBatchItem[],
  observer?: WorkObserver,
): Promise<BatchItemResult[]> {
  if (items.length === 0) return [];
  const outcomes = await db.transaction(async (tx) => {
    // Before the claims, which would set an OFFLINE agent BUSY without a word.
    await agentSeen(tx, agent.id);
    const started = await startTasks(tx, {
      agentId: agent.id,
      agentCapabilities: agent.capabilities,
      items,
      leaseSeconds: settings.leaseSeconds,
    });
    return started;
  });
  observer?.tasksStarted(outcomes.flatMap((o) => (o.outcome === 'ok' ? [o.task] : [])));
  return outcomes.map(itemResult);
}

export async function completeAgentTasks(
  db: Db,
  agentId: string,
  items: CompleteTaskBatchItem[],
  observer?: WorkObserver,
): Promise<BatchItemResult[]> {
  if (items.length === 0) return [];
  // Completion and workflow progress commit together: a step is never DONE without its dependents released.
  const outcomes = await db.transaction(async (tx) => {
    await agentSeen(tx, agentId);
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
    if (!doneEventsRecorded(done)) {
      appendEvents(
        tx,
        done.map((task) => taskEvent('task.done', task)),
      );
    }
    const runs = await advanceRuns(tx, done);
    return { completed, done, runs };
  });
  observer?.tasksCompleted(outcomes.done);
  observer?.runsCompleted(outcomes.runs);
  return outcomes.completed.map(itemResult);
}
