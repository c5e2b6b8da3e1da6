import type { CompleteTaskBody } from '@devart/contracts';
import {
  type AgentTaskOutcome,
  completeTask,
  type Db,
  heartbeatTask,
  startTask,
  type TaskRow,
} from '@devart/db';
import { ProblemError } from '../problem';

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
  input: { taskId: string; agentId: string; attempt?: number },
): Promise<TaskRow> {
  return unwrap(input.taskId, await startTask(db, { ...input, leaseSeconds: settings.leaseSeconds }));
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
): Promise<TaskRow> {
  const { result, cost, attempt } = input.body;
  return unwrap(
    input.taskId,
    await completeTask(db, {
      taskId: input.taskId,
      agentId: input.agentId,
      attempt,
      result: result ?? null,
      // A JSON number's shortest decimal form is exactly what the agent wrote (0.1 stays 0.1).
      cost: cost === undefined ? null : String(cost),
    }),
  );
}
