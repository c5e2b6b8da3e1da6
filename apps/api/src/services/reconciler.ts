import { type Db, republishLostTasks } from '@devart/db';
import type { Broker } from '@devart/queue';
import type { Logger } from 'pino';
import { failureStreak } from './failure-streak';

export interface ReconcilerOptions {
  db: Db;
  broker: Broker;
  logger: Logger;
  intervalMs: number;
  /** A due TODO task whose message went out longer ago than this, unstarted, is republished. */
  afterSeconds: number;
  /** Tasks republished per tick at most, so a purged queue of millions is refilled in slices. */
  limit?: number;
  onRepublished?: (count: number) => void;
}

export interface Reconciler {
  /** One pass now (tests): re-declares the topology, then returns the ids of the tasks republished. */
  reconcileNow(): Promise<string[]>;
  stop(): void;
}

/**
 * Finds what the broker lost, in every API process. First it declares the topology again, so a
 * task queue someone deleted exists before agents (whose users may not declare) re-subscribe
 * and before the next publish would fall through to `tasks.unroutable`. Then it republishes every
 * due TODO task whose message went out more than `afterSeconds` ago and was never started: the
 * message sat in a queue that was purged or deleted, or on a broker that lost its disk. A task
 * still waiting behind a backlog longer than that gets a duplicate, which `start` fences off.
 */
export function startReconciler(options: ReconcilerOptions): Reconciler {
  // limit 1000: not measured; it bounds one republishing statement, and at the default 10 s interval
  // still refills 100 tasks/s.
  const { db, broker, logger, intervalMs, afterSeconds, limit = 1000, onRepublished } = options;
  let running = false;
  const streak = failureStreak(logger, 'reconciler');
  const topology = failureStreak(logger, 'reconciler: declaring the broker topology');

  const redeclare = async () => {
    try {
      await broker.setup();
      topology.succeeded();
    } catch (error) {
      // Lost messages are still found below: the fresh outbox rows wait there for the broker.
      topology.failed(error);
    }
  };

  const reconcileNow = async () => {
    await redeclare();
    const republished = await republishLostTasks(db, { afterSeconds, limit });
    for (const task of republished) {
      logger.warn(
        { task_id: task.id, attempt: task.attempt, after_seconds: afterSeconds },
        'task message lost (TODO, due and unstarted): republished',
      );
    }
    if (republished.length > 0) onRepublished?.(republished.length);
    return republished.map((t) => t.id);
  };

  const timer = setInterval(() => {
    if (running) return;
    running = true;
    reconcileNow()
      .then(streak.succeeded, streak.failed)
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { reconcileNow, stop: () => clearInterval(timer) };
}
