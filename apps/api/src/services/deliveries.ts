/**
 * The delivery loop: sends the rows of the delivery outbox (packages/db/src/deliveries.ts) through
 * their channel's sender, in every API process at once, each row once.
 *
 * ## How to add a channel
 * 1. If events drive it, add their types to `deliverableEventTypes` (packages/db/src/deliveries.ts);
 *    rows for anything else are queued with `queueDeliveries(tx, …)` inside the transaction of
 *    the change they report, with a `dedupeKey` that names the occasion (`check_run:<run>:completed`).
 * 2. Write a {@link DeliveryChannel}: its `name` (the `deliveries.channel` value, such as
 *    `github`), the event types it takes, its target and rate limit, and `send`, which
 *    turns one row into one call of the service and says what came of it ({@link SendResult}):
 *    `retry` with `retryAfterMs` for a 429, `failed` for a refusal that retrying cannot fix,
 *    `skipped` when policy says no. It must not throw for a service's answer.
 * 3. Build it in `deliveryChannels` (apps/api/src/platform.ts) when its configuration is present.
 *    The loop announces it (`delivery_channels`), claims its rows, retries with backoff, honours
 *    Retry-After for every replica, and GET /api/integrations shows its health.
 */
import { type BackoffPolicy, backoffDelayMs } from '@devart/core';
import {
  type ClaimedDelivery,
  claimDeliveries,
  type Db,
  DELIVERIES_CHANNEL,
  type DeliveryOutcome,
  deleteFinishedDeliveries,
  finishDelivery,
  markDeliveryChannels,
  type PlatformEventType,
} from '@devart/db';
import type { Logger } from 'pino';
import { type FailureStreak, failureStreak } from './failure-streak';
import { startNotifiedLoop } from './notified-loop';

/** What one attempt to send came to. */
export type SendResult =
  | { outcome: 'sent'; result?: Record<string, unknown> }
  /** Policy said no (an opted-out workflow, a capability left out): recorded, never retried. */
  | { outcome: 'skipped'; reason: string }
  /** Try again: after `retryAfterMs` (the service's Retry-After, for the whole target) or the backoff. */
  | { outcome: 'retry'; error: string; retryAfterMs?: number }
  /** Refused for good (a malformed request): recorded, never retried. */
  | { outcome: 'failed'; error: string };

/** One outside service the delivery outbox sends to. */
export interface DeliveryChannel {
  /** Its `deliveries.channel` value: `telegram`, `github`. */
  readonly name: string;
  /** Event types whose events queue a row for it, in their own transaction ([] for none). */
  readonly eventTypes: readonly PlatformEventType[];
  /** Where event rows go (a chat id), copied into each row; the rate limit is per target. */
  readonly target: string;
  /** The least time between two sends to one target, for all replicas together (ms). */
  minIntervalMs(target: string): number;
  /** Sends one row. `signal` aborts when the send has taken too long (it is then retried). */
  send(delivery: ClaimedDelivery, signal: AbortSignal): Promise<SendResult>;
}

export interface DeliveryLoopOptions {
  db: Db;
  logger: Logger;
  channels: readonly DeliveryChannel[];
  /** The slow timer that covers notifications missed and retries falling due (ms). */
  pollIntervalMs?: number;
  /** Rows claimed at once (at most one per target). */
  batchSize?: number;
  /** How long a claim lasts; a row whose sender died is sent again after it (seconds). */
  leaseSeconds?: number;
  /** A send still running after this long is aborted and retried (ms). */
  sendTimeoutMs?: number;
  /** Backoff between attempts that failed without a Retry-After. */
  backoff?: BackoffPolicy;
  /** How often the channels are announced in `delivery_channels` (ms). */
  announceEveryMs?: number;
  /** Finished rows older than this are deleted (days). */
  retainDays?: number;
}

