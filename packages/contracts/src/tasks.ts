import { z } from 'zod';
import { Capability, INT4_MAX, JsonObject, queryInt, Uuid } from './common';

/** An attempt number as the message carried it; tasks.attempt is an int column. */
const AttemptNumber = z.int().min(1).max(INT4_MAX);

/**
 * The task states, the one list in TypeScript: packages/db types its rows with it, and a db test
 * holds it equal to the CHECK on tasks.status (0002_base_schema.sql).
 */
export const taskStatusValues = [
  'PENDING',
  'TODO',
  'IN_PROGRESS',
  'DONE',
  'QUARANTINED',
  'CANCELLED',
] as const;
export const TaskStatus = z.enum(taskStatusValues);
export type TaskStatus = z.infer<typeof TaskStatus>;

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
    retry_backoff: z.lazy(() => RetryBackoff).optional(),
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
    attempt: z.int().meta({ description: 'Number of the latest attempt handed to agents.' }),
    lease_expires_at: z.string().nullable(),
    next_attempt_at: z.string().nullable().meta({ description: 'When a retry is due (after its backoff).' }),
    step_key: z.string().nullable(),
    retry_backoff: z.unknown(),
  })
  .meta({ id: 'Task' });
export type Task = z.infer<typeof Task>;

export const TaskListQuery = z.strictObject({
  status: TaskStatus.optional(),
  capability: Capability.optional(),
  workflow_run_id: Uuid.optional(),
  cursor: z.string().max(200).optional().meta({ description: 'next_cursor of the previous page' }),
  limit: queryInt({ min: 1, max: 200 }).default(50),
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

export const StartTaskBody = z
  .strictObject({
    attempt: AttemptNumber.optional().meta({
      description: 'The attempt the message carried; a stale or duplicate message is refused with 409.',
    }),
  })
  .meta({ id: 'StartTaskBody' });
export type StartTaskBody = z.infer<typeof StartTaskBody>;

/** A decimal cost: a JSON number, or a string of digits to keep every digit exact. */
export const Cost = z
  .union([
    z.number().finite().nonnegative(),
    z.string().regex(/^\d{1,20}(\.\d{1,12})?$/, { error: 'must be a decimal' }),
  ])
  .meta({ description: 'Non-negative decimal, e.g. 0.0123 or "0.0123".' });

export const CompleteTaskBody = z
  .strictObject({
    result: z.unknown().optional().meta({ description: 'Any JSON value the task produced.' }),
    cost: Cost.optional(),
    attempt: AttemptNumber.optional(),
  })
  .meta({ id: 'CompleteTaskBody' });
export type CompleteTaskBody = z.infer<typeof CompleteTaskBody>;

export const Lease = z
  .object({ task_id: Uuid, status: TaskStatus, attempt: z.int(), lease_expires_at: z.string().nullable() })
  .meta({ id: 'Lease' });

export const RetryBackoff = z
  .strictObject({
    base_ms: z.int().min(0).max(86_400_000).optional(),
    cap_ms: z.int().min(0).max(86_400_000).optional(),
  })
  .meta({
    id: 'RetryBackoff',
    description: 'Exponential backoff with full jitter: a retry waits up to min(cap, base·2^(n-1)).',
  });

export const ReportFailureBody = z
  .strictObject({
    error: z.string().min(1).max(1_000_000).meta({ description: 'What went wrong; stored capped at 8 KiB.' }),
    retryable: z
      .boolean()
      .optional()
      .meta({ description: 'false quarantines the task at once (default true).' }),
    details: JsonObject.optional().meta({
      description: 'Anything useful, e.g. a trimmed stack; kept with the attempt.',
    }),
    attempt: AttemptNumber.optional(),
  })
  .meta({ id: 'ReportFailureBody' });
export type ReportFailureBody = z.infer<typeof ReportFailureBody>;

export const FailureOutcome = z
  .object({
    task_id: Uuid,
    status: z.enum(['TODO', 'QUARANTINED']),
    retry_count: z.int(),
    next_attempt_at: z.string().nullable(),
  })
  .meta({ id: 'FailureOutcome' });

export const TaskAttempt = z
  .object({
    task_id: Uuid,
    attempt: z.int(),
    agent_id: Uuid.nullable(),
    started_at: z.string(),
    ended_at: z.string().nullable(),
    outcome: z.enum(['DONE', 'FAILED', 'LEASE_EXPIRED', 'CANCELLED']).nullable(),
    error: z.string().nullable(),
    details: z.unknown(),
  })
  .meta({ id: 'TaskAttempt' });

export const TaskAttemptList = z.object({ items: z.array(TaskAttempt) }).meta({ id: 'TaskAttemptList' });

export const RequeueTaskBody = z
  .strictObject({
    payload: JsonObject.optional().meta({ description: 'Replaces the payload for the new attempt.' }),
  })
  .meta({ id: 'RequeueTaskBody' });

// 1,000 per request is what docs/performance.md's benchmark posts; larger batches were not measured.
export const CreateTaskBatchBody = z
  .strictObject({ tasks: z.array(CreateTaskBody).min(1).max(1000) })
  .meta({ id: 'CreateTaskBatchBody' });
export type CreateTaskBatchBody = z.infer<typeof CreateTaskBatchBody>;

export const TaskList = z.object({ items: z.array(Task) }).meta({ id: 'TaskList' });

/**
 * The items of an agent batch. The envelope is checked here; each item is checked on its own by the
 * route against `item` (whose component the route registers), so one bad item is answered 400 in its
 * place and the others still apply. The OpenAPI document shows the item's schema all the same.
 */
const batchItems = (itemSchemaId: string) =>
  z
    .array(z.unknown())
    .min(1)
    // Not measured: bounds one set-based statement and transaction; the SDK sends at most 200.
    .max(500)
    .meta({
      items: { $ref: `#/components/schemas/${itemSchemaId}` },
      description: 'Each item is validated on its own: a bad item is answered 400 in its place.',
    });

export const StartTaskBatchItem = z
  .strictObject({ task_id: Uuid, attempt: AttemptNumber.optional() })
  .meta({ id: 'StartTaskBatchItem' });
export type StartTaskBatchItem = z.infer<typeof StartTaskBatchItem>;

export const StartTaskBatchBody = z
  .strictObject({ items: batchItems('StartTaskBatchItem') })
  .meta({ id: 'StartTaskBatchBody' });

export const CompleteTaskBatchItem = z
  .strictObject({
    task_id: Uuid,
    attempt: AttemptNumber.optional(),
    result: z.unknown().optional(),
    cost: Cost.optional(),
  })
  .meta({ id: 'CompleteTaskBatchItem' });
export type CompleteTaskBatchItem = z.infer<typeof CompleteTaskBatchItem>;

export const CompleteTaskBatchBody = z
  .strictObject({ items: batchItems('CompleteTaskBatchItem') })
  .meta({ id: 'CompleteTaskBatchBody' });

export const BatchItemResult = z
  .object({
    task_id: z.string().meta({ description: 'The task id as the item gave it (empty if it gave none).' }),
    status: z.int().meta({
      description:
        'What the single-task call would have answered: 200, 400 (this item is invalid), 403, 404 or 409.',
    }),
    attempt: z.int().optional(),
    lease_expires_at: z.string().nullable().optional(),
    detail: z.string().optional().meta({ description: 'Why the item was refused.' }),
  })
  .meta({ id: 'BatchItemResult' });

export const BatchResult = z.object({ items: z.array(BatchItemResult) }).meta({ id: 'BatchResult' });
