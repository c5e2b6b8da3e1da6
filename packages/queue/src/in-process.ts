import type {
  Broker,
  BrokerLogger,
  ConsumeOptions,
  Consumer,
  Delivery,
  DeliveryHandler,
  OutgoingMessage,
} from './broker';
import { consoleLogger } from './broker';
import { BrokerClosedError, QueueNotFoundError } from './errors';
import { invokeHandler } from './handler';
import {
  assertDeliveryLimit,
  assertPrefetch,
  DEFAULT_DELIVERY_LIMIT,
  type EncodedMessage,
  encodeMessages,
} from './message';
import { capabilityOfTaskQueue, type TopologyNames, taskQueueName, topologyNames } from './topology';

/** Options of {@link createInProcessBroker}. */
export interface InProcessBrokerOptions {
  /**
   * Returns (nack with requeue, or consumer gone with the message unacked) a message survives;
   * the next one dead-letters it with reason `delivery_limit`, exactly like RabbitMQ's
   * `x-delivery-limit` on quorum queues: a message is delivered at most `deliveryLimit + 1` times.
   * Default DEFAULT_DELIVERY_LIMIT (5).
   */
  deliveryLimit?: number;
  /** Prefix of every queue name, as for RabbitMQ (default ''). */
  prefix?: string;
  logger?: BrokerLogger;
}

/**
 * A broker living in this process, with RabbitMQ's quorum-queue semantics: per-queue FIFO,
 * per-consumer prefetch, round-robin over consumers, requeued messages go back to the **head**
 * of their queue (before never-delivered ones, in the order they were returned — as quorum
 * queues do in RabbitMQ 3.10), delivery limit and rejects go to the dead queue, and a cancelled
 * consumer's unacked messages are redelivered. Messages live in memory only.
 * @example
 * const broker = createInProcessBroker();
 * const queue = await broker.ensureTaskQueue('shell');
 * await broker.consume(queue, { prefetch: 10 }, (d) => d.ack());
 * await broker.publish([{ routingKey: queue, messageId: 't1:1', body: { task_id: 't1' } }]);
 */
export function createInProcessBroker(options: InProcessBrokerOptions = {}): Broker {
  return new InProcessBroker(options);
}

// Deliveries per queue per turn of the event loop, so a deep queue cannot starve I/O (not measured).
const deliveriesPerTurn = 1_000;

interface StoredMessage {
  readonly messageId: string;
  readonly routingKey: string;
  readonly json: string;
  readonly headers: Readonly<Record<string, unknown>>;
  /** Returns so far, i.e. RabbitMQ's `x-delivery-count`. */
  deliveryCount: number;
}

interface QueueState {
  readonly name: string;
  /** Task queues dead-letter; the dead and unroutable queues (like their RabbitMQ twins) do not. */
  readonly deadLetters: boolean;
  readonly returned: Fifo<StoredMessage>;
  readonly ready: Fifo<StoredMessage>;
  consumers: InProcessConsumer[];
  cursor: number;
  scheduled: NodeJS.Immediate | undefined;
  draining: boolean;
}

class InProcessBroker implements Broker {
  readonly kind = 'in-process';
  readonly topology: TopologyNames;
  private readonly deliveryLimit: number;
  private readonly logger: BrokerLogger;
  private readonly queues = new Map<string, QueueState>();
  private readonly deadQueue: QueueState;
  private readonly unroutableQueue: QueueState;
  private closed = false;

  constructor({
    deliveryLimit = DEFAULT_DELIVERY_LIMIT,
    prefix = '',
    logger = consoleLogger,
  }: InProcessBrokerOptions) {
    assertDeliveryLimit(deliveryLimit);
    this.deliveryLimit = deliveryLimit;
    this.logger = logger;
    this.topology = topologyNames(prefix);
    this.deadQueue = this.declare(this.topology.deadQueue, false);
    this.unroutableQueue = this.declare(this.topology.unroutableQueue, false);
  }

  async setup(): Promise<void> {
    this.assertOpen();
  }

