import type { PlatformEventType } from '@devart/contracts';
import type { Queryable } from './client';
import { deliverableEventTypes, eventDeliveriesCte } from './deliveries';

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
 * The lock serializes only these tails of the transactions that append events. Events of a
 * deliverable type also queue their deliveries (Telegram…) in the same statement (deliveries.ts).
 */
export async function flushEvents(tx: Queryable): Promise<void> {
  const events = buffers.get(tx);
  if (!events || events.length === 0) return;
  buffers.set(tx, []);
  // A batch with an event some outside channel may want also queues its deliveries (deliveries.ts),
  // in this same statement; any other batch's statement stays as it was.
  const deliverable = events.some((e) => deliverableEventTypes.has(e.type));
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
       RETURNING ${deliverable ? '*' : 'id'})${deliverable ? `, ${eventDeliveriesCte('inserted')}` : ''}
     SELECT pg_notify('${EVENTS_CHANNEL}', jsonb_build_object('to', max(id))::text) FROM inserted`,
    [JSON.stringify(events), EVENTS_LOCK_KEY],
  );
}

/**
 * CTEs that append a task event for each row of the CTE `source` (task columns, as RETURNING
 * gives them) inside the statement that changed those tasks: no second round trip, no snapshot
 * built in the API process. The same snapshot as the API's taskEvent (lifecycle-events.ts), the
 * same lock and NOTIFY as flushEvents.
 *
 * The lock must stay the last lock a transaction takes (the others wait for it in their last
 * step, holding theirs): it is taken only once every CTE named in `after` (the statement's other
 * writes, each with a RETURNING) has finished, and the caller takes no other lock after the
 * statement. `only`, if given, is a condition on the statement's rows without which nothing is
 * appended (the caller then appends the events itself). The events follow the order of the items
 * the caller named: `request` is a CTE with each item's `task_id` and its position `ord` (without
 * it, the order of `source`'s rows, as an INSERT's RETURNING gives them). Name
 * `events_notified` in the main query (a plain CTE nobody reads is never run), and call
 * flushEvents before the statement so events buffered earlier in the transaction come first.
 *
 * @example
 * `WITH req AS (…), done AS (UPDATE tasks t … RETURNING ${qualifiedTaskColumns}),
 *  ${taskEventsCtes({ type: 'task.done', source: 'done', request: 'req', after: ['done'] })}
 *  SELECT done.* FROM done LEFT JOIN events_notified ON true`
 */
export function taskEventsCtes(input: {
  type: 'task.created' | 'task.started' | 'task.done';
  source: string;
  request?: string;
  after: readonly string[];
  only?: string;
}): string {
  const ready = [...input.after.map((cte) => `(SELECT count(*) FROM ${cte}) >= 0`), input.only ?? 'true'];
  return `events_lock AS MATERIALIZED (
       SELECT true AS held FROM (SELECT pg_advisory_xact_lock(${EVENTS_LOCK_KEY})) l WHERE ${ready.join(' AND ')}
     ), events_appended AS (
       INSERT INTO events (type, task_id, workflow_run_id, agent_id, data)
       SELECT '${input.type}', s.id, s.workflow_run_id, s.agent_id,
         jsonb_build_object('status', s.status, 'attempt', s.attempt, 'retry_count', s.retry_count,
           'title', s.title, 'capability', s.capability)
         || jsonb_strip_nulls(jsonb_build_object('step_key', s.step_key, 'cost', s.cost::text,
           'duration_ms', floor(extract(epoch FROM s.completed_at) * 1000)::bigint
             - floor(extract(epoch FROM s.started_at) * 1000)::bigint,
           'error', left(s.last_error, 500),
           'next_attempt_at', to_char(s.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
       FROM ${input.source} s ${input.request ? `JOIN ${input.request} r ON r.task_id = s.id` : ''}
       WHERE (SELECT held FROM events_lock)
       ${input.request ? 'ORDER BY r.ord' : ''}
       RETURNING id
     ), events_notified AS (
       SELECT pg_notify('${EVENTS_CHANNEL}', jsonb_build_object('to', max(id))::text) AS sent
       FROM events_appended HAVING count(*) > 0
     )`;
}

/** The first 500 code points of an error (a UTF-16 slice can split a surrogate pair, which jsonb refuses). */
export function errorExcerpt(error: string | null | undefined): string | null {
  return error == null ? null : Array.from(error).slice(0, 500).join('');
}
