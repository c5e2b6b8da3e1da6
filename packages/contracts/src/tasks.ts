import { z } from 'zod';
import { Capability, JsonObject, Uuid } from './common';

export const taskStatusValues = [
  'PENDING',
  'TODO',
  'IN_PROGRESS',
  'DONE',
  'QUARANTINED',
  'CANCELLED',
] as const;
export const TaskStatus = z.enum(taskStatusValues);

export const CreateTaskBody = z
  .strictObject({
    title: z.string().trim().min(1).max(500),
    description: z.string().max(20_000).optional(),
    capability: Capability.optional(),
    payload: JsonObject.optional().meta({ description: 'Input for the agent; any JSON object.' }),
    priority: z.int().min(-1000).max(1000).optional(),
    max_retries: z.int().min(0).max(100).optional().meta({
      description: 'Retries after the first attempt (default 3): a task runs at most max_retries + 1 times.',
    }),
  })
  .meta({ id: 'CreateTaskBody' });
export type CreateTaskBody = z.infer<typeof CreateTaskBody>;

export const Task = z
  .object({
    id: Uuid,
    title: z.string(),
    description: z.string().nullable(),
    capability: z.string().nullable(),
    payload: z.unknown(),
    priority: z.int(),
    status: TaskStatus,
    agent_id: Uuid.nullable(),
    result: z.unknown(),
    cost: z.string().nullable().meta({ description: 'Exact decimal, as a string.' }),
    retry_count: z.int(),
    max_retries: z.int(),
    last_error: z.string().nullable(),
    workflow_run_id: Uuid.nullable(),
    created_by: Uuid.nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    started_at: z.string().nullable(),
    completed_at: z.string().nullable(),
  })
  .meta({ id: 'Task' });
export type Task = z.infer<typeof Task>;

export const TaskListQuery = z.strictObject({
  status: TaskStatus.optional(),
  capability: Capability.optional(),
  workflow_run_id: Uuid.optional(),
  cursor: z.string().max(200).optional().meta({ description: 'next_cursor of the previous page' }),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const TaskPage = z
  .object({
    items: z.array(Task),
    next_cursor: z
      .string()
      .nullable()
      .meta({ description: 'Pass as cursor for the next page; null on the last.' }),
  })
  .meta({ id: 'TaskPage' });

export const TaskIdParams = z.strictObject({ taskId: Uuid });
