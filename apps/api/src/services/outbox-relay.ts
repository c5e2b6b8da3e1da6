import { claimDueOutbox, type Db, markOutboxSent, type OutboxRow, purgeSentOutbox } from '@devart/db';
import type { Broker, OutgoingMessage } from '@devart/queue';
import type { Logger } from 'pino';
import { failureStreak } from './failure-streak';
import { startNotifiedLoop } from './notified-loop';

export interface OutboxRelayOptions {
  db: Db;
  broker: Broker;
  logger: Logger;
  /** Rows published per confirm wait. */
  batchSize?: number;
  /** The slow timer that covers notifications missed while a listener reconnected. */
  pollIntervalMs?: number;
  /** Sent rows older than this are deleted (seconds). */
  retainSentSeconds?: number;
  /** Test hook: runs after the broker confirmed a batch and before it is marked sent. */
  afterPublish?: (rows: OutboxRow[]) => void | Promise<void>;
}

export interface OutboxRelay {
  /** Publishes everything due now; resolves when nothing due is left (tests, shutdown). */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

const DEAD_TOPIC = 'tasks.dead';

// Outbox topics are the unprefixed queue names (SQL knows no AMQP_PREFIX); the broker's topology
// prefix is added here, or a prefixed installation would route every task to tasks.unroutable.
function toMessage(row: OutboxRow, prefix: string): OutgoingMessage {
  const body = row.payload as { task_id?: string; attempt?: number };
  return {
    routingKey: `${prefix}${row.topic}`,
    messageId: body.task_id ? `${body.task_id}:${body.attempt}` : `outbox:${row.id}`,
    body: row.payload,
  };
}

/**
 * Moves outbox rows to the broker: claim a batch (FOR UPDATE SKIP LOCKED, so several API
 * replicas share the work), publish it with confirms, mark it sent, all in one transaction. A crash
 * between publish and commit republishes the batch: delivery is at-least-once and the fenced
 * `start` drops the duplicates. NOTIFY wakes the relay at once; a slow timer covers the rest.
 */
export async function startOutboxRelay(options: OutboxRelayOptions): Promise<OutboxRelay> {
  // batchSize 500: not compared with other sizes; it bounds one transaction (rows locked, confirms
  // awaited), and docs/performance.md's throughput was measured with it.
  const { db, broker, logger, batchSize = 500, pollIntervalMs = 1000, retainSentSeconds = 3600 } = options;
  const streak = failureStreak(logger, 'outbox relay');
  let lastPurge = 0;

  const relayBatch = async (): Promise<number> =>
    db.transaction(async (tx) => {
      const rows = await claimDueOutbox(tx, batchSize);
      if (rows.length === 0) return 0;
      const prefix = broker.topology.prefix;
      const live = rows.filter((r) => r.topic !== DEAD_TOPIC).map((r) => toMessage(r, prefix));
      const dead = rows.filter((r) => r.topic === DEAD_TOPIC).map((r) => toMessage(r, prefix));
      if (live.length) await broker.publish(live);
      if (dead.length) await broker.publishDead(dead);
      await options.afterPublish?.(rows);
      await markOutboxSent(
        tx,
        rows.map((r) => r.id),
      );
      return rows.length;
    });

  const drainOnce = async () => {
    for (;;) {
      const n = await relayBatch();
      if (n < batchSize) return;
    }
  };

  const loop = await startNotifiedLoop({
    pollIntervalMs,
    streak,
    listen: (notify) => db.listen('devart_outbox', notify),
    async step() {
      // Unpublished rows stay in the outbox; the streak logs one line per outage, not one per batch.
      await drainOnce();
      if (Date.now() - lastPurge > 60_000) {
        lastPurge = Date.now();
        await purgeSentOutbox(db, retainSentSeconds);
      }
    },
  });

  return {
    drain: drainOnce,
    stop: () => loop.stop(),
  };
}
