/**
 * The delivery outbox: messages to outside services (Telegram, GitHub check runs), each queued
 * once and sent by the delivery loop of whichever API process claims it first.
 *
 * How a row gets here:
 * - **From an event**, in the event's own transaction: flushEvents (events.ts) adds one INSERT
 *   (a CTE of its single statement) that queues a row per event and per channel listed in
 *   `delivery_channels` whose `event_types` hold the event's type, keyed `event:<id>`. Only the
 *   types in {@link deliverableEventTypes} ever get rows; the others keep flushEvents as it was.
 * - **Directly**, with {@link queueDeliveries}: anything that is not one event (a daily summary, a
 *   test message, a check run update keyed by run), deduplicated by its `dedupe_key`.
 *
 * How it leaves: {@link claimDeliveries} (`FOR UPDATE SKIP LOCKED`, at most one row in flight per
 * channel and target, none for a paused target) marks rows `sending` for a lease; the sender calls
 * the service outside any transaction; {@link finishDelivery} records the outcome, fenced on the
 * attempt number, and pauses the target (rate limit, Retry-After) for every replica.
 *
 * Adding a channel: add its event types to `deliverableEventTypes` if events drive it, and give
 * the API a `DeliveryChannel` (apps/api/src/services/deliveries.ts). Nothing here names a channel.
 */
import type { PlatformEventType } from '@devart/contracts';
import type { Queryable } from './client';

/**
 * Event types that may queue deliveries: flushEvents adds its delivery CTE only to a batch holding
 * one of these, so no other event pays for it. A channel subscribes to a subset in `delivery_channels`.
 */
export const deliverableEventTypes: ReadonlySet<PlatformEventType> = new Set<PlatformEventType>([
  'task.quarantined',
  'workflow_run.failed',
  'workflow_run.completed',
  'agent.offline',
]);

/** The channel every delivery loop listens on: sent at the commit of a statement that queued rows. */
export const DELIVERIES_CHANNEL = 'devart_deliveries';

/**
 * Events queue rows only for channels marked within this many seconds; the API marks its
 * configured channels every minute, so a channel no running process sends through collects nothing.
 */
export const CHANNEL_FRESH_SECONDS = 300;

/**
 * The CTE flushEvents adds after its events INSERT (`source`, returning whole event rows): one
 * delivery per event and subscribed fresh channel, the event itself as payload.
 */
export function eventDeliveriesCte(source: string): string {
  return `deliveries_queued AS (
       INSERT INTO deliveries (channel, dedupe_key, event_id, target, payload)
       SELECT c.channel, 'event:' || i.id, i.id, c.target,
              jsonb_strip_nulls(jsonb_build_object('id', i.id::text, 'type', i.type, 'at', i.at,
                'task_id', i.task_id, 'workflow_run_id', i.workflow_run_id, 'agent_id', i.agent_id,
                'sandbox_id', i.sandbox_id, 'item_id', i.item_id)) || jsonb_build_object('data', i.data)
       FROM ${source} i
       JOIN delivery_channels c ON i.type = ANY (c.event_types)
         AND c.seen_at > now() - make_interval(secs => ${CHANNEL_FRESH_SECONDS})
       ORDER BY i.id
       ON CONFLICT (channel, dedupe_key) DO NOTHING
     )`;
}

/** A channel as a process with it configured announces it. */
export interface DeliveryChannelMark {
  channel: string;
  eventTypes: readonly string[];
  /** Where its messages go (a Telegram chat id); '' when the payload says. */
  target: string;
}

/**
 * Marks channels as sent through by a running process, with the event types they take and their
 * target: events from now on queue rows for them (in every replica). Call it at start and every
 * minute; the last writer's event types and target win, so replicas should share a configuration.
 */
export async function markDeliveryChannels(
  db: Queryable,
  channels: readonly DeliveryChannelMark[],
): Promise<void> {
  if (channels.length === 0) return;
  await db.query(
    `INSERT INTO delivery_channels (channel, event_types, target, seen_at)
     SELECT c->>'channel', ARRAY(SELECT jsonb_array_elements_text(c->'eventTypes')), c->>'target', now()
     FROM jsonb_array_elements($1::jsonb) AS c
     ON CONFLICT (channel) DO UPDATE
       SET event_types = excluded.event_types, target = excluded.target, seen_at = excluded.seen_at`,
    [JSON.stringify(channels)],
  );
}

/** A delivery to queue directly (not from an event). */
export interface NewDelivery {
  channel: string;
  /** Unique per channel: a second row with the same key is not queued. */
  dedupeKey: string;
  target?: string;
  payload: Record<string, unknown>;
  eventId?: number | null;
  /** Not sent before this time (default now). */
  notBefore?: Date;
}

