import { z } from 'zod';

/** The events that can send a notification (NOTIFY_EVENTS picks among them). */
export const NotificationEventType = z.enum([
  'task.quarantined',
  'workflow_run.failed',
  'workflow_run.completed',
  'agent.offline',
]);
export type NotificationEventType = z.infer<typeof NotificationEventType>;

/** A workflow's notification settings (`notify` in its definition). */
export const WorkflowNotify = z
  .strictObject({
    on_complete: z.boolean().optional().meta({ description: 'Notify when a run completes (default false).' }),
    on_failure: z.boolean().optional().meta({
      description: 'Notify when a run fails, or one of its steps is quarantined (default true).',
    }),
  })
  .meta({ id: 'WorkflowNotify' });
export type WorkflowNotify = z.infer<typeof WorkflowNotify>;

/** How one delivery channel (the outbox of messages to an outside service) is doing. */
export const DeliveryHealth = z
  .object({
    channel: z.string().meta({ example: 'telegram' }),
    backlog: z.int().meta({ description: 'Deliveries waiting to be sent (or being sent).' }),
    oldest_pending_seconds: z
      .number()
      .nullable()
      .meta({ description: 'Age of the oldest waiting delivery; null when none waits.' }),
    failed: z.int().meta({ description: 'Deliveries the service refused for good (kept 7 days).' }),
    last_success_at: z.string().nullable(),
    last_error: z
      .string()
      .nullable()
      .meta({ description: 'The latest error an attempt met (retried unless failed).' }),
    last_error_at: z.string().nullable(),
    seen_at: z.string().nullable().meta({
      description:
        'When an API process that sends through this channel last announced it; events queue deliveries only while this is recent (5 minutes).',
    }),
  })
  .meta({ id: 'DeliveryHealth' });
export type DeliveryHealth = z.infer<typeof DeliveryHealth>;

/** One integration: whether this process has it configured, its settings that are not secret, its channels' health. */
export const Integration = z
  .object({
    name: z.string().meta({ example: 'telegram' }),
    configured: z.boolean().meta({ description: 'Configured in the API process that answered.' }),
    settings: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]))
      .meta({
        description: 'What is configured, never a secret (tokens and keys show only whether they are set).',
      }),
    deliveries: z.array(DeliveryHealth),
  })
  .meta({ id: 'Integration' });
export type Integration = z.infer<typeof Integration>;

export const Integrations = z.object({ items: z.array(Integration) }).meta({ id: 'Integrations' });
export type Integrations = z.infer<typeof Integrations>;
