import { z } from 'zod';
import { PlatformEvent } from './events';
import { TaskStatus } from './tasks';

export const ThroughputMinute = z
  .object({
    minute: z.string().meta({ description: 'Start of the minute (ISO 8601, UTC).' }),
    created: z.int(),
    done: z.int(),
    failed: z.int().meta({ description: 'Failed attempts: task.failed and task.quarantined.' }),
  })
  .meta({ id: 'ThroughputMinute' });
export type ThroughputMinute = z.infer<typeof ThroughputMinute>;

/**
 * The console's Overview in one answer (GET /api/overview): counts the database knows exactly, the
 * last 15 minutes minute by minute, and the newest events. Built to be asked every second.
 */
export const Overview = z
  .object({
    generated_at: z.string(),
    tasks_by_status: z.record(TaskStatus, z.int()).meta({ description: 'Every status, 0 included.' }),
    throughput: z.array(ThroughputMinute).meta({ description: 'The last 15 minutes, oldest first.' }),
    outbox: z.object({
      pending: z.int().meta({ description: 'Outbox rows not yet published to the broker.' }),
      oldest_age_seconds: z.number().meta({ description: 'Age of the oldest due unsent row; 0 when none.' }),
    }),
    agents: z.object({
      online: z.int().meta({ description: 'IDLE or BUSY, not revoked.' }),
      busy: z.int(),
      offline: z.int(),
    }),
    recent_failures: z.array(PlatformEvent).meta({
      description:
        'The 10 newest task.failed, task.quarantined, task.lease_expired and workflow_run.failed events among the last 10,000 events, newest first.',
    }),
    recent_events: z.array(PlatformEvent).meta({ description: 'The 20 newest events, newest first.' }),
  })
  .meta({ id: 'Overview' });
export type Overview = z.infer<typeof Overview>;
