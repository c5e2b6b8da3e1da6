import type { PlatformEvent } from '@devart/contracts';
import type { Queryable } from './client';

/** The channel every API process listens on for platform events. */
export const EVENTS_CHANNEL = 'devart_events';

// The event vocabulary is the API's (GET /api/events); re-exported so the services that send
// events keep importing what they send with from the database package.
export type { PlatformEvent, PlatformEventType } from '@devart/contracts';

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
