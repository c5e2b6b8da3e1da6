import type { Queryable } from './client';

/** The channel every API process listens on for platform events. */
export const EVENTS_CHANNEL = 'devart_events';

export type PlatformEventType = 'task.failed' | 'task.quarantined' | 'task.requeued';

export interface PlatformEvent {
  type: PlatformEventType;
  task_id: string;
  status: string;
  attempt: number;
  retry_count: number;
  /** The first 500 characters of last_error (NOTIFY payloads are small). */
  error: string | null;
  next_attempt_at: string | null;
  at: string;
}

/**
 * Queues events with NOTIFY inside the caller's transaction: PostgreSQL delivers them at commit,
 * so listeners never hear of a change that was rolled back.
 */
export async function notifyEvents(tx: Queryable, events: PlatformEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tx.query(`SELECT pg_notify('${EVENTS_CHANNEL}', e::text) FROM jsonb_array_elements($1::jsonb) AS e`, [
    JSON.stringify(events),
  ]);
}
