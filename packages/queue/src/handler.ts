import type { BrokerLogger, Delivery, DeliveryHandler } from './broker';

/**
 * Runs a delivery handler; if it throws or rejects before settling the delivery, the failure is
 * logged and the message requeued (so the delivery limit eventually dead-letters a poison message).
 */
export function invokeHandler(
  handler: DeliveryHandler,
  delivery: Delivery & { readonly settled: boolean },
  logger: BrokerLogger,
  queue: string,
): void {
  const failed = (err: unknown): void => {
    const settled = delivery.settled;
    logger.error(
      { err, queue, messageId: delivery.messageId },
      settled ? 'Delivery handler failed after settling' : 'Delivery handler failed; the message is requeued',
    );
    if (!settled) delivery.nack({ requeue: true });
  };
  try {
    const result: unknown = handler(delivery);
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, failed);
    }
  } catch (err) {
    failed(err);
  }
}
