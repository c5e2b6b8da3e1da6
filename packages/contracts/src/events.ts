import { z } from 'zod';
import { TaskStatus } from './tasks';

/**
 * The platform events of GET /api/events, the one list: the transactions that change tasks send
 * them (packages/db notifyEvents) and the stream filters by them (`types=`).
 */
export const platformEventTypes = ['task.failed', 'task.quarantined', 'task.requeued'] as const;
export const PlatformEventType = z.enum(platformEventTypes);
export type PlatformEventType = z.infer<typeof PlatformEventType>;

/** One event as NOTIFY carries it and the stream sends it as `data`. */
export const PlatformEvent = z.object({
  type: PlatformEventType,
  task_id: z.string(),
  status: TaskStatus,
  attempt: z.int(),
  retry_count: z.int(),
  /** The first 500 characters of last_error (NOTIFY payloads are small). */
  error: z.string().nullable(),
  next_attempt_at: z.string().nullable(),
  at: z.string(),
});
export type PlatformEvent = z.infer<typeof PlatformEvent>;
