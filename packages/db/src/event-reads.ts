import type { PlatformEvent, PlatformEventType } from '@devart/contracts';
import type { Queryable } from './client';

/** Which events a reader wants: any of `types`, about these subjects (all given must match). */
export interface EventFilter {
  types?: readonly PlatformEventType[];
  task_id?: string;
  workflow_run_id?: string;
  agent_id?: string;
}

interface EventRow {
  id: string;
  type: PlatformEventType;
  at: Date | string;
  task_id: string | null;
  workflow_run_id: string | null;
  agent_id: string | null;
  sandbox_id: string | null;
  item_id: string | null;
  data: Record<string, unknown> | null;
}

const subjects = ['task_id', 'workflow_run_id', 'agent_id', 'sandbox_id', 'item_id'] as const;

function toEvent(row: EventRow): PlatformEvent {
  const event: PlatformEvent = {
    id: row.id,
    type: row.type,
    at: new Date(row.at).toISOString(),
    data: row.data ?? {},
  };
  for (const subject of subjects) {
    const value = row[subject];
    if (value !== null) event[subject] = value;
  }
  return event;
}

/**
 * The events with an id above `after` that match `filter`, in id (= commit) order, at most
 * `limit`. Ids are allocated in commit order, so paging with the last id seen never skips a row.
 * Only the conditions given are written into the statement, so each subject uses its own index.
 * @example const page = await listEventsAfter(db, { after: 120, limit: 500, filter: { task_id } });
 */
export async function listEventsAfter(
  db: Queryable,
  { after, limit, filter = {} }: { after: number | string; limit: number; filter?: EventFilter },
): Promise<PlatformEvent[]> {
  const params: unknown[] = [String(after), limit];
  const where = ['id > $1::bigint'];
  if (filter.types && filter.types.length > 0) {
    params.push(filter.types);
    where.push(`type = ANY($${params.length}::text[])`);
  }
  for (const subject of ['task_id', 'workflow_run_id', 'agent_id'] as const) {
    const value = filter[subject];
    if (value === undefined) continue;
    params.push(value);
    where.push(`${subject} = $${params.length}::uuid`);
  }
  // `events.id`: the bigint, not the text the select list names `id` (which sorts '10' before '9').
  const { rows } = await db.query<EventRow>(
    `SELECT id::text AS id, type, at, task_id, workflow_run_id, agent_id, sandbox_id, item_id, data
     FROM events WHERE ${where.join(' AND ')} ORDER BY events.id LIMIT $2`,
    params,
  );
  return rows.map(toEvent);
}

/** The largest event id committed so far (0 before the first event). */
export async function latestEventId(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ id: string }>(`SELECT coalesce(max(id), 0)::text AS id FROM events`);
  return Number(rows[0]?.id ?? 0);
}
