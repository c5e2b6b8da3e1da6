import type { Queryable } from './client';

export interface OutboxRow {
  id: number;
  topic: string;
  payload: Record<string, unknown>;
}

/** Claims due rows for this relay; other relays skip them while this transaction holds them. */
export async function claimDueOutbox(tx: Queryable, limit: number): Promise<OutboxRow[]> {
  const { rows } = await tx.query<OutboxRow>(
    `SELECT id, topic, payload FROM outbox
     WHERE sent_at IS NULL AND available_at <= now()
     ORDER BY available_at, id LIMIT $1
     FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  return rows;
}

export async function markOutboxSent(tx: Queryable, ids: number[]): Promise<void> {
  await tx.query('UPDATE outbox SET sent_at = now() WHERE id = ANY ($1::bigint[])', [ids]);
}

/** Deletes rows sent more than `olderThanSeconds` ago; returns how many. */
export async function purgeSentOutbox(db: Queryable, olderThanSeconds: number): Promise<number> {
  const { rowCount } = await db.query(
    'DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1::float8)',
    [olderThanSeconds],
  );
  return rowCount;
}

/** How many rows wait and how old the oldest due one is (seconds). */
export async function outboxBacklog(db: Queryable): Promise<{ pending: number; oldest_age_seconds: number }> {
  const { rows } = await db.query<{ pending: number; oldest_age_seconds: number | null }>(
    `SELECT count(*)::int AS pending,
            extract(epoch FROM now() - min(available_at) FILTER (WHERE available_at <= now()))::float8 AS oldest_age_seconds
     FROM outbox WHERE sent_at IS NULL`,
  );
  return { pending: rows[0]?.pending ?? 0, oldest_age_seconds: rows[0]?.oldest_age_seconds ?? 0 };
}

/** A task the reconciler queued a message for again. */
export interface RepublishedTask {
  id: string;
  attempt: number;
}

/**
 * Queues a fresh message (same attempt, so the same `<task_id>:<attempt>` id, fenced by `start`)
 * for every TODO task that has been due, unchanged and without an unsent outbox row for longer
 * than `afterSeconds`: its message was published long ago and nobody started it, so the broker
 * lost it (a purged or deleted queue, a broker that lost its disk). Touches `updated_at`, so a
 * task is republished at most once per `afterSeconds`. SKIP LOCKED lets replicas run it at once.
 */
export async function republishLostTasks(
  db: Queryable,
  { afterSeconds, limit }: { afterSeconds: number; limit: number },
): Promise<RepublishedTask[]> {
  const { rows } = await db.query<RepublishedTask>(
    `WITH lost AS (
       SELECT t.id FROM tasks t
       WHERE t.status = 'TODO'
         AND t.updated_at < now() - make_interval(secs => $1::float8)
         AND (t.next_attempt_at IS NULL OR t.next_attempt_at < now() - make_interval(secs => $1::float8))
         AND NOT EXISTS (
           SELECT 1 FROM outbox o WHERE o.sent_at IS NULL AND o.payload->>'task_id' = t.id::text
         )
       ORDER BY t.updated_at LIMIT $2
       FOR UPDATE OF t SKIP LOCKED
     ), touched AS (
       UPDATE tasks t SET updated_at = now() FROM lost WHERE t.id = lost.id
       RETURNING t.id, t.attempt, t.capability, t.title, t.payload, t.workflow_run_id
     ), queued AS (
       INSERT INTO outbox (topic, payload)
       SELECT devart_task_topic(capability),
              devart_task_message(id, attempt, capability, title, payload, workflow_run_id)
       FROM touched
     )
     SELECT id, attempt FROM touched`,
    [afterSeconds, limit],
  );
  return rows;
}