/**
 * Queues deliveries in one statement, skipping any whose (channel, dedupe_key) exists; returns
 * the rows queued (none for a key already there). Call it inside the transaction of the change
 * it reports, so both commit or neither.
 * @example await queueDeliveries(db, [{ channel: 'telegram', dedupeKey: `summary:${day}`, target: chat, payload }])
 */
export async function queueDeliveries(
  db: Queryable,
  deliveries: readonly NewDelivery[],
): Promise<{ id: number; channel: string; dedupe_key: string }[]> {
  if (deliveries.length === 0) return [];
  const { rows } = await db.query<{ id: number; channel: string; dedupe_key: string }>(
    `INSERT INTO deliveries (channel, dedupe_key, event_id, target, payload, next_attempt_at)
     SELECT d->>'channel', d->>'dedupeKey', (d->>'eventId')::bigint, coalesce(d->>'target', ''),
            coalesce(d->'payload', '{}'::jsonb), coalesce((d->>'notBefore')::timestamptz, now())
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(d, ord)
     ORDER BY x.ord
     ON CONFLICT (channel, dedupe_key) DO NOTHING
     RETURNING id, channel, dedupe_key`,
    [JSON.stringify(deliveries)],
  );
  return rows;
}

export type DeliveryStatus = 'pending' | 'sending' | 'sent' | 'skipped' | 'failed';

/** A claimed delivery: what a sender needs. */
export interface ClaimedDelivery {
  id: number;
  channel: string;
  dedupe_key: string;
  event_id: number | null;
  target: string;
  payload: Record<string, unknown>;
  /** This attempt's number (1 = first); finishDelivery is fenced on it. */
  attempts: number;
  created_at: Date;
}

/**
 * Claims due deliveries of `channels` for `leaseSeconds`: at most one per (channel, target), none
 * for a target with a row in flight or a pause, oldest first, `limit` in all. Rows other processes
 * are claiming are skipped. A claim whose lease lapses (its process died) is claimed again.
 */
export async function claimDeliveries(
  db: Queryable,
  { channels, limit, leaseSeconds }: { channels: readonly string[]; limit: number; leaseSeconds: number },
): Promise<ClaimedDelivery[]> {
  if (channels.length === 0) return [];
  // DISTINCT ON picks each target's oldest due row; if another process holds that one, SKIP LOCKED
  // leaves the target alone this time rather than sending its next row beside it.
  const { rows } = await db.query<ClaimedDelivery>(
    `WITH candidates AS (
       SELECT DISTINCT ON (d.channel, d.target) d.id
       FROM deliveries d
       WHERE d.status IN ('pending', 'sending') AND d.next_attempt_at <= now() AND d.channel = ANY ($1::text[])
         AND NOT EXISTS (
           SELECT 1 FROM deliveries s
           WHERE s.channel = d.channel AND s.target = d.target AND s.status = 'sending' AND s.next_attempt_at > now())
         AND NOT EXISTS (
           SELECT 1 FROM delivery_targets p
           WHERE p.channel = d.channel AND p.target = d.target AND p.paused_until > now())
       ORDER BY d.channel, d.target, d.next_attempt_at, d.id
     ), due AS (
       SELECT d.id FROM deliveries d JOIN candidates c ON c.id = d.id
       WHERE d.status IN ('pending', 'sending') AND d.next_attempt_at <= now()
       ORDER BY d.next_attempt_at, d.id
       LIMIT $2
       FOR UPDATE OF d SKIP LOCKED
     )
     UPDATE deliveries d
        SET status = 'sending', attempts = d.attempts + 1, updated_at = now(),
            next_attempt_at = now() + make_interval(secs => $3::float8)
       FROM due WHERE d.id = due.id
     RETURNING d.id, d.channel, d.dedupe_key, d.event_id, d.target, d.payload, d.attempts, d.created_at`,
    [channels, limit, leaseSeconds],
  );
  return rows.sort((a, b) => a.id - b.id);
}

/** What came of one attempt. */
export type DeliveryOutcome =
  | { outcome: 'sent'; result?: Record<string, unknown> }
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'retry'; error: string; delayMs: number }
  | { outcome: 'failed'; error: string };

/**
 * Records the outcome of attempt `attempts` of delivery `id`, and pauses its target for
 * `pauseTargetMs` (the channel's rate limit after a send, a Retry-After) for every process.
 * Returns false when the attempt was no longer this sender's (its lease lapsed and another took it).
 */
