import { describe, expect, it } from 'vitest';
import type { BrokerLogger, Delivery } from './broker';
import { describeBrokerConformance } from './broker.conformance';
import { createInProcessBroker } from './in-process';

describeBrokerConformance('in-process', async () => createInProcessBroker({ logger: silentLogger() }));

describeBrokerConformance(
  'in-process, deliveryLimit 1, prefixed',
  async () => createInProcessBroker({ deliveryLimit: 1, prefix: 't1.', logger: silentLogger() }),
  { deliveryLimit: 1 },
);

describe('in-process broker', () => {
  it('serves returned messages before never-delivered ones, in the order they came back', async () => {
    const broker = createInProcessBroker();
    const queue = await broker.ensureTaskQueue(null);
    await broker.publish(
      ['a', 'b', 'c', 'd'].map((id) => ({ routingKey: queue, messageId: id, body: null })),
    );
    const held: Delivery[] = [];
    const first = await broker.consume(queue, { prefetch: 2 }, (d) => {
      held.push(d);
    });
    await waitFor(() => held.length === 2);
    held[1]?.nack();
    held[0]?.nack();
    await first.cancel();
    const order: string[] = [];
    await broker.consume(queue, { prefetch: 1 }, (d) => {
      order.push(d.messageId);
      d.ack();
    });
    await waitFor(() => order.length === 4);
    expect(order).toEqual(['b', 'a', 'c', 'd']);
    await broker.close();
  });

  it('delivers 50,000 messages at tens of thousands per second', async () => {
    const broker = createInProcessBroker();
    const queue = await broker.ensureTaskQueue(null);
    let acked = 0;
    for (let i = 0; i < 4; i++) {
      await broker.consume(queue, { prefetch: 100 }, (d) => {
        acked += 1;
        d.ack();
      });
    }
    const started = performance.now();
    const messages = Array.from({ length: 50_000 }, (_, i) => ({
      routingKey: queue,
      messageId: `m${i}`,
      body: { i },
    }));
    await broker.publish(messages);
    await waitFor(() => acked === 50_000);
    const seconds = (performance.now() - started) / 1_000;
    console.info(`[in-process] 50,000 messages: ${Math.round(50_000 / seconds)} msg/s`);
    expect(50_000 / seconds).toBeGreaterThan(20_000);
    await broker.close();
  });

  it('logs a handler failure with the message id', async () => {
    const errors: unknown[] = [];
    const broker = createInProcessBroker({ logger: { ...silentLogger(), error: (obj) => errors.push(obj) } });
    const queue = await broker.ensureTaskQueue(null);
    let calls = 0;
    await broker.consume(queue, { prefetch: 1 }, (d) => {
      calls += 1;
      if (calls === 1) throw new Error('boom');
      d.ack();
    });
    await broker.publish([{ routingKey: queue, messageId: 'x:1', body: {} }]);
    await waitFor(() => calls === 2);
    expect(errors).toEqual([expect.objectContaining({ messageId: 'x:1', queue })]);
    await broker.close();
  });
});

function silentLogger(): BrokerLogger {
  return { info() {}, warn() {}, error() {} };
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('Timed out');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
