import { afterEach, describe, expect, it } from 'vitest';
import type { Broker, Delivery, OutgoingMessage } from './broker';
import { BrokerClosedError, InvalidCapabilityError, InvalidMessageError, QueueNotFoundError } from './errors';
import { DEFAULT_DELIVERY_LIMIT } from './message';
import { taskQueueName } from './topology';

/** Options of {@link describeBrokerConformance}. */
export interface ConformanceOptions {
  /** The `deliveryLimit` the factory gives its brokers (default DEFAULT_DELIVERY_LIMIT). */
  deliveryLimit?: number;
}

/**
 * The behaviour every {@link Broker} must share; run it once per implementation. `makeBroker`
 * must return a fresh, isolated broker (on RabbitMQ: its own prefix); the suite closes it.
 * @example describeBrokerConformance('in-process', async () => createInProcessBroker());
 */
export function describeBrokerConformance(
  name: string,
  makeBroker: () => Promise<Broker>,
  options: ConformanceOptions = {},
): void {
  const deliveryLimit = options.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT;

  describe(`Broker conformance: ${name}`, () => {
    const opened: Broker[] = [];
    const newBroker = async (): Promise<Broker> => {
      const broker = await makeBroker();
      opened.push(broker);
      await broker.setup();
      return broker;
    };

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((broker) => broker.close()));
    });

    it('delivers a published message with its messageId, routing key, body and headers', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue(null);
      expect(queue).toBe(taskQueueName(null, broker.topology.prefix));
      const got: Delivery[] = [];
      await broker.consume(queue, { prefetch: 1 }, (d) => {
        got.push(d);
        d.ack();
      });
      const body = { type: 'devart.task.v1', task_id: 'task-1', title: 'héllo ✓', payload: { n: [1, null] } };
      await broker.publish([
        {
          routingKey: queue,
          messageId: 'task-1:1',
          body,
          headers: { traceparent: '00-abc-01', priority: 3 },
        },
      ]);
      await until(() => got.length === 1, 'the message to arrive');
      expect(got[0]).toMatchObject({ messageId: 'task-1:1', routingKey: queue, body, redelivered: false });
      expect(got[0]?.deliveryCount).toBe(0);
      expect(got[0]?.headers).toMatchObject({ traceparent: '00-abc-01', priority: 3 });
    });

    it('never calls a handler from inside publish()', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue(null);
      let publishing = false;
      const seenWhilePublishing: boolean[] = [];
      await broker.consume(queue, { prefetch: 10 }, (d) => {
        seenWhilePublishing.push(publishing);
        d.ack();
      });
      publishing = true;
      const published = broker.publish(batch(queue, 5));
      publishing = false;
      await published;
      await until(() => seenWhilePublishing.length === 5, '5 deliveries');
      expect(seenWhilePublishing).toEqual([false, false, false, false, false]);
    });

    it('never holds more than `prefetch` unacked deliveries per consumer', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('prefetch');
      await broker.publish(batch(queue, 40));
      let inFlight = 0;
      let maxInFlight = 0;
      let done = 0;
      await broker.consume(queue, { prefetch: 4 }, async (d) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await sleep(5);
        inFlight -= 1;
        d.ack();
        done += 1;
      });
      await until(() => done === 40, 'all 40 messages to be acked');
      expect(maxInFlight).toBe(4);
    });

    it('puts a nacked message back at the head of its queue, marked redelivered', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('requeue');
      await broker.publish([msg(queue, 'A'), msg(queue, 'B')]);
      const log: [string, boolean, number][] = [];
      await broker.consume(queue, { prefetch: 1 }, (d) => {
        log.push([d.messageId, d.redelivered, d.deliveryCount]);
        if (d.messageId === 'A' && !d.redelivered) d.nack({ requeue: true });
        else d.ack();
      });
      await until(() => log.length === 3, '3 deliveries');
      expect(log).toEqual([
        ['A', false, 0],
        ['A', true, 1],
        ['B', false, 0],
      ]);
    });

    it('requeues a message whose handler throws before settling it', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('throws');
      const seen: [boolean, number][] = [];
      await broker.consume(queue, { prefetch: 1 }, async (d) => {
        seen.push([d.redelivered, d.deliveryCount]);
        if (!d.redelivered) throw new Error('handler bug (expected by the test)');
        d.ack();
      });
      await broker.publish([msg(queue, 'boom')]);
      await until(() => seen.length === 2, 'the redelivery');
      expect(seen).toEqual([
        [false, 0],
        [true, 1],
      ]);
    });

    it('ignores a second ack or a nack after an ack', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue(null);
      const got: string[] = [];
      await broker.consume(queue, { prefetch: 1 }, (d) => {
        got.push(d.messageId);
        d.ack();
        d.ack();
        d.nack({ requeue: true });
      });
      await broker.publish([msg(queue, 'one'), msg(queue, 'two')]);
      await until(() => got.length === 2, 'both messages');
      await sleep(100);
      expect(got).toEqual(['one', 'two']);
    });

    it("hands a cancelled consumer's unacked messages to another consumer", async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('handover');
      await broker.publish(batch(queue, 3));
      const held: Delivery[] = [];
      const first = await broker.consume(queue, { prefetch: 10 }, (d) => {
        held.push(d);
      });
      await until(() => held.length === 3, 'the first consumer to hold 3 messages');
      const taken: Delivery[] = [];
      await broker.consume(queue, { prefetch: 10 }, (d) => {
        taken.push(d);
        d.ack();
      });
      await sleep(100);
      expect(taken).toHaveLength(0);

      await first.cancel();
      await until(() => taken.length === 3, 'the second consumer to get the 3 messages');
      expect(taken.map((d) => d.messageId).sort()).toEqual(held.map((d) => d.messageId).sort());
      for (const d of taken) expect([d.redelivered, d.deliveryCount]).toEqual([true, 1]);
      // Late settlement by the cancelled consumer must neither throw nor disturb the queue.
      expect(() => {
        for (const d of held) d.ack();
      }).not.toThrow();
      await broker.publish([msg(queue, 'after')]);
      await until(() => taken.length === 4, 'a message published after the cancel');
    });

    it('keeps messages for a capability nobody consumes until a consumer appears', async () => {
      const broker = await newBroker();
      const queue = taskQueueName('waiting', broker.topology.prefix);
      await broker.publish(batch(queue, 3, 'w'));
      await sleep(100);
      expect(await broker.ensureTaskQueue('waiting')).toBe(queue);
      const got: Delivery[] = [];
      await broker.consume(queue, { prefetch: 5 }, (d) => {
        got.push(d);
        d.ack();
      });
      await until(() => got.length === 3, 'the 3 waiting messages');
      expect(got.map((d) => d.messageId)).toEqual(['w0', 'w1', 'w2']);
      expect(got.every((d) => d.deliveryCount === 0 && !d.redelivered)).toBe(true);
    });

    it(`dead-letters a message nacked ${deliveryLimit + 1} times (reason delivery_limit)`, async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('poison');
      const counts: number[] = [];
      await broker.consume(queue, { prefetch: 1 }, (d) => {
        counts.push(d.deliveryCount);
        d.nack({ requeue: true });
      });
      const dead = await collectAll(broker, broker.topology.deadQueue);
      await broker.publish([msg(queue, 'poison:1', { task_id: 'poison' })]);
      await until(() => dead.length === 1, 'the message in the dead queue');
      expect(counts).toEqual(Array.from({ length: deliveryLimit + 1 }, (_, i) => i));
      const [corpse] = dead;
      expect(corpse).toMatchObject({ messageId: 'poison:1', routingKey: queue, body: { task_id: 'poison' } });
      expect(corpse?.headers).toMatchObject({
        'x-first-death-reason': 'delivery_limit',
        'x-first-death-queue': queue,
      });
      expect([corpse?.redelivered, corpse?.deliveryCount]).toEqual([false, 0]);
    });

    it('dead-letters a message whose consumers keep dying before acking it', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('killer');
      const dead = await collectAll(broker, broker.topology.deadQueue);
      await broker.publish([msg(queue, 'killer:1')]);
      const counts: number[] = [];
      for (let i = 0; i <= deliveryLimit; i++) {
        let got: Delivery | undefined;
        const consumer = await broker.consume(queue, { prefetch: 1 }, (d) => {
          got = d;
        });
        await until(() => got !== undefined, `delivery #${i + 1}`);
        counts.push(got?.deliveryCount ?? -1);
        await consumer.cancel();
      }
      await until(() => dead.length === 1, 'the message in the dead queue');
      expect(counts).toEqual(Array.from({ length: deliveryLimit + 1 }, (_, i) => i));
      expect(dead[0]?.headers['x-first-death-reason']).toBe('delivery_limit');
    });

    it('dead-letters a message nacked without requeue (reason rejected)', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('reject');
      await broker.consume(queue, { prefetch: 1 }, (d) => d.nack({ requeue: false }));
      const dead = await collectAll(broker, broker.topology.deadQueue);
      await broker.publish([msg(queue, 'rejected:1')]);
      await until(() => dead.length === 1, 'the message in the dead queue');
      expect(dead[0]).toMatchObject({ messageId: 'rejected:1', routingKey: queue });
      expect(dead[0]?.headers['x-first-death-reason']).toBe('rejected');
    });

    it('publishDead puts messages straight into the dead queue, keeping their routing keys', async () => {
      const broker = await newBroker();
      const routingKey = taskQueueName('shell', broker.topology.prefix);
      const dead = await collectAll(broker, broker.topology.deadQueue);
      await broker.publishDead([
        {
          routingKey,
          messageId: 'quarantined:4',
          body: { task_id: 'quarantined' },
          headers: { reason: 'retries' },
        },
      ]);
      await until(() => dead.length === 1, 'the message in the dead queue');
      expect(dead[0]).toMatchObject({
        messageId: 'quarantined:4',
        routingKey,
        body: { task_id: 'quarantined' },
        redelivered: false,
        deliveryCount: 0,
      });
      expect(dead[0]?.headers).toMatchObject({ reason: 'retries' });
      expect(dead[0]?.headers['x-first-death-reason']).toBeUndefined();
    });

    it('routes messages that match no queue to the unroutable queue', async () => {
      const broker = await newBroker();
      const stray = await collectAll(broker, broker.topology.unroutableQueue);
      await broker.publish([msg(`${broker.topology.prefix}nowhere.at.all`, 'stray:1')]);
      await until(() => stray.length === 1, 'the message in the unroutable queue');
      expect(stray[0]).toMatchObject({
        messageId: 'stray:1',
        routingKey: `${broker.topology.prefix}nowhere.at.all`,
      });
    });

    it('processes 2,000 messages over 4 consumers, each exactly once', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('bulk');
      const seen = new Map<string, number>();
      const perConsumer = [0, 0, 0, 0];
      let acked = 0;
      for (let c = 0; c < 4; c++) {
        await broker.consume(queue, { prefetch: 50 }, (d) => {
          seen.set(d.messageId, (seen.get(d.messageId) ?? 0) + 1);
          perConsumer[c] = (perConsumer[c] ?? 0) + 1;
          acked += 1;
          d.ack();
        });
      }
      const started = performance.now();
      const all = batch(queue, 2_000, 'bulk');
      for (let i = 0; i < all.length; i += 500) await broker.publish(all.slice(i, i + 500));
      await until(() => acked >= 2_000, 'all 2,000 messages', 20_000);
      const seconds = (performance.now() - started) / 1_000;
      console.info(`[${name}] 2,000 no-op messages over 4 consumers: ${Math.round(2_000 / seconds)} msg/s`);
      await sleep(200);
      expect(acked).toBe(2_000);
      expect(seen.size).toBe(2_000);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      for (const n of perConsumer) expect(n).toBeGreaterThan(0);
    });

    it('accepts setup() and ensureTaskQueue() many times, concurrently too', async () => {
      const broker = await newBroker();
      await broker.setup();
      await Promise.all([broker.setup(), broker.setup()]);
      const names = await Promise.all([broker.ensureTaskQueue('twice'), broker.ensureTaskQueue('twice')]);
      expect(names).toEqual([
        taskQueueName('twice', broker.topology.prefix),
        taskQueueName('twice', broker.topology.prefix),
      ]);
      expect(await broker.ensureTaskQueue('twice')).toBe(names[0]);
      const got: string[] = [];
      await broker.consume(names[0] as string, { prefetch: 1 }, (d) => {
        got.push(d.messageId);
        d.ack();
      });
      await broker.publish([msg(names[0] as string, 'still-works')]);
      await until(() => got.length === 1, 'a delivery after repeated setup');
    });

    it('rejects invalid capabilities, messages and prefetch values, sending nothing', async () => {
      const broker = await newBroker();
      await expect(broker.ensureTaskQueue('Shell')).rejects.toBeInstanceOf(InvalidCapabilityError);
      await expect(broker.ensureTaskQueue('a.b')).rejects.toBeInstanceOf(InvalidCapabilityError);
      await expect(broker.ensureTaskQueue('')).rejects.toBeInstanceOf(InvalidCapabilityError);
      const queue = await broker.ensureTaskQueue('strict');
      await expect(broker.consume(queue, { prefetch: 0 }, () => {})).rejects.toBeInstanceOf(RangeError);
      const got: string[] = [];
      await broker.consume(queue, { prefetch: 5 }, (d) => {
        got.push(d.messageId);
        d.ack();
      });
      await expect(
        broker.publish([msg(queue, 'good'), { routingKey: queue, messageId: 'bad', body: { n: 1n } }]),
      ).rejects.toBeInstanceOf(InvalidMessageError);
      await expect(broker.publish([{ routingKey: queue, messageId: '', body: {} }])).rejects.toBeInstanceOf(
        InvalidMessageError,
      );
      await sleep(150);
      expect(got).toEqual([]);
    });

    it('rejects consuming a queue that does not exist', async () => {
      const broker = await newBroker();
      await expect(
        broker.consume(`${broker.topology.prefix}no.such.queue`, { prefetch: 1 }, () => {}),
      ).rejects.toBeInstanceOf(QueueNotFoundError);
      // The broker stays usable after the refusal.
      const queue = await broker.ensureTaskQueue(null);
      const got = await collectAll(broker, queue);
      await broker.publish([msg(queue, 'after-404')]);
      await until(() => got.length === 1, 'a delivery after the refusal');
    });

    it('stops delivering on close() and refuses work afterwards', async () => {
      const broker = await newBroker();
      const queue = await broker.ensureTaskQueue('closing');
      const got: Delivery[] = [];
      await broker.consume(queue, { prefetch: 1 }, (d) => {
        got.push(d);
      });
      await broker.publish(batch(queue, 2));
      await until(() => got.length === 1, 'the first delivery');
      await broker.close();
      expect(() => got[0]?.ack()).not.toThrow();
      await sleep(100);
      expect(got).toHaveLength(1);
      await expect(broker.publish(batch(queue, 1))).rejects.toBeInstanceOf(BrokerClosedError);
      await expect(broker.setup()).rejects.toBeInstanceOf(BrokerClosedError);
      await broker.close();
    });
  });
}

function msg(routingKey: string, messageId: string, body: unknown = { messageId }): OutgoingMessage {
  return { routingKey, messageId, body };
}

function batch(routingKey: string, count: number, idPrefix = 'm'): OutgoingMessage[] {
  return Array.from({ length: count }, (_, i) => msg(routingKey, `${idPrefix}${i}`));
}

/** Consumes `queue`, acking and keeping every delivery. */
async function collectAll(broker: Broker, queue: string): Promise<Delivery[]> {
  const got: Delivery[] = [];
  await broker.consume(queue, { prefetch: 20 }, (d) => {
    got.push(d);
    d.ack();
  });
  return got;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}
