import type { Overview } from '@devart/contracts';
import type { Queryable } from './client';

// An event row as the API's JSON, built in SQL: subject ids only when present (jsonb_strip_nulls
// leaves `data` alone, as it strips only top-level nulls here: data is never null).
const eventJson = `jsonb_strip_nulls(jsonb_build_object(
    'id', e.id::text, 'type', e.type,
    'at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'task_id', e.task_id, 'workflow_run_id', e.workflow_run_id, 'agent_id', e.agent_id,
    'sandbox_id', e.sandbox_id, 'item_id', e.item_id)) || jsonb_build_object('data', e.data)`;

/** How far back (in events) "recent failures" looks: a bounded scan of the primary key, whatever the log's size. */
export const RECENT_FAILURE_WINDOW = 10_000;

/**
 * The Overview page in one statement (one snapshot, one round trip):
 * - tasks by status: one GROUP BY over tasks_status_idx, as the devart_tasks metric does;
 * - throughput: task.created/done/failed/quarantined per minute over the 15 minutes up to `now`,
 *   from events_at_idx — the cost grows with the events of those 15 minutes;
 * - the outbox backlog and agents by status, as the metrics read them;
 * - recent failures among the last RECENT_FAILURE_WINDOW event ids, and the 20 newest events:
 *   backward scans of the primary key, so a quiet log never costs a full scan.
 * @example const overview = await readOverview(db, new Date());
 */
export async function readOverview(db: Queryable, now: Date = new Date()): Promise<Overview> {
  const { rows } = await db.query<{ overview: Overview }>(
    `WITH
      by_status AS (SELECT status, count(*)::int AS n FROM tasks GROUP BY status),
      minutes AS (
        SELECT generate_series(date_trunc('minute', $1::timestamptz) - interval '14 minutes',
                               date_trunc('minute', $1::timestamptz), interval '1 minute') AS minute),
      per_minute AS (
        SELECT date_trunc('minute', at) AS minute,
               count(*) FILTER (WHERE type = 'task.created')::int AS created,
               count(*) FILTER (WHERE type = 'task.done')::int AS done,
               count(*) FILTER (WHERE type IN ('task.failed', 'task.quarantined'))::int AS failed
        FROM events
        WHERE at >= date_trunc('minute', $1::timestamptz) - interval '14 minutes'
          AND at < date_trunc('minute', $1::timestamptz) + interval '1 minute'
          AND type IN ('task.created', 'task.done', 'task.failed', 'task.quarantined')
        GROUP BY 1),
      latest AS (SELECT coalesce(max(id), 0) AS id FROM events)
    SELECT jsonb_build_object(
      'generated_at', to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'tasks_by_status', (
        SELECT jsonb_object_agg(s.status, coalesce(b.n, 0))
        FROM unnest(ARRAY['PENDING', 'TODO', 'IN_PROGRESS', 'DONE', 'QUARANTINED', 'CANCELLED']) AS s(status)
        LEFT JOIN by_status b ON b.status = s.status),
      'throughput', (
        SELECT jsonb_agg(jsonb_build_object(
                 'minute', to_char(m.minute AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                 'created', coalesce(p.created, 0), 'done', coalesce(p.done, 0), 'failed', coalesce(p.failed, 0))
               ORDER BY m.minute)
        FROM minutes m LEFT JOIN per_minute p ON p.minute = m.minute),
      'outbox', (
        SELECT jsonb_build_object(
          'pending', count(*)::int,
          'oldest_age_seconds', coalesce(extract(epoch FROM $1::timestamptz - min(available_at)
                                   FILTER (WHERE available_at <= $1::timestamptz))::float8, 0))
        FROM outbox WHERE sent_at IS NULL),
      'agents', (
        SELECT jsonb_build_object(
          'online', count(*) FILTER (WHERE status <> 'OFFLINE')::int,
          'busy', count(*) FILTER (WHERE status = 'BUSY')::int,
          'offline', count(*) FILTER (WHERE status = 'OFFLINE')::int)
        FROM agents WHERE revoked_at IS NULL),
      'recent_failures', coalesce((
        SELECT jsonb_agg(${eventJson} ORDER BY e.id DESC)
        FROM (SELECT * FROM events
              WHERE id > (SELECT id FROM latest) - ${RECENT_FAILURE_WINDOW}
                AND type IN ('task.failed', 'task.quarantined', 'task.lease_expired', 'workflow_run.failed')
              ORDER BY id DESC LIMIT 10) e), '[]'::jsonb),
      'recent_events', coalesce((
        SELECT jsonb_agg(${eventJson} ORDER BY e.id DESC)
        FROM (SELECT * FROM events ORDER BY id DESC LIMIT 20) e), '[]'::jsonb)
    ) AS overview`,
    [now.toISOString()],
  );
  return rows[0]!.overview;
}