export interface DeliveryLoop {
  /** Sends everything due now; resolves when nothing due is left (tests). */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

type Recorded = { id: number; attempts: number; channel: string; pauseTargetMs?: number } & DeliveryOutcome;

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Starts sending the delivery outbox's rows of `channels`. Woken by the NOTIFY of a statement that
 * queued rows, and by a slow timer for retries that fall due. An outcome is recorded after the
 * send; while the database is down the outcome is held and recorded once it is back, so a sent
 * message is not sent again (a process that dies between the send and the record sends it twice).
 * Database outages are logged once each, as are each channel's outages.
 */
export async function startDeliveryLoop(options: DeliveryLoopOptions): Promise<DeliveryLoop> {
  const {
    db,
    logger,
    channels,
    pollIntervalMs = 1000,
    batchSize = 20,
    leaseSeconds = 60,
    sendTimeoutMs = 15_000,
    backoff = { baseMs: 1000, capMs: 5 * 60_000 },
    announceEveryMs = 60_000,
    retainDays = 7,
  } = options;
  const byName = new Map(channels.map((c) => [c.name, c]));
  const names = [...byName.keys()];
  const marks = channels.map((c) => ({ channel: c.name, eventTypes: c.eventTypes, target: c.target }));
  const streak = failureStreak(logger, 'delivery loop');
  const sending = new Map<string, FailureStreak>(
    channels.map((c) => [c.name, failureStreak(logger, `${c.name} delivery`)]),
  );
  const held: Recorded[] = [];
  let announcedAt = 0;
  let purgedAt = Date.now();

  const outcomeOf = (delivery: ClaimedDelivery, channel: DeliveryChannel, sent: SendResult): Recorded => {
    const base = { id: delivery.id, attempts: delivery.attempts, channel: channel.name };
    switch (sent.outcome) {
      case 'sent':
        sending.get(channel.name)?.succeeded();
        return { ...base, ...sent, pauseTargetMs: channel.minIntervalMs(delivery.target) };
      case 'retry': {
        sending.get(channel.name)?.failed(new Error(sent.error));
        // Never sooner than the channel's own pace, so a broken service is not hammered.
        const delayMs =
          sent.retryAfterMs ??
          Math.max(backoffDelayMs(delivery.attempts, backoff), Math.min(backoff.baseMs, backoff.capMs) / 2);
        return { ...base, ...sent, delayMs, pauseTargetMs: sent.retryAfterMs };
      }
      case 'failed':
        logger.warn(
          { channel: channel.name, delivery_id: delivery.id, error: sent.error },
          `${channel.name} delivery refused for good`,
        );
        return { ...base, ...sent };
      case 'skipped':
        logger.debug(
          { channel: channel.name, delivery_id: delivery.id, reason: sent.reason },
          'delivery skipped',
        );
        return { ...base, ...sent };
    }
  };

  const sendOne = async (delivery: ClaimedDelivery) => {
    const channel = byName.get(delivery.channel)!;
    let sent: SendResult;
    try {
      sent = await channel.send(delivery, AbortSignal.timeout(sendTimeoutMs));
    } catch (error) {
      // A sender's own fault (its database read failed, a bug): the row is retried.
      sent = { outcome: 'retry', error: errorText(error) };
    }
    held.push(outcomeOf(delivery, channel, sent));
  };

  // Records held outcomes oldest first; throws (keeping the rest) when the database fails.
  const recordHeld = async () => {
    for (let next = held.shift(); next; next = held.shift()) {
      const { channel, ...outcome } = next;
      let recorded: boolean;
      try {
        recorded = await finishDelivery(db, outcome);
      } catch (error) {
        held.unshift(next);
        throw error;
      }
      if (!recorded) {
        logger.warn(
          { channel, delivery_id: outcome.id },
          'delivery outcome came after its claim lapsed; another process may send it again',
        );
      }
    }
  };

  const drainOnce = async () => {
    if (Date.now() - announcedAt >= announceEveryMs) {
      await markDeliveryChannels(db, marks);
      announcedAt = Date.now();
    }
    await recordHeld();
    for (;;) {
      const claimed = await claimDeliveries(db, { channels: names, limit: batchSize, leaseSeconds });
      if (claimed.length === 0) break;
      await Promise.all(claimed.map(sendOne));
      await recordHeld();
    }
    if (Date.now() - purgedAt > 3_600_000) {
      purgedAt = Date.now();
      while ((await deleteFinishedDeliveries(db, { days: retainDays, batchSize: 5000 })) === 5000);
    }
  };

  // Announced before the first event can be appended after start-up, when the database answers.
  await markDeliveryChannels(db, marks)
    .then(() => {
      announcedAt = Date.now();
    })
    .catch((error) => streak.failed(error));
  const loop = await startNotifiedLoop({
    pollIntervalMs,
    streak,
    step: drainOnce,
    listen: (notify) => db.listen(DELIVERIES_CHANNEL, notify),
  });

  return {
    drain: drainOnce,
    stop: () => loop.stop(),
  };
}
