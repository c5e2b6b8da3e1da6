import type { Channel, ChannelModel } from 'amqplib';
import { BrokerError, QueueNotFoundError } from '../errors';
import type { TopologyNames } from '../topology';
import { amqpCode, toBrokerError } from './amqp-errors';

const quorum = { 'x-queue-type': 'quorum' };

/**
 * Arguments of a task queue. At-least-once dead-lettering (RabbitMQ ≥ 3.10) keeps a message in
 * its queue until `tasks.dead` has it, so quarantine never loses one; it requires `reject-publish`.
 */
export function taskQueueArguments(names: TopologyNames, deliveryLimit: number): Record<string, unknown> {
  return {
    ...quorum,
    'x-dead-letter-exchange': names.deadLetterExchange,
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
    'x-delivery-limit': deliveryLimit,
  };
}

/** Declares exchanges, the dead and unroutable queues, and `taskQueues`; idempotent. */
export async function declareTopology(
  model: ChannelModel,
  names: TopologyNames,
  taskQueues: Iterable<string>,
  deliveryLimit: number,
): Promise<void> {
  await withChannel(model, 'declare the task topology', async (ch) => {
    await ch.assertExchange(names.unroutableExchange, 'fanout', { durable: true });
    await ch.assertQueue(names.unroutableQueue, { durable: true, arguments: quorum });
    await ch.bindQueue(names.unroutableQueue, names.unroutableExchange, '');
    await ch.assertExchange(names.exchange, 'topic', {
      durable: true,
      alternateExchange: names.unroutableExchange,
    });
    await ch.assertExchange(names.deadLetterExchange, 'fanout', { durable: true });
    await ch.assertQueue(names.deadQueue, { durable: true, arguments: quorum });
    await ch.bindQueue(names.deadQueue, names.deadLetterExchange, '');
    await assertTaskQueues(ch, names, taskQueues, deliveryLimit);
  });
}

/** Declares task queues and binds each to the exchange under its own name. */
export async function declareTaskQueues(
  model: ChannelModel,
  names: TopologyNames,
  taskQueues: Iterable<string>,
  deliveryLimit: number,
): Promise<void> {
  await withChannel(model, 'declare task queues', (ch) =>
    assertTaskQueues(ch, names, taskQueues, deliveryLimit),
  );
}

/** Consume-only mode: checks, without configure permission, that the platform declared the exchange. */
export async function checkTopology(model: ChannelModel, names: TopologyNames): Promise<void> {
  try {
    await withChannel(model, 'check the task exchange', (ch) => ch.checkExchange(names.exchange));
  } catch (err) {
    if (amqpCode(err) !== 404) throw err;
    throw new BrokerError(
      `No devart on this broker: exchange "${names.exchange}" does not exist (${describePrefix(names.prefix)}). ` +
        'The devart API declares it when it starts: start devart with AMQP_URL set to this broker and vhost, ' +
        'and use its AMQP_PREFIX as the prefix (broker.amqp_prefix in the answer of POST /api/agents)',
      { cause: err },
    );
  }
}

/** How an error names a prefix: `prefix "prod."`, or that there is none. */
function describePrefix(prefix: string): string {
  return prefix ? `prefix "${prefix}"` : 'no prefix';
}

/** Consume-only mode: checks passively that each queue exists. */
export async function checkQueues(model: ChannelModel, queues: Iterable<string>): Promise<void> {
  for (const queue of queues) {
    try {
      await withChannel(model, `check queue "${queue}"`, (ch) => ch.checkQueue(queue));
    } catch (err) {
      if (amqpCode(err) === 404) throw new QueueNotFoundError(queue, { cause: err });
      throw err;
    }
  }
}

async function assertTaskQueues(
  ch: Channel,
  names: TopologyNames,
  taskQueues: Iterable<string>,
  deliveryLimit: number,
): Promise<void> {
  const args = taskQueueArguments(names, deliveryLimit);
  for (const queue of taskQueues) {
    await ch.assertQueue(queue, { durable: true, arguments: args });
    await ch.bindQueue(queue, names.exchange, queue);
  }
}

/** Runs `work` on a short-lived channel: a refusal closes the channel, never the connection. */
async function withChannel<T>(
  model: ChannelModel,
  doing: string,
  work: (ch: Channel) => Promise<T>,
): Promise<T> {
  const ch = await model.createChannel();
  // The failing call rejects with the same error; without a listener amqplib would throw it.
  ch.on('error', () => {});
  try {
    const result = await work(ch);
    await ch.close();
    return result;
  } catch (err) {
    await ch.close().catch(() => {});
    throw toBrokerError(err, doing);
  }
}
