import type { Queryable } from './client';

/**
 * Deletes up to `batchSize` events older than `days` days, oldest first; returns how many. Rows
 * another replica is deleting at the same moment are skipped rather than waited for, so running
 * it in every API process costs nothing twice. Call it again while it returns `batchSize`.
 * @example while ((await deleteEventsOlderThan(db, { days: 14, batchSize: 5000 })) === 5000);
 */
export async function deleteEventsOlderThan(
  db: Queryable,
  { days, batchSize }: { days: number; batchSize: number },
): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM events WHERE id IN (
       SELECT id FROM events WHERE at < now() - $1::float8 * interval '1 day'
       ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED
     )`,
    [days, batchSize],
  );
  return rowCount;
}