export async function finishDelivery(
  db: Queryable,
  input: { id: number; attempts: number; pauseTargetMs?: number } & DeliveryOutcome,
): Promise<boolean> {
  const status: DeliveryStatus =
    input.outcome === 'retry' ? 'pending' : input.outcome === 'sent' ? 'sent' : input.outcome;
  const error = input.outcome === 'retry' || input.outcome === 'failed' ? input.error : null;
  const result =
    input.outcome === 'sent'
      ? (input.result ?? null)
      : input.outcome === 'skipped'
        ? { reason: input.reason }
        : null;
  const delayMs = input.outcome === 'retry' ? input.delayMs : 0;
  const { rows } = await db.query<{ id: number }>(
    `WITH finished AS (
       UPDATE deliveries
          SET status = $3, updated_at = now(),
              sent_at = CASE WHEN $3 = 'sent' THEN now() END,
              next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + make_interval(secs => $6::float8 / 1000)
                                     ELSE next_attempt_at END,
              last_error = coalesce($4, last_error),
              last_error_at = CASE WHEN $4 IS NULL THEN last_error_at ELSE now() END,
              result = coalesce($5::jsonb, result)
        WHERE id = $1 AND attempts = $2 AND status = 'sending'
        RETURNING id, channel, target
     ), paused AS (
       INSERT INTO delivery_targets (channel, target, paused_until)
       SELECT channel, target, now() + make_interval(secs => $7::float8 / 1000) FROM finished WHERE $7::float8 > 0
       ON CONFLICT (channel, target) DO UPDATE
         SET paused_until = greatest(delivery_targets.paused_until, excluded.paused_until)
     )
     SELECT id FROM finished`,
    [
      input.id,
      input.attempts,
      status,
      error,
      result === null ? null : JSON.stringify(result),
      delayMs,
      input.pauseTargetMs ?? 0,
    ],
  );
  return rows.length > 0;
}

/** A delivery as a test or an operator reads it. */
export interface DeliveryRow {
  id: number;
  channel: string;
  dedupe_key: string;
  event_id: number | null;
  target: string;
  payload: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  result: Record<string, unknown> | null;
  created_at: Date;
  sent_at: Date | null;
}

/** The deliveries of a channel, oldest first (at most `limit`). */
export async function listDeliveries(
  db: Queryable,
  { channel, limit = 100 }: { channel: string; limit?: number },
): Promise<DeliveryRow[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT id, channel, dedupe_key, event_id, target, payload, status, attempts, next_attempt_at,
            last_error, result, created_at, sent_at
     FROM deliveries WHERE channel = $1 ORDER BY id LIMIT $2`,
    [channel, limit],
  );
  return rows;
}

/** The health of one channel, as GET /api/integrations shows it. */
export interface DeliveryChannelHealth {
  channel: string;
  event_types: string[];
  /** When a process that sends through it last said so. */
  seen_at: Date;
  last_success_at: Date | null;
  last_error: string | null;
  last_error_at: Date | null;
  /** Rows waiting (pending or in flight) and the age of the oldest, in seconds. */
  backlog: number;
  oldest_pending_seconds: number | null;
  /** Rows refused for good. */
  failed: number;
}

/** Delivery health of every channel some process announced, in one statement. */
export async function deliveryHealth(db: Queryable): Promise<DeliveryChannelHealth[]> {
  const { rows } = await db.query<DeliveryChannelHealth>(
    `SELECT c.channel, c.event_types, c.seen_at,
            (SELECT max(d.sent_at) FROM deliveries d WHERE d.channel = c.channel AND d.status = 'sent') AS last_success_at,
            e.last_error, e.last_error_at,
            w.backlog, w.oldest_pending_seconds,
            (SELECT count(*)::int FROM deliveries d WHERE d.channel = c.channel AND d.status = 'failed') AS failed
     FROM delivery_channels c
     LEFT JOIN LATERAL (
       SELECT d.last_error, d.last_error_at FROM deliveries d
       WHERE d.channel = c.channel AND d.last_error_at IS NOT NULL
       ORDER BY d.last_error_at DESC LIMIT 1
     ) e ON true
     CROSS JOIN LATERAL (
       SELECT count(*)::int AS backlog,
              extract(epoch FROM now() - min(d.created_at))::float8 AS oldest_pending_seconds
       FROM deliveries d WHERE d.channel = c.channel AND d.status IN ('pending', 'sending')
     ) w
     ORDER BY c.channel`,
  );
  return rows;
}

/**
 * Deletes up to `batchSize` finished deliveries (sent, skipped, failed) last changed more than
 * `days` days ago; returns how many. SKIP LOCKED: every replica may run it at once.
 */
export async function deleteFinishedDeliveries(
  db: Queryable,
  { days, batchSize }: { days: number; batchSize: number },
): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM deliveries WHERE id IN (
       SELECT id FROM deliveries
       WHERE status IN ('sent', 'skipped', 'failed') AND updated_at < now() - $1::float8 * interval '1 day'
       ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED
     )`,
    [days, batchSize],
  );
  return rowCount;
}
