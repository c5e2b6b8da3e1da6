import type { Db } from '@devart/db';
import type { Broker, Consumer } from '@devart/queue';
import type { Logger } from 'pino';
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
}: {
  db: Db;
  broker: Broker;
  logger: Logger;
}): Promise<Consumer> {
  return broker.consume(broker.topology.deadQueue, { prefetch: 50 }, async (delivery) => {
    const reason = delivery.headers['x-first-death-reason'];
    const body = delivery.body as { task_id?: unknown; attempt?: unknown };
    if (reason === 'delivery_limit' && typeof body.task_id === 'string' && typeof body.attempt === 'number') {
      const task = await quarantinePoisonMessage(db, {
        taskId: body.task_id,
        attempt: body.attempt,
        deliveries: delivery.deliveryCount || undefined,
      });
      if (task) logger.warn({ task_id: task.id, attempt: task.attempt }, 'poison message: task quarantined');
    }
    delivery.ack();
  });
}
