import { z } from 'zod';
import { Uuid } from './common';

/**
 * The task message (`devart.task.v1`): JSON, persistent, `messageId = <task_id>:<attempt>`,
 * routing key `tasks.todo` or `tasks.todo.<capability>`. Consumers must ignore fields they do not
 * know (messages sent to the dead-letter queue also carry `last_error` and `retry_count`).
 */
export const TaskMessage = z
  .looseObject({
    type: z.literal('devart.task.v1'),
    task_id: Uuid,
    attempt: z
      .int()
      .min(1)
      .meta({ description: 'Send it back with start/complete/report-failure (the fence).' }),
    capability: z.string().nullable(),
    title: z.string(),
    payload: z.record(z.string(), z.unknown()),
    workflow_run_id: Uuid.nullable(),
    enqueued_at: z.string().meta({ description: 'ISO-8601 UTC time the message was queued.' }),
  })
  .meta({ id: 'TaskMessage', title: 'devart.task.v1' });
export type TaskMessage = z.infer<typeof TaskMessage>;

/** The JSON Schema of the task message, as committed in packages/contracts/schemas/. */
export function taskMessageJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://devart.local/schemas/devart.task.v1.json',
    ...z.toJSONSchema(TaskMessage, { target: 'draft-2020-12' }),
  };
}
