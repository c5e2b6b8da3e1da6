import type { Queryable } from './client';

/** A GitHub webhook delivery as github_deliveries records it. */
export interface GithubDeliveryInput {
  /** X-GitHub-Delivery: GitHub's id of the delivery, the same on a redelivery. */
  deliveryId: string;
  event: string;
  action: string | null;
  repository: string | null;
}

/**
 * Records a delivery the first time it is seen; false when it was seen before. Concurrent calls
 * with the same id (two replicas given the same redelivery) are decided by the primary key: the
 * second waits for the first's transaction and then finds the row, so only one starts anything.
 * @example if (!(await recordGithubDelivery(tx, input))) return { replayed: true, runIds: await githubDeliveryRuns(tx, id) };
 */
export async function recordGithubDelivery(tx: Queryable, input: GithubDeliveryInput): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO github_deliveries (delivery_id, event, action, repository) VALUES ($1, $2, $3, $4)
     ON CONFLICT (delivery_id) DO NOTHING`,
    [input.deliveryId, input.event, input.action, input.repository],
  );
  return rowCount === 1;
}

/** The runs a delivery started, in the order they were started. */
export async function githubDeliveryRuns(db: Queryable, deliveryId: string): Promise<string[]> {
  const { rows } = await db.query<{ run_ids: string[] }>(
    'SELECT run_ids FROM github_deliveries WHERE delivery_id = $1',
    [deliveryId],
  );
  return rows[0]?.run_ids ?? [];
}

export async function setGithubDeliveryRuns(
  tx: Queryable,
  deliveryId: string,
  runIds: string[],
): Promise<void> {
  await tx.query('UPDATE github_deliveries SET run_ids = $2::uuid[] WHERE delivery_id = $1', [
    deliveryId,
    runIds,
  ]);
}

/**
 * Forgets deliveries received more than `olderThanDays` ago, at most `limit` of them (a replay
 * that old is no longer recognised). Cheap enough to run with every new delivery.
 */
export async function forgetOldGithubDeliveries(
  tx: Queryable,
  { olderThanDays, limit }: { olderThanDays: number; limit: number },
): Promise<number> {
  const { rowCount } = await tx.query(
    `DELETE FROM github_deliveries WHERE delivery_id IN (
       SELECT delivery_id FROM github_deliveries
       WHERE received_at < now() - make_interval(days => $1::int) LIMIT $2)`,
    [olderThanDays, limit],
  );
  return rowCount;
}

/** A workflow with at least one GitHub trigger for an event. */
export interface GithubTriggeredWorkflow {
  id: string;
  name: string;
  definition: unknown;
}

/**
 * The workflows with a GitHub trigger for `event`, oldest first (so runs start in a stable order);
 * the caller matches repository, action and branches. Uses workflows_triggers_idx.
 */
export async function workflowsTriggeredBy(db: Queryable, event: string): Promise<GithubTriggeredWorkflow[]> {
  const { rows } = await db.query<GithubTriggeredWorkflow>(
    `SELECT id, name, definition FROM workflows
     WHERE definition -> 'triggers' @> jsonb_build_array(jsonb_build_object('github', jsonb_build_object('event', $1::text)))
     ORDER BY created_at, id`,
    [event],
  );
  return rows;
}
