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
