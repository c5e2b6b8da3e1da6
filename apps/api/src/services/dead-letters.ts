import { TaskMessage } from '@devart/contracts';
import { DatabaseUnavailableError, type Db } from '@devart/db';
import type { Broker, Consumer } from '@devart/queue';
import type { Logger } from 'pino';
import { failureStreak } from './failure-streak';
import { quarantinePoisonMessage } from './failures';

/** What a message in the dead-letter queue is, by how it got there. */
export type DeadLetterKind =
  /** Published there by devart (a quarantined task): already recorded, nothing to do. */
  | { kind: 'platform' }
  /** A task message the broker dead-lettered at its delivery limit: quarantine its task. */
  | { kind: 'poison'; taskId: string; attempt: number }
  /** Not a devart.task.v1 message, rejected by the SDK (which dead-letters what it cannot read). */
  | { kind: 'malformed' }
  /**
   * Anything else: a valid task message an agent rejected (the SDK never rejects one, so the
   * agent is not the SDK, or misbehaves), a reason devart never configures (expired, maxlen), or
   * a poison message whose body is not a task's.
   */
  | { kind: 'unexpected'; reason: string };

/** Classifies one dead letter by `x-first-death-reason` and its body (pure, for tests). */
export function classifyDeadLetter(
  headers: Readonly<Record<string, unknown>>,
  body: unknown,
): DeadLetterKind {
  const reason = headers['x-first-death-reason'];
  if (reason === undefined) return { kind: 'platform' };
  const task = body as { task_id?: unknown; attempt?: unknown } | null;
  if (reason === 'delivery_limit' && typeof task?.task_id === 'string' && typeof task.attempt === 'number') {
    return { kind: 'poison', taskId: task.task_id, attempt: task.attempt };
  }
  // The SDK's own test of a message (checkTaskMessage), so what it rejects is what we expect.
  if (reason === 'rejected' && !TaskMessage.safeParse(body).success) return { kind: 'malformed' };
  return { kind: 'unexpected', reason: String(reason) };
}

/**
 * Watches the dead-letter queue: a task message the broker dead-lettered because of its delivery
 * limit (every agent that got it died or gave it back before `start`) quarantines its task, so a
 * poison message ends QUARANTINED instead of vanishing. Messages devart itself sent there
 * (quarantined tasks) are already recorded in the database and are simply acknowledged, as are
 * the malformed messages the SDK rejects. Anything else is logged at warn and counted
 * (`onUnexpected`): an agent's broker user may reject (and purge) what it may read, so this is how
 * a misbehaving agent shows; its task stays TODO and the reconciler republishes it.
 */
export async function watchDeadLetters({
  db,
  broker,
  logger,
  retryDelayMs = 1000,
  onUnexpected,
}: {
  db: Db;
  broker: Broker;
  logger: Logger;
  /** Wait between tries while the database is unreachable. */
  retryDelayMs?: number;
  /** Called once per unexpected dead letter with its death reason (the metric). */
  onUnexpected?: (reason: string) => void;
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
    const dead = classifyDeadLetter(delivery.headers, delivery.body);
    if (dead.kind === 'poison') {
      const task = await quarantine({
        taskId: dead.taskId,
        attempt: dead.attempt,
        deliveries: delivery.deliveryCount || undefined,
      });
      if (task) logger.warn({ task_id: task.id, attempt: task.attempt }, 'poison message: task quarantined');
    } else if (dead.kind === 'unexpected') {
      const body = delivery.body as { task_id?: unknown; attempt?: unknown } | null;
      logger.warn(
        {
          reason: dead.reason,
          queue: delivery.headers['x-first-death-queue'],
          routing_key: delivery.routingKey,
          message_id: delivery.messageId,
          task_id: typeof body?.task_id === 'string' ? body.task_id : undefined,
          attempt: typeof body?.attempt === 'number' ? body.attempt : undefined,
        },
        'unexpected dead letter: a task message was rejected by something other than the SDK (a misbehaving agent?); the reconciler republishes its task if it is still TODO',
      );
      onUnexpected?.(dead.reason);
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
