import type { PlatformEventType } from '@devart/contracts';
import type { Queryable } from './client';

/** The channel every API process listens on: `{"to": <largest id committed>}` after each commit that appended events. */
export const EVENTS_CHANNEL = 'devart_events';

// The event vocabulary is the API's (GET /api/events); re-exported so the services that append
// events keep importing it from the database package.
export type { PlatformEvent, PlatformEventType } from '@devart/contracts';

/** One event to append; `at` and `id` are the database's. */
export interface NewEvent {
  type: PlatformEventType;
  task_id?: string | null;
  workflow_run_id?: string | null;
  agent_id?: string | null;
  sandbox_id?: string | null;
  item_id?: string | null;
  /** A small snapshot (status, attempt, cost, error excerpt…), never a secret. */
  data?: Record<string, unknown>;
}

// Serializes the last step of every transaction that appends events (see flushEvents).
const EVENTS_LOCK_KEY = 7_411_602_336;

// The buffer of each open transaction, keyed on the Queryable that transaction() hands to fn.
const buffers = new WeakMap<Queryable, NewEvent[]>();

/** Called by transaction() for the Queryable it hands to fn; a re-run gets a new Queryable, so a fresh buffer. */
export function openEventBuffer(tx: Queryable): void {
  buffers.set(tx, []);
}

/**
 * Records events of the state change the caller's transaction makes. They are only buffered
 * here; `transaction()` writes them as its last statements before COMMIT (flushEvents), so a
 * rollback leaves none, and a batch costs one INSERT however many events it has.
 *
 * @example
 * await db.transaction(async (tx) => {
 *   const done = await completeTasks(tx, items);
 *   appendEvents(tx, done.map((t) => ({ type: 'task.done', task_id: t.id, data: { status: t.status } })));
 * });
 */
export function appendEvents(tx: Queryable, events: readonly NewEvent[]): void {
  const buffer = buffers.get(tx);
  // Only transaction() flushes: an event appended on the pool would be lost silently.
  if (!buffer) throw new Error('appendEvents must be called with the Queryable of db.transaction()');
  buffer.push(...events);
}

/**
 * Writes the buffered events of `tx`, as the last statement before COMMIT. One statement: the
 * advisory lock first (held until COMMIT, so ids are allocated in commit order — a reader that
 * has seen id N never later finds a committed id below N), then one INSERT in buffer order, then
 * the NOTIFY that wakes the readers of every replica (delivered at commit, never for a rollback).
 * The lock serializes only these tails of the transactions that append events.
 */
export async function flushEvents(tx: Queryable): Promise<void> {
  const events = buffers.get(tx);
  buffers.delete(tx);
  if (!events || events.length === 0) return;
  // The lock CTE feeds the INSERT's rows, so nextval runs only once the lock is held.
  await tx.query(
    `WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock($2::bigint)),
     inserted AS (
       INSERT INTO events (type, task_id, workflow_run_id, agent_id, sandbox_id, item_id, data)
       SELECT e.event->>'type', (e.event->>'task_id')::uuid, (e.event->>'workflow_run_id')::uuid,
              (e.event->>'agent_id')::uuid, (e.event->>'sandbox_id')::uuid, (e.event->>'item_id')::uuid,
              coalesce(e.event->'data', '{}'::jsonb)
       FROM lock, jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(event, ord)
       ORDER BY e.ord
       RETURNING id)
     SELECT pg_notify('${EVENTS_CHANNEL}', jsonb_build_object('to', max(id))::text) FROM inserted`,
    [JSON.stringify(events), EVENTS_LOCK_KEY],
  );
}

/** The first 500 code points of an error (a UTF-16 slice can split a surrogate pair, which jsonb refuses). */
export function errorExcerpt(error: string | null | undefined): string | null {
  return error == null ? null : Array.from(error).slice(0, 500).join('');
}
