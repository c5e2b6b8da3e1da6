import { claimDueOutbox, type Db, markOutboxSent, type OutboxRow, purgeSentOutbox } from '@devart/db';
import type { Broker, OutgoingMessage } from '@devart/queue';
import type { Logger } from 'pino';
import { failureStreak } from './failure-streak';

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
  let stopped = false;
  let wake: (() => void) | undefined;
  let pendingWake = false;
  const streak = failureStreak(logger, 'outbox relay');
  let failures = 0;
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

  const loop = async () => {
    while (!stopped) {
      try {
        await drainOnce();
        streak.succeeded();
        if (Date.now() - lastPurge > 60_000) {
          lastPurge = Date.now();
          await purgeSentOutbox(db, retainSentSeconds);
        }
      } catch (error) {
        // Unpublished rows stay in the outbox; one line per outage, not one per batch.
        streak.failed(error);
      }
      if (stopped) break;
      if (pendingWake && !streak.failing) {
        pendingWake = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        // While failing, NOTIFYs do not cut the wait short (each new task would retry a broken
        // broker at once); the wait grows to 2 s, so the relay resumes within 2 s of a recovery.
        const delay = streak.failing ? Math.min(pollIntervalMs * 2 ** failures++, 2000) : pollIntervalMs;
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      if (!streak.failing) failures = 0;
    }
  };

  const unlisten = await db.listen('devart_outbox', () => {
    if (wake && !streak.failing) wake();
    else pendingWake = true;
  });
  const running = loop();

  return {
    drain: drainOnce,
    async stop() {
      stopped = true;
      wake?.();
      await running;
      await unlisten();
    },
  };
}
