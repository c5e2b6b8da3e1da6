import type { CreateTaskBody } from '@devart/contracts';
import {
  cancelTask,
  type Db,
  getTask,
  insertTasks,
  listTasks,
  type TaskFilter,
  type TaskRow,
} from '@devart/db';
import { ProblemError } from '../problem';

/** Stores a task and queues its message in the outbox, atomically (no dual write). */
export async function createTask(db: Db, input: CreateTaskBody, createdBy: string): Promise<TaskRow> {
  const [task] = await insertTasks(db, [{ ...input, created_by: createdBy }]);
  return task!;
}

/** Up to 1,000 tasks in one statement: all stored and queued, or none. */
export function createTasks(db: Db, inputs: CreateTaskBody[], createdBy: string): Promise<TaskRow[]> {
  return insertTasks(
    db,
    inputs.map((input) => ({ ...input, created_by: createdBy })),
  );
}

export async function findTask(db: Db, taskId: string): Promise<TaskRow> {
  const task = await getTask(db, taskId);
  if (!task) throw new ProblemError('not_found', `No task ${taskId}.`);
  return task;
}

export interface TaskListRequest extends Omit<TaskFilter, 'after'> {
  cursor?: string;
}

export async function listTaskPage(db: Db, request: TaskListRequest) {
  const { cursor, ...filter } = request;
  const page = await listTasks(db, { ...filter, after: cursor ? decodeCursor(cursor) : undefined });
  return { items: page.items, next_cursor: page.last ? encodeCursor(page.last) : null };
}

export async function cancelTaskById(db: Db, taskId: string): Promise<TaskRow> {
  const outcome = await cancelTask(db, taskId);
  if (outcome.outcome === 'not_found') throw new ProblemError('not_found', `No task ${taskId}.`);
  if (outcome.outcome === 'conflict') {
    throw new ProblemError('conflict', `Task ${taskId} is ${outcome.status} and can no longer be cancelled.`);
  }
  return outcome.task;
}

function encodeCursor(position: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (
      typeof createdAt === 'string' &&
      /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:\d{2})?|Z)$/.test(createdAt) &&
      typeof id === 'string' &&
      /^[0-9a-f-]{36}$/i.test(id)
    ) {
      return { createdAt, id };
    }
  } catch {
    // falls through to the problem below
  }
  throw new ProblemError('validation', 'query.cursor: is not a cursor this API returned', {
    errors: [{ location: 'query', field: 'cursor', message: 'is not a cursor this API returned' }],
  });
}
