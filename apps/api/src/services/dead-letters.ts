import { DatabaseUnavailableError, type Db } from '@devart/db';
import type { Broker, Consumer } from '@devart/queue';
import type { Logger } from 'pino';
import { failureStreak } from './failure-streak';
import { quarantinePoisonMessage } from './failures';

/**
 * Watches the dead-letter queue: a task message the broker dead-lettered because of its delivery
 * limit (every agent that got it died or gave it back before `start`) quarantines its task, so a
 * poison message ends QUARANTINED instead of vanishing. Messages devart itself sent there
 * (quarantined tasks) are already recorded in the database and are simply acknowledged.
 */
export async function watchDeadLetters({
  db,
  broker,
  logger,
  retryDelayMs = 1000,
}: {
  db: Db;
  broker: Broker;
  logger: Logger;
  /** Wait between tries while the database is unreachable. */
  retryDelayMs?: number;
}): Promise<Consumer> {
  let cancelled = false;
  const streak = failureStreak(logger, 'dead-letter watcher');
  // While the database is down the message is held, not requeued: a requeue would spin through
  // the queue and count against its delivery limit. Cancelling the consumer gives it back.
  const quarantine = async (input: Parameters<typeof quarantinePoisonMessage>[1]) => {
    for (;;) {
      try {
        const task = await quarantinePoisonMessage(db, input);
        streak.succeeded();
        return task;
      } catch (error) {
        if (!(error instanceof DatabaseUnavailableError) || cancelled) throw error;
        streak.failed(error);
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
      }
    }
  };
  // prefetch 50: not measured; dead letters are rare, and it bounds how many wait unacknowledged
  // while the database is retried.
  const consumer = await broker.consume(broker.topology.deadQueue, { prefetch: 50 }, async (delivery) => {
    const reason = delivery.headers['x-first-death-reason'];
    const body = delivery.body as { task_id?: unknown; attempt?: unknown };
    if (reason === 'delivery_limit' && typeof body.task_id === 'string' && typeof body.attempt === 'number') {
      const task = await quarantine({
        taskId: body.task_id,
        attempt: body.attempt,
        deliveries: delivery.deliveryCount || undefined,
      });
      if (task) logger.warn({ task_id: task.id, attempt: task.attempt }, 'poison message: task quarantined');
    }
    delivery.ack();
  });
  return {
    async cancel() {
      cancelled = true;
      await consumer.cancel();
    },
  };
}