  async ensureTaskQueue(capability: string | null): Promise<string> {
    this.assertOpen();
    const name = taskQueueName(capability, this.topology.prefix);
    this.declare(name, true);
    return name;
  }

  async publish(messages: OutgoingMessage[]): Promise<void> {
    this.assertOpen();
    for (const message of encodeMessages(messages)) {
      this.enqueue(this.route(message.routingKey), stored(message));
    }
  }

  async publishDead(messages: OutgoingMessage[]): Promise<void> {
    this.assertOpen();
    for (const message of encodeMessages(messages)) this.enqueue(this.deadQueue, stored(message));
  }

  async consume(queue: string, opts: ConsumeOptions, handler: DeliveryHandler): Promise<Consumer> {
    this.assertOpen();
    assertPrefetch(opts?.prefetch);
    if (typeof handler !== 'function') throw new TypeError('consume() needs a handler function');
    const state = this.queues.get(queue);
    if (!state) throw new QueueNotFoundError(queue);
    const consumer = new InProcessConsumer(this, state, opts.prefetch, handler);
    state.consumers.push(consumer);
    this.scheduleDrain(state);
    return consumer;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const queue of this.queues.values()) {
      if (queue.scheduled) clearImmediate(queue.scheduled);
      for (const consumer of queue.consumers) {
        consumer.active = false;
        consumer.unacked.clear();
      }
      queue.consumers = [];
    }
    this.queues.clear();
  }

  /** Called by {@link InProcessDelivery}: acks, requeues or rejects one delivery. */
  settle(delivery: InProcessDelivery, outcome: 'ack' | 'requeue' | 'reject'): void {
    const { consumer } = delivery;
    // Not unacked any more: its consumer was cancelled and the message already went back.
    if (!consumer.unacked.delete(delivery)) return;
    const queue = consumer.queue;
    if (outcome === 'requeue') this.returnMessages(queue, [delivery.message]);
    else if (outcome === 'reject') this.deadLetter(queue, delivery.message, 'rejected');
    this.scheduleDrain(queue);
  }

  /** Called by {@link InProcessConsumer.cancel}. */
  cancelConsumer(consumer: InProcessConsumer): void {
    if (!consumer.active) return;
    consumer.active = false;
    const queue = consumer.queue;
    const index = queue.consumers.indexOf(consumer);
    if (index >= 0) queue.consumers.splice(index, 1);
    if (queue.cursor > index && queue.cursor > 0) queue.cursor -= 1;
    const unacked = [...consumer.unacked].map((delivery) => delivery.message);
    consumer.unacked.clear();
    this.returnMessages(queue, unacked);
    this.scheduleDrain(queue);
  }

  private assertOpen(): void {
    if (this.closed) throw new BrokerClosedError();
  }

  private declare(name: string, deadLetters: boolean): QueueState {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = {
        name,
        deadLetters,
        returned: new Fifo(),
        ready: new Fifo(),
        consumers: [],
        cursor: 0,
        scheduled: undefined,
        draining: false,
      };
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** The `tasks` topic exchange: each task queue is bound with its own name; the rest is unroutable. */
  private route(routingKey: string): QueueState {
    const existing = this.queues.get(routingKey);
    if (existing?.deadLetters) return existing;
    if (capabilityOfTaskQueue(routingKey, this.topology.prefix) === undefined) return this.unroutableQueue;
    return this.declare(routingKey, true);
  }

  private enqueue(queue: QueueState, message: StoredMessage): void {
    queue.ready.push(message);
    this.scheduleDrain(queue);
  }

  private returnMessages(queue: QueueState, messages: readonly StoredMessage[]): void {
    for (const message of messages) {
      message.deliveryCount += 1;
      if (queue.deadLetters && message.deliveryCount > this.deliveryLimit) {
        this.deadLetter(queue, message, 'delivery_limit');
      } else {
        queue.returned.push(message);
      }
    }
  }

  /** Mirrors RabbitMQ: the dead message is a new one carrying the `x-death` headers. */
  private deadLetter(queue: QueueState, message: StoredMessage, reason: 'rejected' | 'delivery_limit'): void {
    if (!queue.deadLetters) return;
    const exchange = this.topology.exchange;
    this.enqueue(this.deadQueue, {
      messageId: message.messageId,
      routingKey: message.routingKey,
      json: message.json,
      deliveryCount: 0,
      headers: Object.freeze({
        ...message.headers,
        'x-death': [
          {
            count: 1,
            reason,
            queue: queue.name,
            exchange,
            'routing-keys': [message.routingKey],
            time: new Date(),
          },
        ],
        'x-first-death-reason': reason,
        'x-first-death-queue': queue.name,
        'x-first-death-exchange': exchange,
      }),
    });
  }

  private scheduleDrain(queue: QueueState): void {
    if (queue.scheduled || queue.draining || queue.consumers.length === 0 || this.closed) return;
    queue.scheduled = setImmediate(() => this.drain(queue));
  }

  private drain(queue: QueueState): void {
    queue.scheduled = undefined;
    if (this.closed) return;
    queue.draining = true;
    let delivered = 0;
    try {
      while (queue.returned.length + queue.ready.length > 0 && delivered < deliveriesPerTurn) {
        const consumer = this.nextConsumer(queue);
        if (!consumer) break;
        const message = (queue.returned.shift() ?? queue.ready.shift()) as StoredMessage;
        this.deliver(consumer, message);
        delivered += 1;
      }
    } finally {
      queue.draining = false;
    }
    if (delivered === deliveriesPerTurn) this.scheduleDrain(queue);
  }

  /** Round-robin over the consumers that have prefetch room. */
  private nextConsumer(queue: QueueState): InProcessConsumer | undefined {
    const { consumers } = queue;
    const count = consumers.length;
    for (let i = 0; i < count; i++) {
      const index = (queue.cursor + i) % count;
      const consumer = consumers[index] as InProcessConsumer;
      if (consumer.unacked.size < consumer.prefetch) {
        queue.cursor = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  private deliver(consumer: InProcessConsumer, message: StoredMessage): void {
    const delivery = new InProcessDelivery(this, consumer, message);
    consumer.unacked.add(delivery);
    invokeHandler(consumer.handler, delivery, this.logger, consumer.queue.name);
  }
}

class InProcessConsumer implements Consumer {
  readonly unacked = new Set<InProcessDelivery>();
  active = true;

  constructor(
    private readonly broker: InProcessBroker,
    readonly queue: QueueState,
    readonly prefetch: number,
    readonly handler: DeliveryHandler,
  ) {}

  async cancel(): Promise<void> {
    this.broker.cancelConsumer(this);
  }
}

class InProcessDelivery implements Delivery {
  readonly body: unknown;
  readonly messageId: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly deliveryCount: number;
  readonly headers: Readonly<Record<string, unknown>>;
  private done = false;

  constructor(
    private readonly broker: InProcessBroker,
    readonly consumer: InProcessConsumer,
    readonly message: StoredMessage,
  ) {
    this.body = JSON.parse(message.json);
    this.messageId = message.messageId;
    this.routingKey = message.routingKey;
    this.deliveryCount = message.deliveryCount;
    this.redelivered = message.deliveryCount > 0;
    this.headers = message.headers;
  }

  get settled(): boolean {
    return this.done;
  }

  ack(): void {
    if (this.done) return;
    this.done = true;
    this.broker.settle(this, 'ack');
  }

  nack(opts?: { requeue?: boolean }): void {
    if (this.done) return;
    this.done = true;
    this.broker.settle(this, opts?.requeue === false ? 'reject' : 'requeue');
  }
}

/** A FIFO with O(1) push and shift. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 4_096 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

function stored(message: EncodedMessage): StoredMessage {
  return {
    messageId: message.messageId,
    routingKey: message.routingKey,
    json: message.json,
    headers: Object.freeze({ ...message.headers }),
    deliveryCount: 0,
  };
}
