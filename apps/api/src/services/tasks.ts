import type { CreateTaskBody } from '@devart/contracts';
import {
  appendEvents,
  cancelTask,
  type Db,
  endWorkflowRun,
  getTask,
  insertTasksRecorded,
  listTasks,
  type TaskFilter,
  type TaskRow,
  taskListOrder,
} from '@devart/db';
import { decodeCursor, encodeCursor } from './cursor';
import { ConflictError, NotFoundError } from './domain-errors';
import { runEndEvents, taskEvent } from './lifecycle-events';

/** Stores a task, queues its message in the outbox and records task.created, atomically (no dual write). */
export async function createTask(db: Db, input: CreateTaskBody, createdBy: string): Promise<TaskRow> {
  const [task] = await createTasks(db, [input], createdBy);
  return task!;
}

/** Up to 1,000 tasks and their task.created events in one statement: all stored and queued, or none. */
export function createTasks(db: Db, inputs: CreateTaskBody[], createdBy: string): Promise<TaskRow[]> {
  return db.transaction((tx) =>
    insertTasksRecorded(
      tx,
      inputs.map((input) => ({ ...input, created_by: createdBy })),
    ),
  );
}

export async function findTask(db: Db, taskId: string): Promise<TaskRow> {
  const task = await getTask(db, taskId);
  if (!task) throw new NotFoundError(`No task ${taskId}.`);
  return task;
}

export interface TaskListRequest extends Omit<TaskFilter, 'after'> {
  cursor?: string;
}

export async function listTaskPage(db: Db, request: TaskListRequest) {
  const { cursor, ...filter } = request;
  const page = await listTasks(db, {
    ...filter,
    after: cursor ? decodeCursor(cursor, taskListOrder) : undefined,
  });
  return { items: page.items, next_cursor: page.next ? encodeCursor(page.next) : null };
}

/**
 * Cancels a task; a cancelled workflow step can never be DONE, so its run is cancelled with it
 * (in the same transaction), together with the run's other unfinished steps.
 */
export async function cancelTaskById(db: Db, taskId: string): Promise<TaskRow> {
  const outcome = await db.transaction(async (tx) => {
    const cancelled = await cancelTask(tx, taskId);
    if (cancelled.outcome !== 'cancelled') return cancelled;
    appendEvents(tx, [
      { ...taskEvent('task.cancelled', cancelled.task), agent_id: cancelled.previous_agent_id },
    ]);
    if (cancelled.task.workflow_run_id) {
      appendEvents(tx, runEndEvents(await endWorkflowRun(tx, cancelled.task.workflow_run_id, 'CANCELLED')));
    }
    return cancelled;
  });
  if (outcome.outcome === 'not_found') throw new NotFoundError(`No task ${taskId}.`);
  if (outcome.outcome === 'conflict') {
    throw new ConflictError(`Task ${taskId} is ${outcome.status} and can no longer be cancelled.`);
  }
  return outcome.task;
}
