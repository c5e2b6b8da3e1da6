import { z } from 'zod';

/**
 * Every lifecycle event the platform records, the one list: the transactions that change state
 * append them to the `events` table (packages/db appendEvents), GET /api/events streams and filters
 * by them (`types=`). `task.heartbeat` is left out on purpose: the issue makes it optional, and a
 * row per heartbeat would cost more than it tells.
 */
export const platformEventTypes = [
  'task.created',
  'task.started',
  'task.done',
  'task.failed',
  'task.retry_scheduled',
  'task.quarantined',
  'task.requeued',
  'task.cancelled',
  'task.lease_expired',
  'workflow_run.started',
  'workflow_run.step_released',
  'workflow_run.completed',
  'workflow_run.failed',
  'workflow_run.cancelled',
  'agent.registered',
  'agent.online',
  'agent.offline',
  'agent.revoked',
  'sandbox.provisioned',
  'sandbox.terminated',
  'marketplace.published',
  'marketplace.yanked',
] as const;
export const PlatformEventType = z.enum(platformEventTypes);
export type PlatformEventType = z.infer<typeof PlatformEventType>;

/**
 * One recorded event, as GET /api/events streams it (`id:` = `id`, `event:` = `type`, `data:` =
 * this JSON) and GET /api/events/history lists it. Subject ids are present only when the event is
 * about one; `data` is a small snapshot (status, attempt, retry_count, cost, duration_ms, an error
 * excerpt of at most 500 characters, next_attempt_at, step_key, title…), never a secret.
 *
 * @example
 * { "id": "123", "type": "task.done", "at": "2026-12-02T06:00:00.000Z",
 *   "task_id": "0b7c…", "agent_id": "5e1f…", "data": { "status": "DONE", "attempt": 1 } }
 */
export const PlatformEvent = z.object({
  /** bigint as a string; ids grow in commit order, so `after=<id>` resumes without gaps. */
  id: z.string(),
  type: PlatformEventType,
  at: z.string(),
  task_id: z.string().optional(),
  workflow_run_id: z.string().optional(),
  agent_id: z.string().optional(),
  sandbox_id: z.string().optional(),
  item_id: z.string().optional(),
  data: z.record(z.string(), z.unknown()),
});
export type PlatformEvent = z.infer<typeof PlatformEvent>;
